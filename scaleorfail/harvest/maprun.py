"""A Distributed Map's evidence: its Map Runs, followed to their child executions.

An execution whose Map is distributed writes only MapRunStarted / MapRunSucceeded into its own
history; its tickets ran as child executions. For each Map Run the parent's history names,
this reads DescribeMapRun (counts, settings), lists the children (ListExecutions with the
mapRunArn, 1,000 a page) and reads each child's events:

* STANDARD children: GetExecutionHistory, every page, through the caller's rate limiter (the
  GetExecutionHistory quota on AWS: 400 at once, then 20 a second), several at a time;
* EXPRESS children have no history to get (AWS refuses it): their events come from the state
  machine's log group (FilterLogEvents over the Map Run's window, execution logging at level
  ALL), one record per history event, tied to its child by ``execution_arn``.

Each child becomes items as an inline Map's iterations do: one item per child (its state visits,
task attempts, start and end), or - with an ItemBatcher - one per iteration of the child's own
inline Map over its batch, numbered in the children's start order. A child listed but not read
is named with the reason, never dropped silently.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from scaleorfail import history
from scaleorfail.record import model
from scaleorfail.stepfunctions import aware, history_pages

Call = Callable[..., Any]
THREADS = 8
LIST_PAGE = 1000
LOG_PAGE = 10_000
MARGIN_MS = 60_000  # the log window around the Map Run: its children's events lie inside


@dataclass
class Followed:
    """What a parent execution's Map Runs add: its items (epoch-ms times) and the runs' records."""

    items: list[history.Item] = field(default_factory=list)
    runs: list[model.MapRun] = field(default_factory=list)
    pages: int = 0


def _details_key(kind: str) -> str:
    """Which ``*EventDetails`` key a history event of this type carries its details under."""
    if kind.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if kind.endswith("StateExited"):
        return "stateExitedEventDetails"
    return kind[0].lower() + kind[1:] + "EventDetails"


def log_record_event(record: dict[str, Any]) -> dict[str, Any] | None:
    """A Step Functions execution log record as the history event it logs (None: not one)."""
    try:
        kind = str(record["type"])
        event: dict[str, Any] = {
            "id": int(record["id"]),
            "type": kind,
            "timestamp": float(record["event_timestamp"]),
            "previousEventId": int(record.get("previous_event_id") or 0),
        }
    except (KeyError, TypeError, ValueError):
        return None
    if isinstance(record.get("details"), dict):
        event[_details_key(kind)] = record["details"]
    return event


def child_items(children: list[tuple[dict[str, Any], history.Timeline]]) -> list[history.Item]:
    """The tickets of a Map Run's children (in their start order): a child's batch iterations, else the child."""
    items: list[history.Item] = []
    for listed, timeline in sorted(children, key=lambda pair: (pair[1].start, pair[0]["name"])):
        if timeline.items:  # an ItemBatcher batch: the child's inline Map ran one iteration per ticket
            for inner in timeline.items:
                items.append(history.Item(len(items), inner.started, inner.ended, inner.status, inner.visits))
            continue
        status = str(listed["status"]) if listed["status"] != "TIMED_OUT" else "FAILED"
        items.append(history.Item(len(items), timeline.start, timeline.stop, status, timeline.top))
    return items


class Follower:
    """Reads the Map Runs of the run's executions, through the harvest's rate-limited calls."""

    def __init__(self, call: Call, sfn: Any, logs: Any, log_group: str | None) -> None:
        self.call, self.sfn, self.logs, self.log_group = call, sfn, logs, log_group
        self.child_arns: set[str] = set()  # every child listed: its execution log lines are the run's too

    def follow(self, timeline: history.Timeline) -> Followed:
        followed = Followed()
        for arn in timeline.map_runs:
            if not arn:
                continue
            run, items, pages = self.map_run(arn)
            offset = len(followed.items)
            followed.items += [history.Item(offset + i.index, i.started, i.ended, i.status, i.visits) for i in items]
            followed.runs.append(run)
            followed.pages += pages
        return followed

    def children(self, map_run_arn: str) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"mapRunArn": map_run_arn, "maxResults": LIST_PAGE}
            if token:
                kwargs["nextToken"] = token
            page = self.call("ListExecutions", self.sfn.list_executions, **kwargs)
            listed += page.get("executions", [])
            token = page.get("nextToken")
            if not token:
                return listed

    def map_run(self, arn: str) -> tuple[model.MapRun, list[history.Item], int]:
        described = self.call("DescribeMapRun", self.sfn.describe_map_run, mapRunArn=arn)
        listed = self.children(arn)
        self.child_arns.update(c["executionArn"] for c in listed)
        express = any(":express:" in c["executionArn"] for c in listed)
        if express:
            timelines, missing, pages, source = self.from_logs(listed, described)
        else:
            timelines, missing, pages = self.from_histories(listed)
            source = "GetExecutionHistory"
        read = [(c, timelines[c["executionArn"]]) for c in listed if c["executionArn"] in timelines]
        start, stop = described.get("startDate"), described.get("stopDate")
        run = model.MapRun(
            arn=arn,
            status=str(described.get("status")),
            execution_type="EXPRESS" if express else "STANDARD",
            max_concurrency=int(described.get("maxConcurrency") or 0),
            tolerated_failure_percentage=float(described.get("toleratedFailurePercentage") or 0.0),
            tolerated_failure_count=int(described.get("toleratedFailureCount") or 0),
            item_counts={k: int(v) for k, v in (described.get("itemCounts") or {}).items()},
            execution_counts={k: int(v) for k, v in (described.get("executionCounts") or {}).items()},
            start_ms=round(aware(start).timestamp() * 1000.0, 1) if start else None,
            stop_ms=round(aware(stop).timestamp() * 1000.0, 1) if stop else None,
            children=len(listed),
            children_read=len(read),
            source=source,
            child_events=sum(t.events for _, t in read),
            child_state_transitions=sum(t.state_transitions for _, t in read),
            child_billed_ms=float(sum(math.ceil(((t.stop or t.start) - t.start) / 100.0) * 100 for _, t in read)),
            missing=tuple(missing),
        )
        return run, child_items(read), pages

    def from_histories(
        self, listed: list[dict[str, Any]]
    ) -> tuple[dict[str, history.Timeline], list[model.Missing], int]:
        call = functools.partial(self.call, "GetExecutionHistory", self.sfn.get_execution_history)

        def one(child: dict[str, Any]) -> tuple[str, history.Timeline | str, int]:
            try:
                events, pages = history_pages(call, child["executionArn"])
            except ClientError as error:
                return child["executionArn"], str(error.response["Error"].get("Message") or error), 0
            return child["executionArn"], history.parse(events), pages

        timelines: dict[str, history.Timeline] = {}
        missing: list[model.Missing] = []
        pages = 0
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            for arn, found, count in pool.map(one, listed):
                pages += count
                if isinstance(found, str):
                    missing.append(model.Missing(arn, found))
                else:
                    timelines[arn] = found
        return timelines, missing, pages

    def from_logs(
        self, listed: list[dict[str, Any]], described: dict[str, Any]
    ) -> tuple[dict[str, history.Timeline], list[model.Missing], int, str]:
        source = f"execution log {self.log_group} (FilterLogEvents)"
        if not self.log_group:
            reason = "EXPRESS child: no history to get, and the stack names no state machine log group"
            return {}, [model.Missing(c["executionArn"], reason) for c in listed], 0, source
        start = aware(described["startDate"]).timestamp() * 1000.0
        stop = aware(described.get("stopDate") or described["startDate"]).timestamp() * 1000.0
        wanted = {c["executionArn"] for c in listed}
        events: dict[str, list[dict[str, Any]]] = {}
        token: str | None = None
        pages = 0
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": self.log_group,
                "startTime": int(start - MARGIN_MS),
                "endTime": int(stop + MARGIN_MS),
                "limit": LOG_PAGE,
            }
            if token:
                kwargs["nextToken"] = token
            page = self.call("FilterLogEvents", self.logs.filter_log_events, **kwargs)
            pages += 1
            for line in page.get("events", []):
                try:
                    record = json.loads(line.get("message", ""))
                except ValueError:
                    continue
                if not isinstance(record, dict) or record.get("execution_arn") not in wanted:
                    continue
                event = log_record_event(record)
                if event is not None:
                    events.setdefault(str(record["execution_arn"]), []).append(event)
            token = page.get("nextToken")
            if not token or not page.get("events"):
                break
        timelines = {arn: history.parse(found) for arn, found in events.items() if found}
        reason = "EXPRESS child: none of its events is in the execution log (logging level below ALL?)"
        missing = [model.Missing(arn, reason) for arn in sorted(wanted - set(timelines))]
        return timelines, missing, pages, source
