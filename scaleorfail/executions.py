"""Step Functions executions for Activities 2 and 6: start one, wait for it, read its history.

The history is parsed by the project's one parser (scaleorfail.history); the paged reads
are scaleorfail.stepfunctions.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scaleorfail import history as histories
from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.load.batches import read_tickets
from scaleorfail.stepfunctions import TERMINAL, history_pages
from scaleorfail.target import Target


def sample_tickets(count: int, path: Path | None = None) -> list[Any]:
    return read_tickets(path or paths.tickets_file(), limit=count)


def named_bad_inputs(*names: str) -> list[Any]:
    """The tickets of data/bad_inputs.json with these names, in this order."""
    entries = {e["name"]: e["ticket"] for e in json.loads((paths.data_dir() / "bad_inputs.json").read_text("utf-8"))}
    unknown = [name for name in names if name not in entries]
    if unknown:
        raise UserError(f"no bad input named {unknown[0]!r}", f"choose one of: {', '.join(entries)}")
    return [entries[name] for name in names]


def named_bad_input(name: str) -> Any:
    return named_bad_inputs(name)[0]


@dataclass
class ExecutionReport:
    arn: str
    status: str
    started: datetime
    stopped: datetime | None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    step_durations_ms: dict[str, list[float]] = field(default_factory=dict)
    failed_state: str | None = None
    events: int = 0
    visits: list[histories.Visit] = field(default_factory=list)  # every state visit, from the history

    @property
    def duration_s(self) -> float | None:
        return None if self.stopped is None else (self.stopped - self.started).total_seconds()


def start(target: Target, state_machine_arn: str, payload: dict[str, Any], name: str | None = None) -> str:
    from botocore.exceptions import ClientError

    sfn = target.client("stepfunctions")
    try:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name or f"sof-{uuid.uuid4().hex[:12]}", input=json.dumps(payload)
        )
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in ("StateMachineDoesNotExist", "StateMachineDeleting"):
            raise
        raise UserError(
            f"the state machine {state_machine_arn} does not exist on the {target.name} target",
            f"deploy it: `make deploy TARGET={target.name}`",
        ) from None
    return str(response["executionArn"])


def wait(target: Target, execution_arn: str, timeout_s: float = 300.0) -> dict[str, Any]:
    sfn = target.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        description = dict(sfn.describe_execution(executionArn=execution_arn))
        if description["status"] in TERMINAL:
            return description
        if time.monotonic() > deadline:
            raise UserError(
                f"{execution_arn} is still {description['status']} after {timeout_s:g} s",
                "wait longer with --timeout, or look at it in the console",
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def history(target: Target, execution_arn: str) -> list[dict[str, Any]]:
    return history_pages(target.client("stepfunctions").get_execution_history, execution_arn)[0]


def run_one(target: Target, state_machine_arn: str, payload: dict[str, Any], timeout_s: float) -> ExecutionReport:
    return describe(target, start(target, state_machine_arn, payload), timeout_s)


def describe(target: Target, arn: str, timeout_s: float) -> ExecutionReport:
    """Wait for an execution to end; its status, output or error, and per-step durations from its history."""
    description = wait(target, arn, timeout_s)
    events = history(target, arn)
    timeline = histories.parse(events)
    durations, failed_state = timeline.step_durations(), timeline.failed_state()
    output = description.get("output")
    return ExecutionReport(
        arn=arn,
        status=description["status"],
        started=description["startDate"],
        stopped=description.get("stopDate"),
        output=json.loads(output) if output else None,
        error=description.get("error"),
        cause=description.get("cause"),
        step_durations_ms=durations,
        failed_state=failed_state,
        events=len(events),
        visits=timeline.visits(),
    )


REPORT_LINE = re.compile(r"REPORT RequestId: (\S+)\s+Duration: ([\d.]+) ms(?:.*?Init Duration: ([\d.]+) ms)?")


@dataclass(frozen=True)
class FunctionTime:
    """One invocation as its REPORT line tells it: the handler's own time, and the init of a cold start."""

    duration_ms: float
    init_ms: float | None  # None: a warm start


def function_times(
    target: Target, log_groups: list[str], report: ExecutionReport, wait_s: float = 15.0
) -> dict[str, FunctionTime]:
    """The REPORT lines of the execution's invocations, by RequestId (those that arrived within wait_s)."""
    wanted = {a.request_id for v in report.visits for a in v.attempts if a.request_id}
    if not wanted:
        return {}
    logs = target.client("logs")
    start = int(report.started.timestamp() * 1000) - 1000
    stop = int((report.stopped or report.started).timestamp() * 1000) + 5000
    found: dict[str, FunctionTime] = {}
    deadline = time.monotonic() + wait_s
    while True:
        for group in log_groups:
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start, "endTime": stop}
                kwargs.update({"filterPattern": '"REPORT RequestId"'} | ({"nextToken": token} if token else {}))
                page = logs.filter_log_events(**kwargs)
                for event in page.get("events", []):
                    match = REPORT_LINE.search(str(event.get("message", "")))
                    if match and match.group(1) in wanted:
                        init = float(match.group(3)) if match.group(3) else None
                        found[match.group(1)] = FunctionTime(float(match.group(2)), init)
                token = page.get("nextToken")
                if not token:
                    break
        if wanted <= set(found) or time.monotonic() > deadline:  # CloudWatch Logs can lag the execution
            return found
        time.sleep(1.0)
