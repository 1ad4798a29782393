"""Step Functions: the execution history - written at the timing model's pace, limited, logged.

* ``...asl.eval.event.event_manager.EventManager.add_event`` (``_mutex``, ``_event_id_gen._next_id``)
  and ``...asl.eval.environment.Environment.__init__`` (``event_manager``): every history event
  passes the execution's serialised writer (:class:`scaleorfail.emulator.timing.HistoryWriter`),
  TaskStarted waits for the modelled dispatch latency, and the 25,000-event history limit
  (the execution fails with States.Runtime as event 25,000, as on AWS); a history ended by the
  execution's TimeoutSeconds (:func:`end_timed_out`) takes no further event.
* ``...asl.eval.environment.Environment.set_error`` (``_program_state``): a stopped or
  timed-out program stays so (a Map iteration reporting its abort no longer turned an
  ABORTED execution FAILED), and past the limit the limit is the error.
* :func:`log_execution`: Step Functions execution logging (``execution.state_machine.loggingConfiguration``,
  the events as :func:`.pages.events_of` reads them) into CloudWatch Logs, called when an execution ends
  (:mod:`.executions`).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from scaleorfail.emulator.moto_ext.core import declare, replace, runtime, state
from scaleorfail.emulator.moto_ext.stepfunctions import pages
from scaleorfail.emulator.moto_ext.stepfunctions.quotas import transition
from scaleorfail.emulator.timing import PACER, HistoryWriter
from scaleorfail.pipeline import HISTORY_EVENT_LIMIT

HISTORY_LIMIT_CAUSE = f"The execution reached the maximum number of history events ({HISTORY_EVENT_LIMIT})."
EVAL = "moto.stepfunctions.parser.asl.eval"


_writer_setup = threading.Lock()


def _history_writer(manager: Any) -> tuple[HistoryWriter, threading.Lock]:
    """The execution's history writer (one per EventManager, i.e. per execution) and its append lock."""
    found = manager.__dict__.get("_sof_writer")
    if found is None:
        with _writer_setup:
            found = manager.__dict__.get("_sof_writer")
            if found is None:
                settings = runtime().settings
                writer = HistoryWriter(settings.history_write_ms / 1000.0, settings.history_event_ms / 1000.0)
                found = manager._sof_writer = (writer, threading.Lock())
    return found  # type: ignore[no-any-return]


def _before_event(manager: Any, event_type: Any) -> Any:
    """What the timing model and the quotas make an event wait for before its write; returns the settings."""
    settings = runtime().settings
    kind = str(getattr(event_type, "value", event_type))
    if kind == "TaskStarted":
        PACER.sleep(settings.task_dispatch_ms / 1000.0)  # Step Functions -> Lambda dispatch
    elif kind.endswith("StateEntered"):
        transition(manager.__dict__.get("_sof_root"))  # a state transition: its StateTransition token
    return settings


