"""Progress of a running load: what is done, running and queued, the elapsed time and an ETA.

A single-batch run is one long execution whose tickets queue at the Map: its progress is
read from the execution's history - MapIterationStarted is a ticket leaving the queue,
MapIterationSucceeded/Failed/Aborted one done; a Distributed Map's tickets run as child
executions, so once its history names the Map Run (MapRunStarted) the counts are the Map
Run's item counts (DescribeMapRun, one call per look). Each look reads only the events that are
new since the last one (GetExecutionHistory newest first, stopping at the last event id
seen): one call per look while fewer than 1,000 events arrived, made through the API
limiter, so on AWS it stays within the GetExecutionHistory quota (refill 5/s; one call
every few seconds). The same code reads the emulator. A stream of executions (the other
profiles) is followed from the run's own records - executions started and seen
finishing - with no API call at all.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from scaleorfail.record.pace import SHORT_RATIO, StartPace

ITERATION_START = "MapIterationStarted"
ITERATION_END = ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted")
END_STATUS = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
EXECUTION_END = tuple(END_STATUS)
PAGE_SIZE = 1000
MIN_PACE_S = 5.0  # too early before this to say the starts fall short
MIN_PACE_STARTS = 10  # nor before the profile asked for this many
RATE_WINDOW_S = 30.0  # the ETA uses the pace of the last half minute (cold starts fade out of it)


@dataclass
class MapCounts:
    """Map iterations of one execution so far."""

    started: int = 0
    ended: int = 0
    failed: int = 0
    execution_end: str | None = None  # ExecutionSucceeded | ExecutionFailed | ... once it is over
    map_run: str | None = None  # a Distributed Map's Map Run: its items are counted by DescribeMapRun

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            kind = event.get("type")
            if kind == "MapRunStarted":
                self.map_run = str(event.get("mapRunStartedEventDetails", {}).get("mapRunArn") or "") or None
            elif kind == ITERATION_START:
                self.started += 1
            elif kind in ITERATION_END:
                self.ended += 1
                if kind != "MapIterationSucceeded":
                    self.failed += 1
            elif kind in EXECUTION_END:
                self.execution_end = str(kind)


class HistoryCounter:
    """Counts one execution's Map iterations, reading only the history events it has not seen."""

    def __init__(
        self,
        call: Callable[..., dict[str, Any]],
        execution_arn: str,
        page_size: int = PAGE_SIZE,
        describe_map_run: Callable[..., dict[str, Any]] | None = None,
    ) -> None:
        self.call = call
        self.describe_map_run = describe_map_run
        self.execution_arn = execution_arn
        self.page_size = page_size
        self.last_id = 0
        self.calls = 0
        self.counts = MapCounts()

    def update(self) -> MapCounts:
        fresh: dict[int, dict[str, Any]] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "executionArn": self.execution_arn,
                "reverseOrder": True,
                "maxResults": self.page_size,
                "includeExecutionData": False,
            }
            if token:
                kwargs["nextToken"] = token
            page = self.call(**kwargs)
            self.calls += 1
            events = page.get("events", [])
            new = [e for e in events if int(e["id"]) > self.last_id]
            fresh.update((int(e["id"]), e) for e in new)  # by id: a growing history may repeat some
            token = page.get("nextToken")
            if len(new) < len(events) or not token:
                break
        if fresh:
            self.last_id = max(fresh)
            self.counts.add(fresh[key] for key in sorted(fresh))
        if self.counts.map_run and self.describe_map_run is not None:
            items = self.describe_map_run(mapRunArn=self.counts.map_run).get("itemCounts") or {}
            ended = sum(int(items.get(k, 0)) for k in ("succeeded", "failed", "timedOut", "aborted"))
            self.counts.started = ended + int(items.get("running", 0))
            self.counts.ended = ended
            self.counts.failed = ended - int(items.get("succeeded", 0))
        return self.counts


@dataclass(frozen=True)
class Snapshot:
    unit: str  # tickets | executions
    elapsed_s: float
    total: int
    done: int
    running: int
    queued: int
    failed: int = 0
    rate: float | None = None  # units done per second, lately
    eta_s: float | None = None
    ended: str | None = None  # single-batch: the execution is over (SUCCEEDED, FAILED, ...)
    throttled: int = 0  # a stream: of the failed starts, those StartExecution's quota refused
    behind: str | None = None  # a stream whose starts fell below 90 % of the asked rate: by how much, and who

    @property
    def complete(self) -> bool:
        """Nothing more will change: a batch's execution ended (its last iteration is not its end), or a
        stream's every execution is done."""
        if self.unit == "tickets":
            return self.ended is not None
        return self.total > 0 and self.done >= self.total


def clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render(snapshot: Snapshot) -> str:
    """One line: `progress 1:23: 312/500 tickets done, 2 running, 186 queued - 3.9/s, ETA 0:48`."""
    waiting = "queued" if snapshot.unit == "tickets" else "not started"
    failed = ""
    if snapshot.failed:
        throttled = f", {snapshot.throttled} throttled" if snapshot.throttled else ""
        failed = f" ({snapshot.failed} failed{throttled})"
    line = (
        f"progress {clock(snapshot.elapsed_s)}: {snapshot.done}/{snapshot.total} {snapshot.unit} done"
        f"{failed}, {snapshot.running} running, {snapshot.queued} {waiting}"
    )
    if snapshot.behind:
        line += f" - STARTS BEHIND: {snapshot.behind}"
    if snapshot.ended is not None:
        return line + f" - execution {snapshot.ended}"
    if snapshot.complete:
        return line + " - all done"
    if snapshot.rate:
        line += f" - {snapshot.rate:.1f}/s"
    return line + (f", ETA {clock(snapshot.eta_s)}" if snapshot.eta_s is not None else ", ETA -")


