"""Step Functions: the Distributed Map as AWS runs it - a Map Run of child workflow executions.

moto 5.2.5 parses a Distributed Map but runs its items as threads of the parent execution: one
history, no child executions, no ItemBatcher, a MaxConcurrency read once, tolerated failure
ignored, a ResultWriter that writes an empty manifest over HTTP to port 5000. Here a Map Run
starts one **child execution** per item (or ItemBatcher batch) of a state machine of its own
(``arn:...:stateMachine:<parent>/<label>``): each child has its own history - and so its own
history writer in the timing model, its own Lambda invocations under the account's concurrency
and scaling rate, its own execution log in the parent's log group (EXPRESS children: only
there, as on AWS). At most MaxConcurrency children run at once, read again whenever a child
ends (UpdateMapRun changes it while the run goes on); more failed items than tolerated end the
Map Run with ``States.ExceedToleratedFailureThreshold`` and abort the children still running.
The parent history gets MapRunStarted / MapRunSucceeded / MapRunFailed.

Patches:

* ``...asl.parse.asl_parser.AmazonStateLanguageParser.parse``: a definition with a Distributed
  Map is parsed as moto's grammar accepts it (:func:`scaleorfail.emulator.distributed_asl.for_moto`)
  and each Distributed Map component keeps its configuration as written (``_sof_config``; walks
  ``Program.states.states``, ``StateMap.iteration_component`` / ``_states``, ``StateParallel.branches.programs``).
* ``...state_map.iteration.distributed_iteration_component.DistributedIterationComponent._eval_body``
  (``DistributedIterationComponentEvalInput``: ``map_run_record``, ``max_concurrency``, ``input_items``,
  ``item_selector``, ``tolerated_failure_*``): the Map Run (:func:`_map_run`).
* ``moto.stepfunctions.models.StepFunctionBackend._get_state_machine_for_execution``: DescribeExecution,
  GetExecutionHistory and StopExecution find a STANDARD child; an EXPRESS child's ARN stays refused
  (``InvalidArn``) but by DescribeExecution, as AWS answers (its history is its execution log).
* ``...parser.models.StepFunctionsParserBackend.describe_map_run`` / ``list_map_runs`` /
  ``update_map_run``: answered from :mod:`.mapruns`.

A child is a ``moto.stepfunctions.parser.backend.execution.Execution`` subclass whose worker
communication reports its end to the Map Run (``BaseExecutionWorkerCommunication.terminated``),
of a ``moto.stepfunctions.models.StateMachine`` built for the run (never listed by
ListStateMachines).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from scaleorfail.emulator import sfn_stop
from scaleorfail.emulator.distributed_asl import MapConfig, for_moto
from scaleorfail.emulator.moto_ext.core import declare, log, replace
from scaleorfail.emulator.moto_ext.stepfunctions import itemio, mapruns
from scaleorfail.emulator.moto_ext.stepfunctions.itemio import MapRunError
from scaleorfail.emulator.moto_ext.stepfunctions.mapruns import THRESHOLD_CAUSE, THRESHOLD_ERROR, Child, MapRun

STATE_MAP = "moto.stepfunctions.parser.asl.component.state.exec.state_map"
PARSER_BACKEND = "moto.stepfunctions.parser.models.StepFunctionsParserBackend"
BACKEND = "moto.stepfunctions.models.StepFunctionBackend"
WAKE_S = 0.2  # the dispatcher looks at the parent (stopped? timed out?) at least this often
STOP_WAIT_S = 5.0


# -- parsing: moto's grammar, and each Distributed Map's configuration kept beside its component --


def _attach(container: Any, configs: dict[tuple[str, ...], MapConfig], path: tuple[str, ...]) -> None:
    states = getattr(getattr(container, "states", None) or getattr(container, "_states", None), "states", {})
    for name, state in states.items():
        here = (*path, name)
        component = getattr(state, "iteration_component", None)
        if component is not None:
            if here in configs:
                component._sof_config = configs[here]
            else:
                _attach(component, configs, here)
        for program in getattr(getattr(state, "branches", None), "programs", None) or []:
            _attach(program, configs, here)


@declare(
    "moto.stepfunctions.parser.asl.parse.asl_parser.AmazonStateLanguageParser.parse",
    why="Distributed Map fields moto's grammar refuses (ItemBatcher, EXPRESS children, JSONL, WriterConfig, an "
    "integer ToleratedFailurePercentage) parsed as it accepts them; the component keeps the definition's own",
)
def _parser() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.parse

    def parse(definition: str) -> Any:
        text, configs = for_moto(definition)
        program, tree = original(text)
        if configs:
            _attach(program, configs, ())
        return program, tree

    replace(AmazonStateLanguageParser, "parse", staticmethod(parse))


# -- child executions ------------------------------------------------------------------------


def _child_classes() -> tuple[type, type]:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    class ChildCommunication(BaseExecutionWorkerCommunication):
        def terminated(self) -> None:
            execution: Any = self.execution
            try:
                super().terminated()  # status, execution log, metrics, retention (.executions)
            finally:
                status = str(getattr(execution.exec_status, "value", execution.exec_status))
                execution.sof_run.ended(execution.sof_child, status, execution.output, execution.error, execution.cause)

    class ChildExecution(Execution):
        sof_run: MapRun
        sof_child: Child
        map_run_arn: str

        def _get_start_execution_worker_comm(self) -> Any:
            return ChildCommunication(self)

    return ChildExecution, ChildCommunication


_classes: list[type] = []


def _child_machine(parent: Any, run: MapRun, config: MapConfig) -> Any:
    from moto.stepfunctions.models import StateMachine

    machine = parent.state_machine
    label = run.state_machine_arn.rsplit("/", 1)[1]
    child = cast(Any, StateMachine)(
        arn=run.state_machine_arn,
        name=f"{machine.name}/{label}",
        definition=config.child_definition(),
        roleArn=machine.roleArn,
        backend=machine.backend,
        loggingConfiguration=getattr(machine, "loggingConfiguration", None),
        tracingConfiguration=getattr(machine, "tracingConfiguration", None),
        sm_type=config.execution_type,
    )
    child.sm_type = config.execution_type
    return child


def _start_child(run: MapRun, machine: Any, parent: Any, payload: Any, items: int, index: int) -> Child:
    """A child execution started (call with the run's lock held)."""
    from moto.stepfunctions.parser.api import StateMachineType

    if not _classes:
        _classes.extend(_child_classes())
    name = str(uuid.uuid4())
    express = run.execution_type == "EXPRESS"
    base = run.state_machine_arn.replace(":stateMachine:", ":express:" if express else ":execution:")
    execution = _classes[0](
        name=name,
        sm_type=StateMachineType(run.execution_type),
        role_arn=machine.roleArn,
        exec_arn=f"{base}:{name}:{uuid.uuid4()}" if express else f"{base}:{name}",
        account_id=parent.account_id,
        region_name=parent.region_name,
        state_machine=machine,
        start_date=datetime.now(UTC),
        cloud_watch_logging_session=None,
        activity_store={},
        input_data=json.dumps(payload, separators=(",", ":")),
    )
    child = Child(index, items, execution)
    execution.sof_run, execution.sof_child, execution.map_run_arn = run, child, run.arn
    run.started(child)
    machine.executions.append(execution)
    mapruns.add_child(execution)
    execution.start()
    return child


def _abort(run: MapRun, cause: str) -> None:
    """Stop every child still running: ABORTED at once, as StopExecution does."""
    from moto.stepfunctions.parser.api import ExecutionStatus

    with run.lock:
        running = [c for c in run.children if c.status == "RUNNING"]
    moment = datetime.now(UTC)
    for child in running:
        sfn_stop.stop_until_stopped(child.execution, moment, None, cause, ExecutionStatus.ABORTED, STOP_WAIT_S)
        run.ended(child, "ABORTED", error=None, cause=cause)


def _dispatch(run: MapRun, env: Any, machine: Any, parent: Any, inputs: list[tuple[Any, int]]) -> str | None:
    """Run the children, at most the Map Run's max concurrency at once; why it stopped early, else None."""
    following = 0
    with run.lock:
        while True:
            if not env.is_running():
                reason = "parent"
                break
            if run.exceeded():
                reason = "threshold"
                break
            running = run.execution_counts["running"]
            if following >= len(inputs) and running == 0:
                return None
            while following < len(inputs) and running < run.slots:
                payload, items = inputs[following]
                _start_child(run, machine, parent, payload, items, following)
                following += 1
                running += 1
            run.lock.wait(WAKE_S)
    _abort(run, "the parent execution ended" if reason == "parent" else THRESHOLD_CAUSE)
    return reason


def _outputs(run: MapRun) -> list[Any]:
    """The Map's output without a ResultWriter: each child's output (a failure's Error and Cause), in item order."""
    with run.lock:
        children = sorted(run.children, key=lambda c: c.index)
    return [c.output if c.status == "SUCCEEDED" else {"Error": c.error, "Cause": c.cause} for c in children]


# -- the Map Run -----------------------------------------------------------------------------


def _details(**details: Any) -> Any:
    """moto's EventDetails (a TypedDict of every kind of details, of which an event carries one)."""
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    return cast(Any, EventDetails)(**details)


def _failure(env: Any, error: str, cause: str) -> Exception:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    known = next((t for t in StatesErrorNameType if t.to_name() == error), None)  # States.* names are typed
    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=known) if known is not None else CustomErrorName(error),
            event_type=HistoryEventType.MapRunFailed,
            event_details=_details(mapRunFailedEventDetails=MapRunFailedEventDetails(error=error, cause=cause)),
        )
    )


