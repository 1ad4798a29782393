"""Executions as the console keeps them: a cursor into each history, read incrementally.

Opening an execution reads its history once, forward, 1,000 events a page. After that a
live page's tick reads only what is new: GetExecutionHistory newest first, stopping at
the first event already seen - one call per tick while fewer than 1,000 events arrived
since the last (the harness's progress lines read the same way). An execution that has
ended is never read again. Every page and tab looking at one execution shares its
cursor; the cache keeps the most recently used executions up to an event budget.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from scaleorfail.console.aws import Api
from scaleorfail.console.model import ExecutionModel
from scaleorfail.stepfunctions import TERMINAL

PAGE = 1000  # GetExecutionHistory's largest page: the background read of a long history
FIRST_PAGE = 100  # the page an execution opens with (the rest is read in the background)
MIN_TICK_PAGE = 100  # a live tick asks for about 1.5x the events the last tick found, in hundreds
CACHE_EVENTS = 400_000  # events kept across cached executions (about 16 full 25,000-event histories)


@dataclass
class Tick:
    """What one look at an execution cost."""

    calls: int = 0
    new_events: int = 0
    seconds: float = 0.0
    skipped: bool = False  # no quota token: served from the cache, read on the next tick


@dataclass
class Tracked:
    arn: str
    description: dict[str, Any]
    model: ExecutionModel
    definition: dict[str, Any]
    state_machine_arn: str
    lock: threading.Lock = field(default_factory=threading.Lock)  # held while the model changes or is read
    last_tick: Tick = field(default_factory=Tick)
    ticks: int = 0
    loading: bool = False  # the rest of a long history is being read in the background
    load_calls: int = 0
    problem: str | None = None  # why the background read stopped

    @property
    def done(self) -> bool:
        return self.description.get("status") in TERMINAL and self.model.status != "RUNNING"


def map_run_counts(items: dict[str, Any]) -> dict[str, int]:
    """DescribeMapRun's itemCounts as the page's Map counts (a timed-out item counts as failed)."""
    number = {k: int(items.get(k) or 0) for k in ("total", "pending", "running", "succeeded", "failed", "timedOut")}
    return {
        "length": number["total"],
        "pending": number["pending"],
        "running": number["running"],
        "succeeded": number["succeeded"],
        "failed": number["failed"] + number["timedOut"],
        "aborted": int(items.get("aborted") or 0),
    }


class Executions:
    """The per-execution cursors of one console."""

    def __init__(self, api: Api, budget_events: int = CACHE_EVENTS) -> None:
        self.api = api
        self.budget = budget_events
        self._tracked: OrderedDict[str, Tracked] = OrderedDict()
        self._lock = threading.Lock()
        self._definitions: dict[str, dict[str, Any]] = {}

    def get(self, arn: str) -> Tracked:
        """The execution, read up to now (the first look reads its whole history)."""
        with self._lock:
            tracked = self._tracked.get(arn)
            if tracked is not None:
                self._tracked.move_to_end(arn)
        if tracked is None:
            tracked = self._open(arn)
        self.refresh(tracked)
        return tracked

    def cached(self, arn: str) -> Tracked:
        """The execution as last read (the paged lists use this: they call no API), read now if never read
        (a list asked for while another request's first read is under way waits for that read)."""
        with self._lock:
            tracked = self._tracked.get(arn)
        return tracked if tracked is not None and tracked.ticks else self.get(arn)

    def _open(self, arn: str) -> Tracked:
        description = self.api.call("stepfunctions", "DescribeExecution", executionArn=arn)
        machine = str(description["stateMachineArn"])
        definition = self.definition(machine, arn)
        tracked = Tracked(arn, _plain(description), ExecutionModel(definition), definition, machine)
        with self._lock:
            tracked = self._tracked.setdefault(arn, tracked)
            self._evict()
        return tracked

    def definition(self, state_machine_arn: str, execution_arn: str | None = None) -> dict[str, Any]:
        cached = self._definitions.get(state_machine_arn)
        if cached is not None:
            return cached
        described = self.api.call("stepfunctions", "DescribeStateMachine", stateMachineArn=state_machine_arn)
        try:
            parsed = json.loads(str(described.get("definition") or "{}"))
        except ValueError:
            parsed = {}
        self._definitions[state_machine_arn] = parsed if isinstance(parsed, dict) else {}
        return self._definitions[state_machine_arn]

    def refresh(self, tracked: Tracked) -> Tick:
        """Read what is new in the history (nothing once the execution has ended and been read)."""
        with tracked.lock:
            if tracked.done or tracked.loading:
                return Tick()
            began = time.perf_counter()
            tick = self._read_first(tracked) if tracked.model.last_id == 0 else self._read_new(tracked)
            if tracked.model.status != "RUNNING" and tracked.description.get("status") == "RUNNING":
                described = self.api.call("stepfunctions", "DescribeExecution", executionArn=tracked.arn)
                tracked.description = _plain(described)
            for run in tracked.model.maps.values():  # a Distributed Map's items: its Map Run's counts
                if run.map_run_arn:
                    found = self.api.call("stepfunctions", "DescribeMapRun", mapRunArn=run.map_run_arn)
                    run.reported = map_run_counts(found.get("itemCounts") or {})
                    tick.calls += 1
            tick.seconds = time.perf_counter() - began
            tracked.last_tick = tick
            tracked.ticks += 1
            return tick

    def _read_first(self, tracked: Tracked) -> Tick:
        """The history's first page now; the rest, when there is more, in the background (the page opens
        with what is read and fills in as the rest arrives)."""
        page = self.api.call("stepfunctions", "GetExecutionHistory", executionArn=tracked.arn, maxResults=FIRST_PAGE)
        tick = Tick(calls=1, new_events=tracked.model.add(page.get("events", [])))
        token = page.get("nextToken")
        if token:
            tracked.loading = True
            threading.Thread(target=self._read_rest, args=(tracked, str(token)), daemon=True).start()
        return tick

    def _read_rest(self, tracked: Tracked, token: str | None) -> None:
        try:
            while token:
                kwargs = {"executionArn": tracked.arn, "maxResults": PAGE, "nextToken": token}
                page = self.api.call("stepfunctions", "GetExecutionHistory", **kwargs)
                with tracked.lock:
                    tracked.model.add(page.get("events", []))
                    tracked.load_calls += 1
                token = page.get("nextToken")
        except Exception as error:  # shown on the page; the next look reads on from where this stopped
            tracked.problem = f"reading the history stopped: {error}"
        finally:
            with tracked.lock:
                tracked.loading = False

    def _read_new(self, tracked: Tracked) -> Tick:
        tick = Tick()
        fresh: dict[int, dict[str, Any]] = {}
        token: str | None = None
        last = tracked.model.last_id
        # a page about the size of what is new: a page costs its events to serialise, on AWS and in the emulator
        size = min(PAGE, max(MIN_TICK_PAGE, -(-tracked.last_tick.new_events * 3 // 2 // 100) * 100))
        while True:
            kwargs: dict[str, Any] = {"executionArn": tracked.arn, "maxResults": size, "reverseOrder": True}
            if token:
                kwargs["nextToken"] = token
            page = self.api.try_call("stepfunctions", "GetExecutionHistory", **kwargs)
            if page is None:  # the shared quota is spent: this tick is served from the cache
                tick.skipped = True
                break
            tick.calls += 1
            events = page.get("events", [])
            new = [e for e in events if int(e["id"]) > last]
            fresh.update((int(e["id"]), e) for e in new)
            token = page.get("nextToken")
            if len(new) < len(events) or not token:
                break
            size = PAGE  # more is new than the page held: read on in full pages
        ordered = [fresh[key] for key in sorted(fresh)]
        # only a gapless continuation is taken; a gap (a tick cut short) is read again next time
        contiguous: list[dict[str, Any]] = []
        for event in ordered:
            if int(event["id"]) != last + len(contiguous) + 1:
                break
            contiguous.append(event)
        tick.new_events = tracked.model.add(contiguous)
        return tick

    def _evict(self) -> None:
        total = sum(len(t.model.events) for t in self._tracked.values())
        while total > self.budget and len(self._tracked) > 1:
            _, oldest = self._tracked.popitem(last=False)
            total -= len(oldest.model.events)

    def forget(self, arn: str) -> None:
        with self._lock:
            self._tracked.pop(arn, None)


def _plain(description: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in description.items() if k != "ResponseMetadata"}
