"""A discrete-event simulation of one pipeline execution, exactly as the emulator's timing model runs it.

The emulator (docs/emulator.md, "The timing model") spends modelled service time sleeping;
this replays the same sleeps on a virtual clock, event by event, so a fit can try thousands
of knob settings in seconds:

* the execution: ExecutionStarted, then ``execution_start_ms`` before its first state, then
  ChoiceStateEntered/Exited, MapStateEntered, MapStateStarted; after the Map, MapStateSucceeded,
  MapStateExited, ExecutionSucceeded - every event through the execution's one history writer;
* the Map: min(max_concurrency, 40, tickets) slots, each taking the next ticket when it is done
  with one; a ticket writes 17 events (MapIterationStarted; per task TaskStateEntered,
  TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited; MapIterationSucceeded);
* a task: ``task_dispatch_ms`` between TaskScheduled and TaskStarted, then the invocation:
  on a cold environment ``placement_ms`` + ``cold_start_ms`` (a floor: the real process start
  and import, REAL_INIT_S measured, counts towards it), then ``invoke_overhead_ms`` + the handler (Preprocess and
  Postprocess 1 ms, Embed 250 ms +/- 25 ms clamped to +/- 50 ms, as lambda_src/ draws it);
* the history writer (scaleorfail/emulator/timing.py): one write at a time per execution; an
  event waits for the write in flight, then goes in the next one with every event that arrived
  meanwhile (group commit); a write of k events takes ``history_write_ms + k * history_event_ms``.

Each Map slot's first use of a function starts an environment (the benchmark reaps idle
environments before each run, so every run starts cold, as a run on AWS after a deploy or a
quiet spell does). Step Functions' and Lambda's quotas do not bind at these rates (one
execution, at most ~200 transitions/s against 1,500/s) and are not simulated.
"""

from __future__ import annotations

import heapq
import itertools
import random
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scaleorfail.emulator.settings import Timing
from scaleorfail.pipeline import MAP_LIMIT

REAL_INIT_S = 0.046  # process start + import of a worker, median (bench/results/emulator.md, "Cold start")
EMBED_S, EMBED_SIGMA_S, EMBED_CLAMP_S = 0.250, 0.025, 0.050
STEPS = ("Preprocess", "Embed", "Postprocess")
FIXED_HANDLER_S = 0.001  # Preprocess and Postprocess
BEFORE_MAP = 5  # ExecutionStarted, ChoiceStateEntered, ChoiceStateExited, MapStateEntered, MapStateStarted
AFTER_MAP = 3  # MapStateSucceeded, MapStateExited, ExecutionSucceeded
EVENT = "event"  # a task yields EVENT to wait until its next history event is written
MAP = "map"  # the execution yields MAP to run the Map's slots and go on when the last one is done
Wait = str | float  # EVENT, MAP, or seconds to sleep


class Simulation:
    """One execution of `tickets` at a Map concurrency, on a virtual clock."""

    def __init__(self, timing: Timing, concurrency: int, tickets: int, seed: int = 1, warm: bool = False) -> None:
        self.t = timing
        self.slots = max(1, min(concurrency, MAP_LIMIT, tickets))
        rng = random.Random(seed)
        self.embed = [  # drawn per ticket up front: a knob change never reshuffles the draws
            min(max(rng.gauss(EMBED_S, EMBED_SIGMA_S), EMBED_S - EMBED_CLAMP_S), EMBED_S + EMBED_CLAMP_S)
            for _ in range(tickets)
        ]
        self.clock = 0.0
        self.order = itertools.count()
        self.queue: list[tuple[float, int, Iterator[Wait] | None, list[Iterator[Wait]]]] = []
        self.pending: list[Iterator[Wait]] = []  # tasks whose event waits for the next write
        self.writing = False
        self.environments = dict.fromkeys(STEPS, self.slots if warm else 0)  # warm: every slot's is running
        self.tickets = iter(range(tickets))
        self.cold_starts = 0
        self.running = 0  # slots still working
        self.main = self.execution()

    # -- what the execution does -----------------------------------------------------------------

    def invocation_s(self, step: str, ticket: int) -> float:
        t = self.t
        seconds = (t.invoke_overhead_ms / 1000.0) + (self.embed[ticket] if step == "Embed" else FIXED_HANDLER_S)
        if self.environments[step] < self.slots:  # each slot's first use of a function starts an environment
            self.environments[step] += 1
            self.cold_starts += 1
            seconds += t.placement_ms / 1000.0 + max(REAL_INIT_S, t.cold_start_ms / 1000.0)
        return seconds

    def ticket(self, number: int) -> Iterator[Wait]:
        yield EVENT  # MapIterationStarted
        for step in STEPS:
            yield EVENT  # TaskStateEntered
            yield EVENT  # TaskScheduled
            yield self.t.task_dispatch_ms / 1000.0
            yield EVENT  # TaskStarted
            yield self.invocation_s(step, number)
            yield EVENT  # TaskSucceeded
            yield EVENT  # TaskStateExited
        yield EVENT  # MapIterationSucceeded

    def slot(self) -> Iterator[Wait]:
        for number in self.tickets:
            yield from self.ticket(number)

    def execution(self) -> Iterator[Wait]:
        yield EVENT  # ExecutionStarted
        yield self.t.execution_start_ms / 1000.0
        for _ in range(BEFORE_MAP - 1):
            yield EVENT
        yield MAP
        for _ in range(AFTER_MAP):
            yield EVENT

    # -- the clock ---------------------------------------------------------------------------------

    def write(self) -> None:
        """Start a write carrying every event waiting now (group commit)."""
        batch, self.pending = self.pending, []
        self.writing = True
        cost = (self.t.history_write_ms + self.t.history_event_ms * len(batch)) / 1000.0
        heapq.heappush(self.queue, (self.clock + cost, next(self.order), None, batch))

    def resume(self, task: Iterator[Wait]) -> None:
        wanted = next(task, None)
        if wanted is None:
            if task is not self.main:
                self.running -= 1
                if self.running == 0:  # the last slot is done: the Map state ends
                    self.resume(self.main)
        elif wanted == EVENT:
            self.pending.append(task)
            if not self.writing:
                self.write()
        elif wanted == MAP:
            self.running = self.slots
            for _ in range(self.slots):
                self.resume(self.slot())
        else:
            assert isinstance(wanted, float)
            heapq.heappush(self.queue, (self.clock + wanted, next(self.order), task, []))

    def run(self) -> float:
        self.running = 0
        self.resume(self.main)
        while self.queue:
            self.clock, _, task, written = heapq.heappop(self.queue)
            if task is not None:
                self.resume(task)
                continue
            self.writing = False  # a write finished: its events are persisted, their tasks go on
            for waiting in written:
                self.resume(waiting)
            if self.pending and not self.writing:
                self.write()
        return self.clock


def simulate(timing: Timing, concurrency: int, tickets: int, seed: int = 1, warm: bool = False) -> float:
    """Seconds from StartExecution to ExecutionSucceeded for one execution of `tickets` (warm: no cold start)."""
    return Simulation(timing, concurrency, tickets, seed, warm).run()