def _selected(env: Any, eval_input: Any, items: list[Any], state_input: Any) -> list[Any]:
    """Each item through the Map's ItemSelector (with $$.Map.Item), as an inline iteration sees it."""
    if eval_input.item_selector is None:
        return items
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    frame = env.open_frame()
    try:
        out = []
        for index, item in enumerate(items):
            frame.states.context_object.context_object_data["Map"] = MapData(Item=ItemData(Index=index, Value=item))
            frame.states.reset(input_value=state_input)
            frame.stack.append(state_input)
            eval_input.item_selector.eval(frame)
            out.append(frame.stack.pop())
        return out
    finally:
        env.delete_frame(frame)


def _parent(env: Any) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    details = env.aws_execution_details
    arn = env.states.context_object.context_object_data["Execution"]["Id"]
    return stepfunctions_parser_backends[details.account][details.region].describe_execution(arn)


def _map_run(component: Any, env: Any) -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails, MapRunStartedEventDetails

    eval_input = env.stack.pop()
    record = eval_input.map_run_record
    config: MapConfig = getattr(component, "_sof_config", None) or MapConfig(state=eval_input.state_name)
    run = MapRun(
        arn=record.map_run_arn,
        execution_arn=record.execution_arn,
        state_machine_arn=record.map_state_machine_arn,
        execution_type=config.execution_type,
        max_concurrency=int(eval_input.max_concurrency or 0),
        tolerated_count=int(eval_input.tolerated_failure_count or 0),
        tolerated_percentage=float(eval_input.tolerated_failure_percentage or 0.0),
        count_set=bool(config.declared & {"ToleratedFailureCount", "ToleratedFailureCountPath"}),
        percentage_set=bool(config.declared & {"ToleratedFailurePercentage", "ToleratedFailurePercentagePath"}),
    )
    mapruns.register(run)
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.MapRunStarted,
        event_details=_details(mapRunStartedEventDetails=MapRunStartedEventDetails(mapRunArn=run.arn)),
    )
    state_input = env.states.get_input()
    context = env.states.context_object.context_object_data
    account = env.aws_execution_details.account
    try:
        if config.item_reader is not None:
            items = itemio.read_items(config.item_reader, state_input, context, account)
        else:
            items = list(eval_input.input_items or [])
        selected = _selected(env, eval_input, items, state_input)
        inputs = itemio.batches(selected, config.item_batcher, state_input, context)
        limit = itemio.MAX_CHILD_INPUT_BYTES
        too_big = next((i for i, (payload, _) in enumerate(inputs) if len(json.dumps(payload)) > limit), None)
        if too_big is not None:
            raise MapRunError("States.DataLimitExceeded", f"The input of child execution {too_big} exceeds 256 KB")
        run.planned(len(items), len(inputs))
        parent = _parent(env)
        stopped = _dispatch(run, env, _child_machine(parent, run, config), parent, inputs)
        if stopped == "parent":  # stopped or timed out: the parent's history ends with that, not with the Map Run
            run.finish("ABORTED")
            env.stack.append([])
            return
        if stopped == "threshold":
            raise MapRunError(THRESHOLD_ERROR, THRESHOLD_CAUSE)
        if config.result_writer is not None:
            result: Any = itemio.write_results(run, config.result_writer, state_input, context, account)
        else:
            result = _outputs(run)
    except MapRunError as failure:
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.MapRunFailed,
            event_details=_details(
                mapRunFailedEventDetails=MapRunFailedEventDetails(error=failure.error, cause=failure.cause)
            ),
        )
        run.finish("FAILED")
        raise _failure(env, failure.error, failure.cause) from None
    except Exception:
        log.exception("Map Run %s failed", run.arn)
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.MapRunFailed,
            event_details=_details(mapRunFailedEventDetails=MapRunFailedEventDetails()),
        )
        run.finish("FAILED")
        _abort(run, "the Map Run failed")
        raise
    env.event_manager.add_event(context=env.event_history_context, event_type=HistoryEventType.MapRunSucceeded)
    run.finish("SUCCEEDED")
    env.stack.append(result)


