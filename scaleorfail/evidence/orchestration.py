"""Is an inline Map orchestration-bound? Its one history against its writer, from the record alone.

An inline Map writes every iteration's events - MapIteration*, each state's Entered/Exited,
each task's Scheduled/Started/Succeeded - into its execution's one history, and Step Functions
appends to one history serially: the more iterations in flight, the more of each ticket's time
goes to waiting on that history rather than running in Lambda. Two measurements say it:

* the **event rate** of the busiest execution's history while its Map ran, against the writer's
  capacity - with the emulator's timing model, ``1000 / history_event_ms`` events a second (the
  ``aws`` profile's, fitted to the workshop's published AWS runs; the record keeps the knobs the
  run saw); on AWS, the same fitted figure is an estimate, said so;
* the **share of in-flight time outside Lambda**: of the time tickets spent between their
  iteration's start and end, the part no task attempt of theirs was running.

A Distributed Map moves each ticket's events into a child execution's own history (own writer):
the parent writes two events per Map Run. Pure: reads the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaleorfail.record.model import Execution, HarvestRecord
from scaleorfail.terminal import hint

DEFAULT_EVENT_MS = 2.0  # the aws timing profile's history_event_ms when the record has none (a run on AWS)
NEAR_CAPACITY = 0.5  # an event rate at half the writer's capacity or more: near it
OUTSIDE_SHARE = 0.5  # tickets spent half their in-flight time or more outside Lambda


@dataclass(frozen=True)
class HistoryLoad:
    execution: str
    items: int
    events: int
    span_s: float  # the Map's busy time: MapStateStarted -> the last iteration's end
    events_per_s: float
    capacity_per_s: float | None  # None: no modelled writer (the emulator's ideal profile)
    capacity_source: str
    outside_share: float  # of the tickets' in-flight time, the part outside their task attempts

    @property
    def utilisation(self) -> float | None:
        return None if not self.capacity_per_s else self.events_per_s / self.capacity_per_s

    @property
    def bound(self) -> bool:
        load = self.utilisation
        return load is not None and load >= NEAR_CAPACITY and self.outside_share >= OUTSIDE_SHARE


def _capacity(record: HarvestRecord) -> tuple[float | None, str]:
    timing = record.timing or {}
    if record.target == "local":
        event_ms = float(timing.get("history_event_ms") or 0.0)
        if event_ms <= 0:
            return None, f"the emulator's {timing.get('profile', '?')} timing profile models no history writer"
        return 1000.0 / event_ms, f"the emulator's history writer at {event_ms:g} ms an event ({timing.get('profile')})"
    return 1000.0 / DEFAULT_EVENT_MS, (
        f"estimated: the timing model fitted to the workshop's AWS runs ({DEFAULT_EVENT_MS:g} ms an event); "
        "AWS does not publish its history writer's rate"
    )


def _outside_share(execution: Execution) -> float:
    in_flight = 0.0
    in_tasks = 0.0
    for item in execution.items:
        if item.duration_ms is None:
            continue
        in_flight += item.duration_ms
        in_tasks += sum(a.duration_ms or 0.0 for v in item.visits for a in v.attempts)
    return 0.0 if in_flight <= 0 else max(0.0, 1.0 - in_tasks / in_flight)


def history_load(record: HarvestRecord) -> HistoryLoad | None:
    """The busiest inline execution's history load (None: no inline Map with finished iterations)."""
    capacity, source = _capacity(record)
    found: HistoryLoad | None = None
    for execution in record.executions:
        if execution.map_mode == "distributed" or execution.map_started is None or not execution.history_read:
            continue
        ends = [i.end for i in execution.items if i.end is not None]
        if not ends:
            continue
        span_s = max(0.001, (max(ends) - execution.map_started) / 1000.0)
        load = HistoryLoad(
            execution=execution.name,
            items=len(execution.items),
            events=execution.events,
            span_s=round(span_s, 3),
            events_per_s=round(execution.events / span_s, 1),
            capacity_per_s=capacity,
            capacity_source=source,
            outside_share=round(_outside_share(execution), 3),
        )
        if found is None or load.events_per_s > found.events_per_s:
            found = load
    return found


# -- the RCA leaf's words (evidence/rca.py builds the finding from them) -------------------------------

HYPOTHESIS = (
    "Hypothesis: every iteration writes into one execution history, appended to one event at a time; past this "
    "rate a higher max_concurrency adds waiting, not throughput (the bend of the scaling curve)."
)


def judge(record: HarvestRecord, throttles: int) -> HistoryLoad | str:
    """The history load when the run is orchestration-bound, else why the leaf is ruled out."""
    if record.map_mode == "distributed":
        return "the Map is distributed: each ticket's events went to a child execution's own history"
    load = history_load(record)
    if load is None:
        return "no inline Map iteration finished: nothing to measure its history by"
    rate = f"{load.events_per_s:,.0f} events/s into {load.execution}'s one history"
    if load.utilisation is None:
        return f"{rate}; not judged against a writer: {load.capacity_source}"
    if not load.bound or throttles:
        return (
            f"{rate}, {load.utilisation:.0%} of its writer's capacity; {load.outside_share:.0%} of the tickets' "
            "in-flight time outside Lambda" + (f"; {throttles} throttles explain the wait" if throttles else "")
        )
    return load


def evidence_lines(load: HistoryLoad) -> list[tuple[str, str]]:
    """(the evidence, what to add to the history call that shows it)."""
    return [
        (
            f"{load.events:,} events in {load.span_s:.1f} s of Map: {load.events_per_s:,.0f} events/s into "
            f"{load.execution}'s one history, {load.utilisation or 0:.0%} of its writer's capacity of "
            f"{load.capacity_per_s or 0:,.0f}/s ({load.capacity_source})",
            "",
        ),
        (
            f"tickets spent {load.outside_share:.0%} of their in-flight time outside their Lambda tasks (state "
            "transitions and task dispatch, each an event of the shared history); 0 throttles",
            ": MapIteration* against Task* events",
        ),
    ]


def action(target_flag: str) -> str:
    return (
        f"give each ticket its own history: {hint(f'sof deploy --target {target_flag} --var map_mode=distributed')} "
        "(a Distributed Map; reversible: --var map_mode=inline)"
    )


def verification_label(c: int | None) -> str:
    """The label of the burst that verifies the fix (the same knob, on the Distributed Map)."""
    return f"dist-c{c or 'default'}"
