"""Execution histories -> per-item, per-step timings: the project's one history parser.

The harvest (every run's record), Activities 2 and 6 (`sof invoke-one`, `sof bad-input`)
and the tests read histories through :func:`parse`.

Step Functions history events chain through ``previousEventId``: every event of a Map
iteration descends from that iteration's ``MapIterationStarted``. Walking the chain
attributes each event to its item, so a history of thousands of interleaved events
becomes, per ticket: when it waited for a free Map slot, each state visit, each Lambda
attempt (scheduled -> started -> ended, with its error), and how the item ended.

Times are epoch milliseconds. The optimized ``lambda:invoke`` integration emits
TaskScheduled/TaskStarted/TaskSucceeded|TaskFailed (not the LambdaFunction* events), so
those are what the task timings come from.

An iteration ends at its MapIterationSucceeded/Failed/Aborted. On AWS (and in moto) the
Map's own MapStateSucceeded and MapStateExited name the *last* iteration's end event as
their previous event: the chain leaves the iteration there, so those belong to the
Map's visit at the top level, not to the last ticket.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scaleorfail.pipeline import PROCESS_TICKETS

TERMINAL_TASK_EVENTS = ("TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskSubmitFailed", "TaskStartFailed")
ITERATION_END = ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted")
# Step Functions names a function that timed out or died for memory "Lambda.Unknown" when the
# payload carries no errorType, or "Runtime.ExitError"; only the cause tells which.
VAGUE_ERRORS = ("Lambda.Unknown", "Runtime.ExitError")


def qualified_error(error: str, cause: str | None) -> str:
    """AWS's error name, qualified by its cause where the name alone hides what happened."""
    if error not in VAGUE_ERRORS or not cause:
        return error
    text = cause.lower()
    if "task timed out" in text or "sandbox.timedout" in text:
        return f"{error} (timed out)"
    if "signal: killed" in text or "outofmemory" in text or "out of memory" in text:
        return f"{error} (out of memory)"
    return error


# Where a task attempt's Lambda RequestId is written: the lambda:invoke result's SDK metadata (success),
# the Python runtime's error payload ("requestId"), or the runtime's own message (timeouts, deaths).
_REQUEST_ID_IN_TEXT = re.compile(
    r"RequestId: ([0-9a-fA-F-]{36})|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) Task timed out"
)
NEVER_RAN_ERRORS = ("Lambda.TooManyRequestsException",)  # refused before it ran: its cause's id is the API call's


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def succeeded_request_id(output: Any) -> str | None:
    """The invocation's RequestId in a lambda:invoke result (TaskSucceeded output), when it is there."""
    result = _json(output)
    if not isinstance(result, dict):
        return None
    metadata = result.get("SdkResponseMetadata") or {}
    found = metadata.get("RequestId") if isinstance(metadata, dict) else None
    if not found:
        headers = (result.get("SdkHttpMetadata") or {}).get("HttpHeaders") or {}
        found = headers.get("x-amzn-RequestId") if isinstance(headers, dict) else None
    return str(found) if found else None


def failed_request_id(error: str, cause: Any) -> str | None:
    """The RequestId of an invocation that ran and failed, from its TaskFailed cause."""
    if error in NEVER_RAN_ERRORS or not isinstance(cause, str):
        return None
    payload = _json(cause)
    if isinstance(payload, dict) and payload.get("requestId"):
        return str(payload["requestId"])
    match = _REQUEST_ID_IN_TEXT.search(cause)
    return (match.group(1) or match.group(2)) if match else None


EXECUTION_END = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}


def epoch_ms(moment: Any) -> float:
    if isinstance(moment, datetime):
        return moment.timestamp() * 1000.0
    if isinstance(moment, (int, float)):
        return float(moment)
    return datetime.fromisoformat(str(moment)).timestamp() * 1000.0


@dataclass
class Attempt:
    scheduled: float
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    request_id: str | None = None  # the Lambda invocation's RequestId, when the history carries it

    @property
    def duration_ms(self) -> float | None:
        """Task time: started -> ended (the Lambda invocation as Step Functions saw it)."""
        return None if self.started is None or self.ended is None else self.ended - self.started

    @property
    def schedule_delay_ms(self) -> float | None:
        return None if self.started is None else self.started - self.scheduled


@dataclass
class Visit:
    step: str
    entered: float
    exited: float | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def duration_ms(self) -> float | None:
        return None if self.exited is None else self.exited - self.entered

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)


