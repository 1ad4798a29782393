"""Step Functions: the API answers as AWS gives them.

:class:`StepFunctionsAPI` is moto's ``StepFunctionResponse`` with these actions overridden,
served through moto's ``url_paths`` (moto's own extension point, as ``awslambda_simple`` does):

* ListExecutions: stopDate for TIMED_OUT executions (``ActionResult.result``).
* GetExecutionHistory: maxResults / nextToken / reverseOrder paging as AWS pages (at most 1,000
  events), includeExecutionData=false.
* StopExecution: the request's error and cause kept, ABORTED at once whatever state the execution is
  in (:mod:`scaleorfail.emulator.sfn_stop`: repeated until the program takes it, then reported
  ABORTED), answered with its stopDate (``execution.stop``, ``exec_worker.env``, ``exec_status``);
  the interpreter side is ``.history`` (set_error) and ``.interpreter`` (an interruptible Retry back-off).
* DescribeExecution: inputDetails / outputDetails, stopDate for every ended status, redriveCount
  (reads the parser ``Execution``'s ``execution_input``, ``output``, ``stop_date``, ``error``,
  ``cause``, ``state_machine_arn``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.stepfunctions import urls as stepfunctions_urls
from moto.stepfunctions.responses import StepFunctionResponse

from scaleorfail.emulator import sfn_stop
from scaleorfail.emulator.moto_ext.core import declare, override, replace_item

HISTORY_PAGE_MAX = 1000
STOP_WAIT_S = 30.0  # a stop waits for a program that has not started yet (a loaded machine: seconds)
EXECUTION_DATA_FIELDS = ("input", "output", "inputDetails", "outputDetails")
RESPONSE = "moto.stepfunctions.responses.StepFunctionResponse"
ROUTE = "{0}/$"


@override(f"{RESPONSE}.list_executions", why="moto 5.2.5 leaves stopDate out for TIMED_OUT executions")
def _list_executions(self: Any) -> Any:
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
    why="maxResults/nextToken/reverseOrder paging as AWS pages (moto returned every event at once)",
)
def _get_execution_history(self: Any) -> Any:
    execution_arn = self._get_param("executionArn")
    max_results = self._get_int_param("maxResults") or HISTORY_PAGE_MAX
    max_results = max(1, min(int(max_results), HISTORY_PAGE_MAX))
    reverse = bool(self._get_param("reverseOrder"))
    token = self._get_param("nextToken")
    history = self.stepfunction_backend.get_execution_history(execution_arn)
    events = list(history["events"])
    if reverse:
        events.reverse()
    start = 0
    if token:
        try:
            start = int(str(token).rsplit(":", 1)[1])
        except (IndexError, ValueError):
            from moto.stepfunctions.exceptions import InvalidToken

            raise InvalidToken("the nextToken does not belong to this history") from None
    page = events[start : start + max_results]
    if self._get_param("includeExecutionData") is False:
        page = without_execution_data(page)
    result: dict[str, Any] = {"events": page}
    if start + max_results < len(events):
        result["nextToken"] = f"{execution_arn}:{start + max_results}"
    return ActionResult(result)


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
    why="moto leaves out inputDetails, outputDetails, redriveCount and the stopDate of TIMED_OUT executions",
)
def _describe_execution(self: Any) -> Any:
    arn = self._get_param("executionArn")
    execution = self.stepfunction_backend.describe_execution(arn)
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
    trace = getattr(execution, "trace_header", None)
    if trace:
        response["traceHeader"] = trace
    return ActionResult(response)


def without_execution_data(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History events as GetExecutionHistory gives them with includeExecutionData=false."""
    out = []
    for event in events:
        copy = dict(event)
        for key, value in event.items():
            if key.endswith("EventDetails") and isinstance(value, dict):
                copy[key] = {k: v for k, v in value.items() if k not in EXECUTION_DATA_FIELDS}
        out.append(copy)
    return out


class StepFunctionsAPI(StepFunctionResponse):
    """moto's Step Functions API with the actions above answered as AWS answers them."""

    list_executions = _list_executions
    get_execution_history = _get_execution_history
    stop_execution = _stop_execution
    describe_execution = _describe_execution


@declare(f"moto.stepfunctions.urls.url_paths[{ROUTE}]", why="the Step Functions API served by StepFunctionsAPI")
def _route() -> None:
    replace_item(stepfunctions_urls, "url_paths", ROUTE, StepFunctionsAPI.dispatch)