@declare(
    f"{STATE_MAP}.iteration.distributed_iteration_component.DistributedIterationComponent._eval_body",
    why="a Map Run of child executions (own histories, ItemReader/ItemBatcher/ResultWriter, live max concurrency, "
    "tolerated failure deciding the outcome) instead of threads inside the parent's history",
)
def _distributed_map() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as module,
    )

    replace(module.DistributedIterationComponent, "_eval_body", _map_run)


# -- where the API finds children and Map Runs ------------------------------------------------


@declare(
    f"{BACKEND}._get_state_machine_for_execution",
    why="a child execution's state machine is its Map Run's (<parent>/<label>), not one ListStateMachines lists",
)
def _children() -> None:
    """DescribeExecution, GetExecutionHistory and StopExecution find a STANDARD child through its state
    machine; an EXPRESS child's ARN (``:express:``) stays refused with InvalidArn by moto's ARN check, as AWS
    refuses GetExecutionHistory and StopExecution of an Express execution - DescribeExecution and
    ListExecutions(mapRunArn) read the Map Run's own registry (.api)."""
    from moto.stepfunctions.models import StepFunctionBackend

    original = StepFunctionBackend._get_state_machine_for_execution

    def lookup(self: Any, execution_arn: str) -> Any:
        found = mapruns.child(execution_arn)
        return found.state_machine if found is not None else original(self, execution_arn)

    replace(StepFunctionBackend, "_get_state_machine_for_execution", lookup)


