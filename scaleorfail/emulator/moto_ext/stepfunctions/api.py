"""Step Functions: the API answers as AWS gives them.

:class:`StepFunctionsAPI` is moto's ``StepFunctionResponse`` with these actions overridden,
served through moto's ``url_paths`` (moto's own extension point, as ``awslambda_simple`` does):

* ListExecutions: stopDate for TIMED_OUT executions (``ActionResult.result``).
* GetExecutionHistory: maxResults / nextToken / reverseOrder paging as AWS pages (100 events by
  default, at most 1,000), includeExecutionData=false; a page costs what it holds (:mod:`.pages`).
* StopExecution: the request's error and cause kept, ABORTED at once whatever state the execution is
  in (:mod:`scaleorfail.emulator.sfn_stop`: repeated until the program takes it, then reported
  ABORTED), answered with its stopDate (``execution.stop``, ``exec_worker.env``, ``exec_status``);
  the interpreter side is ``.history`` (set_error) and ``.interpreter`` (an interruptible Retry back-off).
* DescribeExecution: inputDetails / outputDetails, stopDate for every ended status, redriveCount
  (reads the parser ``Execution``'s ``execution_input``, ``output``, ``stop_date``, ``error``,
  ``cause``, ``state_machine_arn``).
* The errors of moto's ASL backend (``moto.stepfunctions.parser.api``: InvalidDefinition,
  TaskDoesNotExist ...) named: they declare their name as ``code``, as LocalStack's do, where moto's
  ``AWSError`` reads ``TYPE`` - so they reached a client as ``An error occurred ()``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.stepfunctions import urls as stepfunctions_urls
from moto.stepfunctions.responses import StepFunctionResponse

from scaleorfail.emulator import sfn_stop
from scaleorfail.emulator.moto_ext.core import declare, declare_each, override, replace, replace_item
from scaleorfail.emulator.moto_ext.stepfunctions import distributed, mapruns, pages

STOP_WAIT_S = 30.0  # a stop waits for a program that has not started yet (a loaded machine: seconds)
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"  # Step Functions' protocol (awsJson1_0)
RESPONSE = "moto.stepfunctions.responses.StepFunctionResponse"
ROUTE = "{0}/$"


@override(
    f"{RESPONSE}.list_executions",
    why="moto 5.2.5 leaves stopDate out for TIMED_OUT executions, and lists no Map Run's children (mapRunArn)",
)
def _list_executions(self: Any) -> Any:
    map_run_arn = self._get_param("mapRunArn")
    if map_run_arn:  # a Distributed Map's child executions (moto_ext.stepfunctions.distributed)
        return ActionResult(
            distributed.list_children(
                map_run_arn,
                self._get_param("stateMachineArn"),
                self._get_param("statusFilter"),
                int(self._get_int_param("maxResults") or 0),
                self._get_param("nextToken"),
            )
        )
    result = StepFunctionResponse.list_executions(self)
    items = result.result.get("executions", []) if isinstance(result.result, dict) else []
    missing = [i for i in items if i.get("status") == "TIMED_OUT" and "stopDate" not in i]
    for item in missing:
        execution = self.stepfunction_backend.describe_execution(item["executionArn"])
        if execution.stop_date:
            item["stopDate"] = execution.stop_date
    return result


@override(
    f"{RESPONSE}.get_execution_history",
    why="pages as AWS pages them (100 by default, at most 1,000; reverseOrder; nextToken), each costing what it "
    "holds (moto deep-copied and serialised the whole history per call, and returned it at once)",
)
def _get_execution_history(self: Any) -> Any:
    from moto.stepfunctions.exceptions import InvalidToken

    arn = self._get_param("executionArn")
    execution = self.stepfunction_backend.describe_execution(arn)  # ExecutionDoesNotExist / InvalidArn
    try:
        body = pages.page(
            execution,
            arn,
            self._get_int_param("maxResults"),
            bool(self._get_param("reverseOrder")),
            self._get_param("nextToken"),
            self._get_param("includeExecutionData") is not False,
        )
    except pages.InvalidPageTokenError as problem:
        raise InvalidToken(str(problem)) from None
    return 200, {"Content-Type": JSON_CONTENT_TYPE}, body


@override(
    f"{RESPONSE}.stop_execution",
    why="moto drops the request's error and cause, answers before the execution stopped (no stopDate), and a "
    "stop before the program started, during a Task or in a Retry back-off left it RUNNING (sfn_stop.py)",
)
def _stop_execution(self: Any) -> Any:
    """StopExecution: ABORTED at once, whatever state the execution is in, answered with its stopDate."""
    from moto.stepfunctions.parser.api import ExecutionStatus

    arn = self._get_param("executionArn")
    execution = self.stepfunction_backend.describe_execution(arn)  # ExecutionDoesNotExist / InvalidArn
    if execution.status == "RUNNING":
        error, cause = self._get_param("error"), self._get_param("cause")
        sfn_stop.stop_until_stopped(execution, datetime.now(UTC), error, cause, ExecutionStatus.ABORTED, STOP_WAIT_S)
    return ActionResult({"stopDate": execution.stop_date or datetime.now(UTC)})


@override(
    f"{RESPONSE}.describe_execution",
    why="moto leaves out inputDetails, outputDetails, redriveCount, the stopDate of TIMED_OUT executions and a "
    "Map Run child's mapRunArn",
)
def _describe_execution(self: Any) -> Any:
    arn = self._get_param("executionArn")
    execution = mapruns.child(arn) or self.stepfunction_backend.describe_execution(arn)  # an EXPRESS child too
    status = str(execution.status)
    response: dict[str, Any] = {
        "executionArn": arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": execution.start_date,
        "input": execution.execution_input,
        "inputDetails": {"included": True},
        "redriveCount": 0,
        "redriveStatus": "NOT_REDRIVABLE",
    }
    if status != "RUNNING" and execution.stop_date:
        response["stopDate"] = execution.stop_date
    if status == "SUCCEEDED":
        output = execution.output
        response["output"] = output if isinstance(output, str) else json.dumps(output, separators=(",", ":"))
        response["outputDetails"] = {"included": True}
    if status in ("FAILED", "TIMED_OUT", "ABORTED"):
        response["redriveStatus"] = "REDRIVABLE"
    if execution.error is not None:
        response["error"] = execution.error
    if execution.cause is not None:
        response["cause"] = execution.cause
    if getattr(execution, "map_run_arn", None):
        response["mapRunArn"] = execution.map_run_arn
    trace = getattr(execution, "trace_header", None)
    if trace:
        response["traceHeader"] = trace
    return ActionResult(response)


class StepFunctionsAPI(StepFunctionResponse):
    """moto's Step Functions API with the actions above answered as AWS answers them."""

    list_executions = _list_executions
    get_execution_history = _get_execution_history
    stop_execution = _stop_execution
    describe_execution = _describe_execution


@declare(f"moto.stepfunctions.urls.url_paths[{ROUTE}]", why="the Step Functions API served by StepFunctionsAPI")
def _route() -> None:
    replace_item(stepfunctions_urls, "url_paths", ROUTE, StepFunctionsAPI.dispatch)


def _parser_errors() -> tuple[str, ...]:
    """The errors of moto's ASL backend: every AWSError of its API module that names itself in ``code``."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser import api

    return tuple(
        sorted(
            name
            for name, error in vars(api).items()
            if isinstance(error, type) and issubclass(error, AWSError) and isinstance(error.__dict__.get("code"), str)
        )
    )


PARSER_ERRORS = _parser_errors()


@declare_each(
    [f"moto.stepfunctions.parser.api.{name}.TYPE" for name in PARSER_ERRORS],
    why="the error's name as its type (moto's AWSError reads TYPE; the parser's errors declare code): a "
    "client saw an empty error code",
)
def _parser_errors_named() -> None:
    from moto.stepfunctions.parser import api

    for name in PARSER_ERRORS:
        error = getattr(api, name)
        replace(error, "TYPE", error.code)  # the status stays AWSError's 400, every one's status_code