class Pace:
    """Units done per second over the last RATE_WINDOW_S, and the time left at that pace."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, moment: float, done: int) -> None:
        self.samples.append((moment, done))
        while len(self.samples) > 2 and moment - self.samples[1][0] >= self.window_s:
            self.samples.popleft()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        if t1 <= t0 or d1 <= d0:
            return None
        return (d1 - d0) / (t1 - t0)

    def eta(self, remaining: int) -> float | None:
        pace = self.rate()
        return None if pace is None else remaining / pace


def batch_snapshot(counts: MapCounts, tickets: int, elapsed_s: float, pace: Pace) -> Snapshot:
    """A single-batch run from its execution's Map counts."""
    done = min(counts.ended, tickets)
    ended = END_STATUS.get(counts.execution_end or "")
    if ended is not None:  # the execution is over (a failure stops the Map): nothing runs or waits any more
        running, queued = 0, 0
    else:
        running, queued = max(0, counts.started - counts.ended), max(0, tickets - counts.started)
    pace.add(elapsed_s, done)
    eta = 0.0 if ended is not None or done >= tickets else pace.eta(tickets - done)
    return Snapshot("tickets", elapsed_s, tickets, done, running, queued, counts.failed, pace.rate(), eta, ended)


def stream_snapshot(
    planned: int, started: int, failed_starts: int, finished: int, elapsed_s: float, pace: Pace, throttled: int = 0
) -> Snapshot:
    """A stream of executions from the run's records (a failed start counts as done: it is over)."""
    done = finished + failed_starts
    pace.add(elapsed_s, done)
    remaining = max(0, planned - done)
    eta = 0.0 if remaining == 0 else pace.eta(remaining)
    return Snapshot(
        "executions",
        elapsed_s,
        planned,
        done,
        max(0, started - finished),
        max(0, planned - started - failed_starts),
        failed_starts,
        pace.rate(),
        eta,
        throttled=throttled,
    )


class Reporter:
    """The progress of one run, looked at on demand: a single batch from its history, a stream from its records."""

    def __init__(
        self,
        *,
        single: bool,
        tickets: int,
        planned: int,
        t0: float,
        counts: Callable[[], tuple[int, int, int]],
        first_arn: Callable[[], str | None],
        history_call: Callable[[], Callable[..., dict[str, Any]]],
        track_completion: bool = True,
        now: Callable[[], float] = time.time,
        throttled: Callable[[], int] = lambda: 0,
        expected: Callable[[float], float] | None = None,
        start_latency_ms: Callable[[], float | None] = lambda: None,
        map_run_call: Callable[[], Callable[..., dict[str, Any]]] | None = None,
    ) -> None:
        self.single = single
        self.tickets = tickets
        self.planned = planned
        self.t0 = t0
        self.counts = counts  # (started, failed starts, seen finishing)
        self.throttled = throttled  # failed starts refused by StartExecution's quota
        self.first_arn = first_arn
        self.history_call = history_call  # built on first use: a single batch's history reader
        self.track_completion = track_completion
        self.now = now
        self.expected = expected  # starts the profile asks for by t seconds (its cumulative count)
        self.start_latency_ms = start_latency_ms  # StartExecution p50 so far
        self.map_run_call = map_run_call  # DescribeMapRun, for a Distributed Map's item counts
        self.pace = Pace()
        self.counter: HistoryCounter | None = None
        self.finished = False  # the last line said the run is over: nothing more to say

    def look(self) -> Snapshot | None:
        """The progress now; None while there is nothing to tell (a single batch that has not started)."""
        elapsed = max(0.0, self.now() - self.t0)
        started, failed, finished = self.counts()
        if not self.single:
            seen = finished if self.track_completion else started
            throttled = self.throttled() if failed else 0
            snapshot = stream_snapshot(self.planned, started, failed, seen, elapsed, self.pace, throttled)
            return replace(snapshot, behind=self.behind(started + failed, elapsed))
        arn = self.first_arn() if started else None
        if arn is None:
            self.finished = bool(failed)  # the one start failed: Locust's table and the end line say so
            return None
        if self.counter is None:
            describe = self.map_run_call() if self.map_run_call is not None else None
            self.counter = HistoryCounter(self.history_call(), arn, describe_map_run=describe)
        return batch_snapshot(self.counter.update(), self.tickets, elapsed, self.pace)

    def behind(self, calls: int, elapsed: float) -> str | None:
        """Why the starts fall short of the profile (None: on pace, or too early to say)."""
        if self.expected is None or elapsed < MIN_PACE_S:
            return None
        asked = min(self.expected(elapsed), float(self.planned))
        if asked < MIN_PACE_STARTS or calls >= SHORT_RATIO * asked:
            return None
        pace = StartPace(round(asked / elapsed, 3), round(calls / elapsed, 3), calls, self.start_latency_ms())
        return pace.sentence()

    def line(self) -> str | None:
        """The progress line to print now (None: nothing new to say); API errors propagate to the caller."""
        if self.finished:
            return None
        snapshot = self.look()
        if snapshot is None:
            return None
        self.finished = snapshot.complete
        return render(snapshot)
