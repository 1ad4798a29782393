"""Step Functions: executions started, ended, measured and retained.

* ``moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution``: the
  StartExecution quota (:mod:`.quotas`), unnamed executions get a name, the 256 KB input limit,
  and the append to ``StateMachine.executions`` serialised with eviction.
* ``moto.stepfunctions.models.StateMachine._handle_name_input_idempotency``: the name looked up in
  an index, not found by scanning every execution of the state machine.
* ``...parser.backend.execution.Execution.start`` and ``BaseExecutionWorkerCommunication.terminated``
  (called once, on the worker's thread, when an execution ends): the AWS/States metrics,
  execution logging (:func:`.history.log_execution`) and retention.
* Retention of finished executions (issue 12): ``Execution.exec_worker.env`` becomes a
  :class:`PackedEnvironment` (the history packed at once), the oldest are evicted from
  ``StateMachine.executions`` of the parser backend's ``state_machines`` past the budget,
  ``parser.utils.TMP_THREADS`` (every execution's Thread, kept forever by moto) is pruned, and
  ``StepFunctionsParserBackend.describe_execution`` / ``ExecutionDoesNotExist`` says an evicted
  execution was evicted.
"""

from __future__ import annotations

import json
import threading
import uuid
import weakref
from datetime import UTC, datetime
from typing import Any, ClassVar

from scaleorfail.emulator.moto_ext.core import declare, log, replace, state
from scaleorfail.emulator.moto_ext.stepfunctions import mapruns, pages
from scaleorfail.emulator.moto_ext.stepfunctions.history import log_execution
from scaleorfail.emulator.moto_ext.stepfunctions.quotas import start_allowed
from scaleorfail.emulator.runtime import Datum
from scaleorfail.emulator.settings import EmulatorSettings

MAX_PAYLOAD_BYTES = 256 * 1024
THREADS_PRUNE_AT = 2048
BACKEND = "moto.stepfunctions.parser.models.StepFunctionsParserBackend"
EXECUTION = "moto.stepfunctions.parser.backend.execution"
# a state machine's (executions list, how many of it are indexed, name -> execution): beside the machine,
# not on it - StartExecution deep-copies the machine, and executions hold locks
_NAMES: weakref.WeakKeyDictionary[Any, tuple[list[Any], int, dict[str, Any]]] = weakref.WeakKeyDictionary()
_executions_lock = threading.RLock()  # StartExecution appends to a state machine's list; eviction replaces it


def start_retention(settings: EmulatorSettings) -> None:
    """The ledger of finished executions and the tombstones of evicted ones (before the patches apply)."""
    from scaleorfail.emulator import retention

    ledger = retention.Ledger(settings.retain_executions, int(settings.retain_execution_mb * 1024 * 1024))
    state["retention"] = (ledger, retention.Tombstones())


@declare(
    f"{BACKEND}.start_execution",
    why="the StartExecution quota (ThrottlingException), unnamed executions named, inputs over 256 KB refused "
    "(InvalidExecutionInput), and the append to the state machine's executions serialised with eviction",
)
def _start_execution() -> None:
    from moto.stepfunctions.exceptions import InvalidExecutionInput
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, trace_header: Any = None
    ) -> Any:
        start_allowed(self.region_name)  # the StartExecution quota first, as AWS's front end applies it
        if execution_input is not None and len(execution_input.encode("utf-8")) > MAX_PAYLOAD_BYTES:
            raise InvalidExecutionInput(
                f"The input is {len(execution_input.encode('utf-8'))} bytes; the maximum is {MAX_PAYLOAD_BYTES} bytes."
            )
        with _executions_lock:
            return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    replace(StepFunctionsParserBackend, "start_execution", start_execution)


@declare(
    "moto.stepfunctions.models.StateMachine._handle_name_input_idempotency",
    why="an execution's name found in an index of the state machine's executions (moto scanned the whole list "
    "on every StartExecution: a tenth of the emulator's CPU after 3,000 starts, and growing)",
)
def _names_indexed() -> None:
    from moto.stepfunctions.exceptions import ExecutionAlreadyExists
    from moto.stepfunctions.models import StateMachine

    def handle_name_input_idempotency(self: Any, name: str, execution_input: str) -> Any:
        """moto 5.2.5's rule (the same name and input while RUNNING: that execution; else ExecutionAlreadyExists),
        the name looked up. Called under _executions_lock (StartExecution), the only caller."""
        execution = _by_name(self).get(name)
        if execution is None:
            return None
        if execution_input == execution.execution_input and execution.status == "RUNNING":
            return execution
        raise ExecutionAlreadyExists("Execution Already Exists: '" + execution.execution_arn + "'")

    replace(StateMachine, "_handle_name_input_idempotency", handle_name_input_idempotency)