@declare(
    f"{EVAL}.event.event_manager.EventManager.add_event",
    why="history events pass the execution's serialised writer (timing model), TaskStarted waits for the "
    "dispatch latency, and the 25,000th event ends the execution with States.Runtime",
)
@declare(
    f"{EVAL}.environment.Environment.__init__",
    why="the root environment known to its event manager (frames share the root's manager)",
)
@declare(
    f"{EVAL}.environment.Environment.set_error",
    why="a stopped or timed-out program stays so (StopExecution of a Map: ABORTED, not FAILED); past the "
    "history limit, the limit is the error",
)
def _history() -> None:
    """Every history event passes the execution's serialised writer (timing.HistoryWriter);
    TaskStarted waits for the modelled dispatch first. The 25,000th event of a history that
    is still growing becomes, as on AWS, ExecutionFailed with States.Runtime; events after
    that are dropped (the iterations still running see the execution failed and stop)."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval import environment as environment_module
    from moto.stepfunctions.parser.asl.eval.event import event_manager as event_module
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped, ProgramTimedOut

    manager_class = event_module.EventManager
    original_add = manager_class.add_event
    environment_class = environment_module.Environment
    original_init = environment_class.__init__
    original_set_error = environment_class.set_error
    terminal = {
        HistoryEventType.ExecutionFailed,
        HistoryEventType.ExecutionSucceeded,
        HistoryEventType.ExecutionAborted,
        HistoryEventType.ExecutionTimedOut,
    }
    limit_error = ExecutionFailedEventDetails(error="States.Runtime", cause=HISTORY_LIMIT_CAUSE)

    def add_event(
        self: Any,
        context: Any,
        event_type: Any,
        event_details: Any = None,
        timestamp: Any = None,
        update_source_event_id: bool = True,
    ) -> int:
        settings = _before_event(self, event_type)
        writer, order = _history_writer(self)
        writer.write()
        reached = False
        added: int | None = None
        with order:  # the limit check and the append are one step
            next_id = int(self._event_id_gen._next_id)
            if self.__dict__.get("_sof_ended"):
                return next_id - 1  # ended by its timeout (end_timed_out): nothing follows on AWS
            capped = bool(self.__dict__.get("_sof_capped"))
            if event_type in terminal:
                if capped:
                    event_type = HistoryEventType.ExecutionFailed
                    event_details = {"executionFailedEventDetails": limit_error}  # an EventDetails
            elif (capped or next_id >= HISTORY_EVENT_LIMIT) and not capped:
                self._sof_capped = reached = True
            if not (capped or reached) or event_type in terminal:
                added = int(original_add(self, context, event_type, event_details, timestamp, update_source_event_id))
        if added is not None:
            if event_type == HistoryEventType.ExecutionStarted:
                PACER.sleep(settings.execution_start_ms / 1000.0)  # before the first state (timing model)
            return added
        if reached:
            root = self.__dict__.get("_sof_root")
            if root is not None:
                root.set_error(limit_error)
        return next_id - 1

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.event_manager._sof_root = self  # frames replace theirs with the root's shared manager

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, (ProgramStopped, ProgramTimedOut)):
            return  # a Map iteration reporting its abort as an error does not overwrite the stop
        if self.event_manager.__dict__.get("_sof_capped"):
            error = limit_error  # the limit is why it failed, whatever an iteration raised afterwards
        original_set_error(self, error)

    replace(manager_class, "add_event", add_event)
    replace(environment_class, "__init__", init)
    replace(environment_class, "set_error", set_error)


def end_timed_out(env: Any) -> None:
    """Ends an execution's history at its TimeoutSeconds, as AWS does: ExecutionTimedOut now, nothing after
    (moto's program wrote it only once the state in flight ended, and went on adding that state's events)."""
    from moto.stepfunctions.parser.api import ExecutionTimedOutEventDetails, HistoryEventType

    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ExecutionTimedOut,
        event_details={"executionTimedOutEventDetails": ExecutionTimedOutEventDetails()},  # an EventDetails
    )
    env.event_manager._sof_ended = True


ERROR_EVENTS = ("Failed", "TimedOut", "Aborted")


def log_execution(execution: Any) -> None:
    """Step Functions execution logging: history events as JSON lines in the configured log group.

    AWS delivers them as they happen; here they are written when the execution ends. The
    level works as on AWS: ALL (every event), ERROR (failures), FATAL (execution failures).
    """
    config = getattr(execution.state_machine, "loggingConfiguration", None) or {}
    level = config.get("level", "OFF")
    destinations = config.get("destinations") or []
    if level == "OFF" or not destinations:
        return
    arn = destinations[0].get("cloudWatchLogsLogGroup", {}).get("logGroupArn", "")
    group = arn.split(":log-group:", 1)[-1].removesuffix(":*")
    include_data = bool(config.get("includeExecutionData"))
    events = pages.events_of(execution)  # read as held: moto's to_history_output deep-copies the whole history
    lines: list[tuple[int, str]] = []
    for event in events:
        kind = str(getattr(event["type"], "value", event["type"]))
        if level == "ERROR" and not kind.endswith(ERROR_EVENTS):
            continue
        if level == "FATAL" and kind not in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            continue
        details = next((dict(v) for k, v in event.items() if k.endswith("EventDetails")), {})
        if not include_data:
            for key in ("input", "output", "parameters"):
                details.pop(key, None)
        moment = event["timestamp"]
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        stamp = int(moment.timestamp() * 1000) if hasattr(moment, "timestamp") else int(moment)
        record = {
            "id": str(event["id"]),
            "type": kind,
            "details": details,
            "previous_event_id": str(event.get("previousEventId", 0)),
            "event_timestamp": str(stamp),
            "execution_arn": execution.exec_arn,
            "redrive_count": "0",
        }
        lines.append((stamp, json.dumps(record, default=str, separators=(",", ":"))))
    stream = f"states/{execution.state_machine.name}/{datetime.now(UTC):%Y-%m-%d-%H-%M}/{execution.name}"
    state["sink"].log_events(group, stream, lines)
