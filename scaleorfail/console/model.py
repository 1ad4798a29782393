"""One execution's history, folded event by event into what the execution page shows.

The same attribution as the project's history parser (scaleorfail.history): every event
of a Map iteration descends, through ``previousEventId``, from that iteration's
``MapIterationStarted``, and an iteration's end event closes its chain. Here it is
incremental: :meth:`ExecutionModel.add` takes only the events that are new since the last
look, so a live page costs the new events, never the whole history again.

What it keeps: every event (for the Event view), every state visit with its task attempts
(Table view, an iteration's details), per state the visits by status (Graph view), and per
Map state its iteration counts.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from scaleorfail.history import EXECUTION_END, ITERATION_END, epoch_ms

RUNNING, SUCCEEDED, FAILED, CAUGHT, ABORTED = "running", "succeeded", "failed", "caught", "aborted"
ITERATION_STATUS = {"MapIterationSucceeded": SUCCEEDED, "MapIterationFailed": FAILED, "MapIterationAborted": ABORTED}
MAP_END = {"MapStateSucceeded": SUCCEEDED, "MapStateFailed": FAILED, "MapStateAborted": ABORTED}
WORKERS = ("Task", "LambdaFunction", "Activity")  # the event families of a state's work (its attempts)
TASK_ENDS = ("Succeeded", "Failed", "TimedOut", "StartFailed", "SubmitFailed", "ScheduleFailed")


def details(event: dict[str, Any]) -> dict[str, Any]:
    found = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), None)
    return found or {}


@dataclass
class Attempt:
    scheduled: float
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    cause: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Visit:
    seq: int
    state: str
    entered: float
    iteration: int | None  # index of the Map iteration it belongs to (None: top level)
    map_state: str | None
    input: str | None = None
    output: str | None = None
    exited: float | None = None
    status: str = RUNNING
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)

    def to_json(self, states: dict[str, dict[str, Any]], data: bool = False) -> dict[str, Any]:
        spec = states.get(self.state, {})
        out = {
            "seq": self.seq,
            "state": self.state,
            "type": spec.get("Type"),
            "resource": spec.get("Resource"),
            "status": self.status,
            "entered": self.entered,
            "exited": self.exited,
            "duration_ms": None if self.exited is None else round(self.exited - self.entered, 3),
            "retries": self.retries,
            "iteration": self.iteration,
            "map_state": self.map_state,
            "error": self.attempts[-1].error if self.attempts else None,
        }
        if data:
            out |= {"input": self.input, "output": self.output, "attempts": [a.to_json() for a in self.attempts]}
        return out


@dataclass
class Iteration:
    index: int
    map_state: str
    started: float
    ended: float | None = None
    status: str = RUNNING
    visits: list[Visit] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        last = self.visits[-1] if self.visits else None
        failed = next((v for v in reversed(self.visits) if v.status == FAILED), None)
        return {
            "index": self.index,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "duration_ms": None if self.ended is None else round(self.ended - self.started, 3),
            "state": last.state if last else None,
            "error": failed.attempts[-1].error if failed and failed.attempts else None,
        }


@dataclass
class MapRun:
    name: str
    length: int = 0
    status: str = RUNNING
    iterations: dict[int, Iteration] = field(default_factory=dict)
    ended: Counter[str] = field(default_factory=Counter)
    map_run_arn: str | None = None  # a Distributed Map: its items run as a Map Run's child executions ...
    reported: dict[str, int] | None = None  # ... whose counts DescribeMapRun gives (console/executions.py)

    def counts(self) -> dict[str, int]:
        if self.reported is not None:
            return dict(self.reported)
        started = len(self.iterations)
        finished = sum(self.ended.values())
        return {
            "length": self.length,
            "pending": max(0, self.length - started),
            "running": max(0, started - finished),
            "succeeded": self.ended[SUCCEEDED],
            "failed": self.ended[FAILED],
            "aborted": self.ended[ABORTED],
        }


class ExecutionModel:
    """Events in, the execution page's data out; events must arrive in id order (checked)."""

    def __init__(self, definition: dict[str, Any] | None = None) -> None:
        self.states = flatten_states(definition or {})
        self.events: list[dict[str, Any]] = []
        self.visits: list[Visit] = []
        self.maps: dict[str, MapRun] = {}
        self.type_counts: Counter[str] = Counter()
        self.status = "RUNNING"
        self.start: float | None = None
        self.stop: float | None = None
        self.input: str | None = None
        self.output: str | None = None
        self.error: str | None = None
        self.cause: str | None = None
        self._owner: dict[int, tuple[str, int] | None] = {}
        self._open_top: list[Visit] = []  # top-level visits not exited yet
        self._texts: dict[int, str] = {}  # lower-cased event text for the Event view's filter, made when asked

    @property
    def last_id(self) -> int:
        return int(self.events[-1]["id"]) if self.events else 0

    def add(self, events: list[dict[str, Any]]) -> int:
        """Fold new events in (ids above last_id, ascending); returns how many were taken."""
        taken = 0
        for event in events:
            if int(event["id"]) <= self.last_id:
                continue
            self._fold(event)
            self.events.append(event)
            taken += 1
        return taken

    # -- folding ----------------------------------------------------------------------------------------

    def _fold(self, event: dict[str, Any]) -> None:
        kind = str(event["type"])
        at = epoch_ms(event["timestamp"])
        event_id = int(event["id"])
        parent = event.get("previousEventId")
        owner = self._owner.get(int(parent)) if parent is not None else None
        info = details(event)
        self.type_counts[kind] += 1
        if kind == "MapIterationStarted":
            name = str(info.get("name") or "Map")
            run = self.maps.setdefault(name, MapRun(name))
            owner = (name, int(info.get("index", 0)))
            run.iterations[owner[1]] = Iteration(owner[1], name, at)
        self._owner[event_id] = None if kind in ITERATION_END else owner
        iteration = self.maps[owner[0]].iterations.get(owner[1]) if owner and owner[0] in self.maps else None
        if kind == "ExecutionStarted":
            self.start = at
            self.input = info.get("input")
        elif kind in EXECUTION_END:
            self._end_execution(kind, at, info)
        elif kind == "MapStateStarted":
            run = self.maps.setdefault(self._current_state(owner), MapRun(self._current_state(owner)))
            run.length = int(info.get("length", 0) or 0)
        elif kind == "MapRunStarted":
            run = self.maps.setdefault(self._current_state(owner), MapRun(self._current_state(owner)))
            run.map_run_arn = str(info.get("mapRunArn") or "") or None
        elif kind in MAP_END:
            name = self._current_state(owner)
            if name in self.maps:
                self.maps[name].status = MAP_END[kind]
        if kind in ITERATION_END and iteration is not None:
            self._end_iteration(iteration, kind, at)
        elif kind.endswith("StateEntered"):
            self._enter(info, at, iteration)
        elif kind.endswith("StateExited"):
            self._exit(info, at, iteration)
        elif kind.startswith(WORKERS):
            self._task_event(kind, at, info, iteration)

    def _current_state(self, owner: tuple[str, int] | None) -> str:
        if owner is not None:
            iteration = self.maps[owner[0]].iterations.get(owner[1]) if owner[0] in self.maps else None
            if iteration and iteration.visits:
                return iteration.visits[-1].state
        return self._open_top[-1].state if self._open_top else "Map"

    def _enter(self, info: dict[str, Any], at: float, iteration: Iteration | None) -> None:
        visit = Visit(
            len(self.visits),
            str(info.get("name")),
            at,
            iteration.index if iteration else None,
            iteration.map_state if iteration else None,
            input=info.get("input"),
        )
        if self.states.get(visit.state, {}).get("Type") == "Fail":
            visit.status = FAILED
        self.visits.append(visit)
        if iteration is None:
            self._open_top.append(visit)
        else:
            iteration.visits.append(visit)

    def _exit(self, info: dict[str, Any], at: float, iteration: Iteration | None) -> None:
        scope = iteration.visits if iteration else self._open_top
        name = info.get("name")
        visit = next((v for v in reversed(scope) if v.state == name and v.exited is None), None)
        if visit is None:
            return
        visit.exited = at
        visit.output = info.get("output")
        if visit.status == RUNNING:
            last = visit.attempts[-1] if visit.attempts else None
            visit.status = CAUGHT if last is not None and last.error else SUCCEEDED
        if iteration is None:
            self._open_top.remove(visit)

    def _task_event(self, kind: str, at: float, info: dict[str, Any], iteration: Iteration | None) -> None:
        scope = iteration.visits if iteration else self._open_top
        visit = scope[-1] if scope else None
        if visit is None:
            return
        if kind.endswith("Scheduled"):
            visit.attempts.append(Attempt(scheduled=at))
        elif kind.endswith("Started") and not kind.endswith("StartFailed") and visit.attempts:
            visit.attempts[-1].started = at
        elif kind.endswith(TASK_ENDS) and visit.attempts:
            attempt = visit.attempts[-1]
            attempt.ended = at
            if not kind.endswith("Succeeded"):
                attempt.error = str(info.get("error") or kind)
                attempt.cause = info.get("cause")

    def _end_iteration(self, iteration: Iteration, kind: str, at: float) -> None:
        iteration.ended = at
        iteration.status = ITERATION_STATUS[kind]
        if iteration.status == SUCCEEDED and iteration.visits and iteration.visits[-1].exited is None:
            iteration.status = ABORTED  # the execution ended around it
        for visit in iteration.visits:
            if visit.status == RUNNING:
                visit.status = FAILED if visit.attempts and visit.attempts[-1].error else ABORTED
        self.maps[iteration.map_state].ended[iteration.status] += 1

    def _end_execution(self, kind: str, at: float, info: dict[str, Any]) -> None:
        self.stop = at
        self.status = EXECUTION_END[kind]
        self.output = info.get("output", self.output)
        self.error = info.get("error")
        self.cause = info.get("cause")
        for visit in self.visits:
            if visit.status == RUNNING:
                failing = self.status == "FAILED" and (
                    (visit.attempts and visit.attempts[-1].error) or visit.iteration is None
                )
                visit.status = FAILED if failing else ABORTED
        for run in self.maps.values():
            if run.status == RUNNING:
                run.status = FAILED if self.status == "FAILED" else ABORTED

    # -- views ------------------------------------------------------------------------------------------

    def state_statuses(self, iteration: tuple[str, int] | None = None) -> dict[str, dict[str, int]]:
        """Per state, its visits by status (of one Map iteration when given)."""
        if iteration is not None:
            run = self.maps.get(iteration[0])
            chosen = run.iterations.get(iteration[1]) if run else None
            visits = chosen.visits if chosen else []
            top = [v for v in self.visits if v.iteration is None]
            visits = top + visits
        else:
            visits = self.visits
        out: dict[str, Counter[str]] = {}
        for visit in visits:
            out.setdefault(visit.state, Counter())[visit.status] += 1
        for name, run in self.maps.items():
            out.setdefault(name, Counter())
            if run.status != RUNNING:
                out[name] = Counter({run.status: 1})
        return {name: dict(counts) for name, counts in out.items()}

    def failed_state(self) -> str | None:
        failed = [v for v in self.visits if v.status == FAILED and v.attempts and v.attempts[-1].error]
        if failed:
            return failed[0].state
        top = [v for v in self.visits if v.status == FAILED and v.iteration is None]
        return top[-1].state if top else None

    def failed_visit(self) -> Visit | None:
        return next((v for v in self.visits if v.status == FAILED and v.attempts and v.attempts[-1].error), None)

    def event_text(self, event: dict[str, Any]) -> str:
        key = int(event["id"])
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = (event["type"] + " " + json.dumps(details(event), default=str)).lower()
        return text

    def events_page(
        self, offset: int, limit: int, kind: str = "", text: str = "", newest: bool = False
    ) -> dict[str, Any]:
        rows = self.events[::-1] if newest else self.events
        if kind:
            rows = [e for e in rows if e["type"] == kind]
        if text:
            needle = text.lower()
            rows = [e for e in rows if needle in self.event_text(e)]
        page = rows[offset : offset + limit]
        start = self.start or (epoch_ms(self.events[0]["timestamp"]) if self.events else 0.0)
        return {
            "total": len(rows),
            "offset": offset,
            "events": [self._event_row(e, start) for e in page],
            "types": sorted(self.type_counts),
        }

    def _event_row(self, event: dict[str, Any], start: float) -> dict[str, Any]:
        at = epoch_ms(event["timestamp"])
        info = details(event)
        return {
            "id": int(event["id"]),
            "previous": event.get("previousEventId"),
            "type": event["type"],
            "timestamp": at,
            "elapsed_ms": round(at - start, 3),
            "step": info.get("name") if event["type"].endswith(("StateEntered", "StateExited")) else None,
            "resource": info.get("resource"),
            "details": info,
        }


def flatten_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of a definition by name, nested Map and Parallel states included (names are unique)."""
    out: dict[str, dict[str, Any]] = {}

    def walk(machine: dict[str, Any]) -> None:
        for name, spec in (machine.get("States") or {}).items():
            if not isinstance(spec, dict):
                continue
            out[str(name)] = spec
            for inner in (spec.get("ItemProcessor"), spec.get("Iterator")):
                if isinstance(inner, dict):
                    walk(inner)
            for branch in spec.get("Branches") or []:
                if isinstance(branch, dict):
                    walk(branch)

    walk(definition)
    return out