def _by_name(machine: Any) -> dict[str, Any]:
    """The state machine's executions by name, the first of a name as moto's scan found it. The list is only
    appended to, or replaced whole (retention, Map Run clean-up): the index follows the appends and is rebuilt
    for a new list."""
    executions = machine.executions
    index = _NAMES.get(machine)
    if index is None or index[0] is not executions or index[1] > len(executions):
        index = (executions, 0, {})
    listed, names = index[1], index[2]
    for execution in executions[listed:]:
        names.setdefault(execution.name, execution)
    _NAMES[machine] = (executions, len(executions), names)
    return names


def _states_metric(execution: Any, name: str, value: float, unit: str = "Count") -> None:
    sink = state["sink"]
    arn = execution.state_machine.arn
    sink.metrics("AWS/States", [Datum(name, value, unit, {"StateMachineArn": arn}, datetime.now(UTC))])


STATUS_METRICS = {
    "SUCCEEDED": "ExecutionsSucceeded",
    "FAILED": "ExecutionsFailed",
    "TIMED_OUT": "ExecutionsTimedOut",
    "ABORTED": "ExecutionsAborted",
}


@declare(f"{EXECUTION}.Execution.start", why="AWS/States ExecutionsStarted")
@declare(
    f"{EXECUTION}.BaseExecutionWorkerCommunication.terminated",
    why="when an execution ends: the ExecutionAborted event of a program stopped before its first state (moto "
    "prunes such a program and writes none), its execution log, the AWS/States outcome metrics and "
    "ExecutionTime, then its retention (history packed, the oldest evicted)",
)
def _lifecycle() -> None:
    from moto.stepfunctions.parser.backend import execution as execution_module

    execution_class = execution_module.Execution
    original_start = execution_class.start

    def start(self: Any) -> None:
        _states_metric(self, "ExecutionsStarted", 1)
        original_start(self)

    replace(execution_class, "start", start)

    comm_class = execution_module.BaseExecutionWorkerCommunication
    original_terminated = comm_class.terminated

    def terminated(self: Any) -> None:
        _aborted_event(self.execution)
        original_terminated(self)
        execution = self.execution
        try:
            log_execution(execution)
        except Exception:  # logging must never break an execution
            log.exception("could not write the execution log")
        status = str(getattr(execution.exec_status, "value", execution.exec_status))
        if status in STATUS_METRICS:
            _states_metric(execution, STATUS_METRICS[status], 1)
            if execution.stop_date and execution.start_date:
                elapsed = (execution.stop_date - execution.start_date).total_seconds() * 1000.0
                _states_metric(execution, "ExecutionTime", elapsed, "Milliseconds")
        try:
            _retain(execution)  # after the log: packing drops the interpreter's environment
        except Exception:  # retention must never break an execution
            log.exception("could not pack a finished execution")

    replace(comm_class, "terminated", terminated)


def _aborted_event(execution: Any) -> None:
    """ExecutionAborted for a program stopped before it evaluated anything.

    moto writes ExecutionAborted at the end of the program's body; a stop that lands between
    ExecutionStarted and the first state makes moto prune the body (``EvalComponent.eval``), so the
    history ended at ExecutionStarted - an ABORTED execution without its closing event."""
    from moto.stepfunctions.parser.api import ExecutionAbortedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    env: Any = getattr(execution.exec_worker, "env", None)
    if env is None or not hasattr(env, "program_state"):
        return
    state = env.program_state()
    if not isinstance(state, ProgramStopped):
        return
    events = pages.events_of(execution)
    last = events[-1].get("type") if events else None
    if str(getattr(last, "value", last)) in ENDED_EVENTS:  # moto keeps the type as its enum
        return
    env.event_history_context.source_event_id = 0
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ExecutionAborted,
        event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict is total; it fills one
            executionAbortedEventDetails=ExecutionAbortedEventDetails(error=state.error, cause=state.cause)
        ),
    )


