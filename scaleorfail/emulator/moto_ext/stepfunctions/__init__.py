"""Step Functions: moto's ASL interpreter (``execute_state_machine``) extended, by concern.

- :mod:`.tasks` - Lambda and SageMaker tasks called in-process (the 429 a task records).
- :mod:`.interpreter` - the inline Map cap of 40, the iteration loop, pooled programs,
  memoised JSONPath, the status set last.
- :mod:`.copies` - the interpreter's copies of state data made as JSON copies.
- :mod:`.history` - the history writer of the timing model, the 25,000-event limit, a stop
  that stays a stop, execution logging.
- :mod:`.executions` - StartExecution's limits, the AWS/States metrics, retention of
  finished executions.
- :mod:`.quotas` - the StartExecution and StateTransition quotas (token buckets), retries included.
- :mod:`.distributed` - the Distributed Map: Map Runs of child executions (:mod:`.mapruns` their
  counts and settings, :mod:`.itemio` ItemReader / ItemBatcher / ResultWriter).
- :mod:`.api` - ListExecutions, GetExecutionHistory paging, StopExecution and
  DescribeExecution as AWS answers them (a ``StepFunctionResponse`` subclass on ``url_paths``).

Importing this package declares its patches; ``moto_ext.install`` applies them.
"""

from scaleorfail.emulator.moto_ext.stepfunctions import (
    api,
    copies,
    distributed,
    executions,
    history,
    interpreter,
    quotas,
    tasks,
)

__all__ = ["api", "copies", "distributed", "executions", "history", "interpreter", "quotas", "tasks"]
