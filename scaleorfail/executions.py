"""Step Functions executions: start one, wait for it, read histories and status lists.

The paged reads here (``history_pages``, ``executions_since``) are shared by Activities 2
and 6, the load harness's completion tracker and the harvester; callers pass their own
request function, so each goes through its own rate limiter.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.load.batches import read_tickets
from scaleorfail.target import Target

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


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
            f"deploy it: sof deploy --target {target.name}",
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
                "wait longer with --timeout, or look at it in the console / with `sof harvest`",
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def aware(moment: datetime) -> datetime:
    """A timestamp in UTC (boto3 returns aware ones; be safe with naive ones)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def history_pages(call: Callable[..., dict[str, Any]], execution_arn: str) -> tuple[list[dict[str, Any]], int]:
    """Every event of an execution (1,000 a page) and the number of pages read."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = call(**kwargs)
        pages += 1
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events, pages


def executions_since(
    call: Callable[..., dict[str, Any]], state_machine_arn: str, status: str, since: datetime
) -> Iterator[dict[str, Any]]:
    """ListExecutions filtered by status: the executions started since `since`, newest first.

    Paging stops at the first page that reaches older executions; `startDate` and
    `stopDate` come back in UTC. Stop iterating as soon as you have what you need.
    """
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "statusFilter": status, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = call(**kwargs)
        older = False
        for item in page.get("executions", []):
            started = aware(item["startDate"])
            if started < since:
                older = True
                continue
            stopped = item.get("stopDate")
            yield {**item, "startDate": started, "stopDate": aware(stopped) if stopped else None}
        token = page.get("nextToken")
        if not token or older:
            return


def history(target: Target, execution_arn: str) -> list[dict[str, Any]]:
    return history_pages(target.client("stepfunctions").get_execution_history, execution_arn)[0]


def step_durations(events: list[dict[str, Any]]) -> tuple[dict[str, list[float]], str | None]:
    """Durations (entered -> exited) of every state visit, by state name; and the state that failed."""
    by_id = {e["id"]: e for e in events}
    entered: dict[int, tuple[str, datetime]] = {}
    durations: dict[str, list[float]] = defaultdict(list)
    failed_state = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            entered[event["id"]] = (details["name"], event["timestamp"])
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            parent = _entered_ancestor(event, by_id, name)
            if parent is not None:
                durations[name].append((event["timestamp"] - entered[parent][1]).total_seconds() * 1000.0)
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed") and failed_state is None:
            previous = by_id.get(event.get("previousEventId", -1))
            while previous is not None and not previous["type"].endswith("StateEntered"):
                previous = by_id.get(previous.get("previousEventId", -1))
            if previous is not None:
                failed_state = previous["stateEnteredEventDetails"]["name"]
    return dict(durations), failed_state


def _entered_ancestor(event: dict[str, Any], by_id: dict[int, dict[str, Any]], name: str) -> int | None:
    current = by_id.get(event.get("previousEventId", -1))
    while current is not None:
        if current["type"].endswith("StateEntered") and current["stateEnteredEventDetails"]["name"] == name:
            return int(current["id"])
        current = by_id.get(current.get("previousEventId", -1))
    return None


def run_one(target: Target, state_machine_arn: str, payload: dict[str, Any], timeout_s: float) -> ExecutionReport:
    return describe(target, start(target, state_machine_arn, payload), timeout_s)


def describe(target: Target, arn: str, timeout_s: float) -> ExecutionReport:
    """Wait for an execution to end; its status, output or error, and per-step durations from its history."""
    description = wait(target, arn, timeout_s)
    events = history(target, arn)
    durations, failed_state = step_durations(events)
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
    )