ENDED_EVENTS = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}


# -- retention of finished executions (issue 12) ------------------------------------------------


class PackedEvents:
    """Stands in for a finished execution's ``EventManager``: its history, packed."""

    CACHE_SIZE = 4  # unpacked histories kept: a paged read asks for the same one page after page
    _cache: ClassVar[list[tuple[PackedEvents, list[Any]]]] = []  # most recent last; entries hold their owner
    _cache_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def raw_events(self) -> list[Any]:
        """The unpacked events, shared (read them, never change them): GetExecutionHistory's pages."""
        from scaleorfail.emulator import retention

        with self._cache_lock:
            cached = next((events for owner, events in self._cache if owner is self), None)
        if cached is None:
            cached = retention.unpack(self.blob)
            with self._cache_lock:
                self._cache.append((self, cached))
                del self._cache[: -self.CACHE_SIZE]
        return cached

    def get_event_history(self) -> list[Any]:
        return list(self.raw_events())


class PackedEnvironment:
    """What a finished execution keeps of its interpreter ``Environment``.

    moto 5.2.5 reads, after an execution ended, only ``env.event_manager.get_event_history()``
    (history, execution logging), ``env.callback_pool_manager`` (SendTask* scans) and
    ``env.map_run_record_pool_manager`` (Describe/ListMapRuns), and calls ``env.set_stop``
    from StopExecution; everything else (frames, states, per-iteration inputs) is dropped.
    """

    def __init__(self, blob: bytes, env: Any) -> None:
        self.event_manager = PackedEvents(blob)
        self.callback_pool_manager = env.callback_pool_manager
        self.map_run_record_pool_manager = env.map_run_record_pool_manager

    def set_stop(self, **_: Any) -> None:
        """The execution has already ended: nothing to stop."""


def _evict(account: str, region: str, arns: set[str]) -> None:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[account][region]
    with _executions_lock:
        for machine in list(backend.state_machines):
            kept = [e for e in machine.executions if e.execution_arn not in arns]
            if len(kept) != len(machine.executions):
                machine.executions = kept  # readers still iterating the old list see it whole
    state["retention"][1].add(arns)
    mapruns.forget(arns)  # a Map Run's children, and the Map Runs of an evicted parent


def _retain(execution: Any) -> None:
    """A finished execution's history packed at once; the oldest evicted past the retention budget."""
    from moto.stepfunctions.parser import utils as parser_utils

    from scaleorfail.emulator import retention

    worker = execution.exec_worker
    env = getattr(worker, "env", None)
    if env is None or isinstance(env, PackedEnvironment):
        return
    blob = retention.pack(list(pages.events_of(execution)))  # pickled as held (no deep copy first)
    worker.env = PackedEnvironment(blob, env)
    output = execution.output
    size = len(blob) + len(execution.execution_input or "") + (len(json.dumps(output)) if output else 0)
    evicted = state["retention"][0].add(execution.exec_arn, size)
    if evicted:
        _evict(execution.account_id, execution.region_name, set(evicted))
    threads = parser_utils.TMP_THREADS  # one per execution, Map iteration worker and task: pruned when long
    if len(threads) > THREADS_PRUNE_AT:
        threads[:] = [t for t in list(threads) if t.is_alive()]


@declare(
    f"{BACKEND}.describe_execution",
    why="DescribeExecution (and so GetExecutionHistory) of an evicted execution says it was evicted",
)
def _evicted_executions() -> None:
    from moto.stepfunctions.exceptions import ExecutionDoesNotExist
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_describe = StepFunctionsParserBackend.describe_execution

    def describe_execution(self: Any, execution_arn: str) -> Any:
        try:
            return original_describe(self, execution_arn)
        except ExecutionDoesNotExist:
            if execution_arn in state["retention"][1]:
                settings: EmulatorSettings = state["settings"]
                raise ExecutionDoesNotExist(
                    f"Execution Does Not Exist: '{execution_arn}' (finished and evicted by the emulator's retention: "
                    f"it keeps the last {settings.retain_executions} finished executions, "
                    f"{settings.retain_execution_mb:g} MB; see SOF_RETAIN_EXECUTIONS in docs/emulator.md)"
                ) from None
            raise

    replace(StepFunctionsParserBackend, "describe_execution", describe_execution)