@declare(f"{PARSER_BACKEND}.describe_map_run", why="DescribeMapRun of the emulator's Map Runs (counts, settings)")
@declare(f"{PARSER_BACKEND}.list_map_runs", why="ListMapRuns of an execution from the emulator's Map Runs")
@declare(
    f"{PARSER_BACKEND}.update_map_run",
    why="UpdateMapRun changes a running Map Run's max concurrency and tolerated failure (moto: read once)",
)
def _map_run_api() -> None:
    from moto.stepfunctions.exceptions import ResourceNotFound, ValidationException
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    def find(arn: str) -> MapRun:
        run = mapruns.RUNS.get(arn)
        if run is None:
            raise ResourceNotFound(arn)
        return run

    def describe_map_run(self: Any, map_run_arn: str) -> dict[str, Any]:
        return find(map_run_arn).describe()

    def list_map_runs(self: Any, execution_arn: str) -> dict[str, Any]:
        self.describe_execution(execution_arn)  # ExecutionDoesNotExist as AWS says it
        return {"mapRuns": [run.list_item() for run in mapruns.of_execution(execution_arn)]}

    def update_map_run(self: Any, map_run_arn: str, max_concurrency: Any, **tolerated: Any) -> None:
        run = find(map_run_arn)
        count, percentage = tolerated.get("tolerated_failure_count"), tolerated.get("tolerated_failure_percentage")
        if run.status != "RUNNING":
            raise ValidationException(f"Map Run {map_run_arn} is {run.status}: only a running Map Run can be updated")
        run.update(
            None if max_concurrency is None else int(max_concurrency),
            None if count is None else int(count),
            None if percentage is None else float(percentage),
        )

    replace(StepFunctionsParserBackend, "describe_map_run", describe_map_run)
    replace(StepFunctionsParserBackend, "list_map_runs", list_map_runs)
    replace(StepFunctionsParserBackend, "update_map_run", update_map_run)


def list_children(
    map_run_arn: str, state_machine_arn: str | None, status: str | None, max_results: int, token: str | None
) -> dict[str, Any]:
    """ListExecutions(mapRunArn): the Map Run's child executions, newest first, paged as AWS pages."""
    from moto.stepfunctions.exceptions import InvalidToken, ResourceNotFound, ValidationException

    if state_machine_arn:
        raise ValidationException("You can specify either a mapRunArn or a stateMachineArn, but not both")
    run = mapruns.RUNS.get(map_run_arn)
    if run is None:
        raise ResourceNotFound(map_run_arn)
    items = run.child_items(status)
    start = 0
    if token:
        prefix, _, offset = token.rpartition(":")
        if prefix != run.arn.rsplit(":", 1)[1] or not offset.isdigit():
            raise InvalidToken("the nextToken does not belong to this Map Run")
        start = int(offset)
    size = max_results if 0 < max_results <= mapruns.PAGE_MAX else mapruns.PAGE_DEFAULT
    out: dict[str, Any] = {"executions": items[start : start + size]}
    if start + size < len(items):
        out["nextToken"] = f"{run.arn.rsplit(':', 1)[1]}:{start + size}"
    return out