@dataclass
class Item:
    index: int
    started: float
    ended: float | None = None
    status: str = "RUNNING"
    visits: list[Visit] = field(default_factory=list)

    @property
    def duration_ms(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


@dataclass
class Timeline:
    start: float
    stop: float | None = None
    status: str = "RUNNING"
    map_started: float | None = None
    map_length: int | None = None
    items: list[Item] = field(default_factory=list)
    top: list[Visit] = field(default_factory=list)  # state visits outside the Map iterations
    error: str | None = None
    cause: str | None = None
    events: int = 0
    state_transitions: int = 0
    map_runs: list[str] = field(default_factory=list)  # a Distributed Map's Map Runs (MapRunStarted), in order

    def visits(self) -> list[Visit]:
        """Every state visit: the top-level ones, then each ticket's, in ticket order."""
        return [*self.top, *(visit for item in self.items for visit in item.visits)]

    def step_durations(self) -> dict[str, list[float]]:
        """Entered -> exited of every finished state visit, by state name (Activity 2's table)."""
        durations: dict[str, list[float]] = {}
        for visit in self.visits():
            if visit.duration_ms is not None:
                durations.setdefault(visit.step, []).append(visit.duration_ms)
        return durations

    def failed_state(self) -> str | None:
        """The state a failed execution failed in: the last failed attempt of a failed ticket (else any)."""
        failed = [i for i in self.items if i.status == "FAILED"] or self.items
        for item in failed:
            for visit in reversed(item.visits):
                if visit.attempts and visit.attempts[-1].error:
                    return visit.step
        unfinished = [v for v in self.top if v.exited is None and v.step != PROCESS_TICKETS]
        return unfinished[0].step if unfinished and self.status == "FAILED" else None


def _index(details: dict[str, Any]) -> int:
    return int(details.get("index", 0))


def _details(event: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
    return found


def _visit(visits: list[Visit], kind: str, event: dict[str, Any], at: float) -> bool:
    """Track a state entered/exited into `visits`; False when the event is something else."""
    if kind.endswith("StateEntered"):
        visits.append(Visit(str(event["stateEnteredEventDetails"]["name"]), at))
    elif kind.endswith("StateExited") and visits:
        visits[-1].exited = at
    else:
        return False
    return True


def _item_event(item: Item, kind: str, event: dict[str, Any], at: float) -> None:
    if kind in ITERATION_END:
        item.ended = at
        item.status = {"MapIterationSucceeded": "SUCCEEDED", "MapIterationFailed": "FAILED"}.get(kind, "ABORTED")
        if item.status == "SUCCEEDED" and (not item.visits or item.visits[-1].exited is None):
            # the execution ended around it (the emulator reports these iterations as succeeded; AWS aborts them)
            item.status = "ABORTED"
    elif not _visit(item.visits, kind, event, at):
        _task_event(item.visits, kind, event, at)


def _task_event(visits: list[Visit], kind: str, event: dict[str, Any], at: float) -> None:
    """A task attempt's event, into the last visit (an item's, or a child execution's own top-level one)."""
    if not visits:
        return
    if kind == "TaskScheduled":
        visits[-1].attempts.append(Attempt(scheduled=at))
    elif kind == "TaskStarted" and visits[-1].attempts:
        visits[-1].attempts[-1].started = at
    elif kind in TERMINAL_TASK_EVENTS and visits[-1].attempts:
        attempt = visits[-1].attempts[-1]
        attempt.ended = at
        details = _details(event)
        if kind == "TaskSucceeded":
            attempt.request_id = succeeded_request_id(details.get("output"))
        else:
            error = str(details.get("error") or kind)
            attempt.error = qualified_error(error, details.get("cause"))
            attempt.request_id = failed_request_id(error, details.get("cause"))


def parse(events: list[dict[str, Any]]) -> Timeline:
    """A Timeline from the events of one execution (any order; ids decide)."""
    ordered = sorted(events, key=lambda e: int(e["id"]))
    timeline = Timeline(start=epoch_ms(ordered[0]["timestamp"]) if ordered else 0.0, events=len(ordered))
    owner: dict[int, int | None] = {}
    items: dict[int, Item] = {}
    for event in ordered:
        kind = str(event["type"])
        at = epoch_ms(event["timestamp"])
        event_id = int(event["id"])
        parent = event.get("previousEventId")
        item_index = owner.get(int(parent)) if parent is not None else None
        if kind.endswith("StateEntered"):
            timeline.state_transitions += 1
        if kind == "MapIterationStarted":
            item_index = _index(event.get("mapIterationStartedEventDetails", {}))
            items[item_index] = Item(item_index, at)
        # An iteration's end event closes its chain: what names it as previous is the Map's.
        owner[event_id] = None if kind in ITERATION_END else item_index
        if kind == "ExecutionStarted":
            timeline.start = at
        elif kind in EXECUTION_END:
            timeline.stop = at
            timeline.status = EXECUTION_END[kind]
            details = _details(event)
            timeline.cause = details.get("cause")
            timeline.error = qualified_error(details["error"], timeline.cause) if details.get("error") else None
        elif kind == "MapRunStarted":
            timeline.map_runs.append(str(event.get("mapRunStartedEventDetails", {}).get("mapRunArn", "")))
        elif kind == "MapStateStarted" and timeline.map_started is None:
            timeline.map_started = at
            timeline.map_length = int(event.get("mapStateStartedEventDetails", {}).get("length", 0) or 0)
        if item_index is None:
            if not _visit(timeline.top, kind, event, at):
                _task_event(timeline.top, kind, event, at)  # a Distributed Map's child runs its tasks at the top
        elif item_index in items:
            _item_event(items[item_index], kind, event, at)
    timeline.items = [items[i] for i in sorted(items)]
    return timeline
