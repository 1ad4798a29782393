"""Where a ticket's time goes, per step: the state's time against the function's own (the gap is orchestration).

A step's state time is StateEntered -> StateExited in the execution history; its function
time is the Duration of the function's REPORT lines (the handler's own work). What lies
between is orchestration: Step Functions scheduling the task and writing its events,
Lambda's invoke round trip, and - on a cold start - starting the function (Init Duration).
The same gap shows in the timeline: an item is in flight from the moment the Map starts it
to its end, but a Lambda runs for only part of that time.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaleorfail import terminal
from scaleorfail.evidence.analysis import RunStats, timeline
from scaleorfail.pipeline import STEPS
from scaleorfail.record.model import HarvestRecord

EXPLAINED = (
    "state: StateEntered -> StateExited in the history; function: the REPORT line's Duration (the handler's own "
    "work); orchestration = state - function: Step Functions scheduling the task and recording it, Lambda's "
    "invoke round trip, and on a cold start the function's start (Init Duration). Medians per ticket, in ms."
)


@dataclass(frozen=True)
class StepTime:
    step: str
    state_ms: float | None  # p50 of StateEntered -> StateExited
    function_ms: float | None  # p50 of the REPORT Duration
    invocations: int
    cold_starts: int
    init_ms: float | None  # mean Init Duration of the cold starts

    @property
    def orchestration_ms(self) -> float | None:
        if self.state_ms is None or self.function_ms is None:
            return None
        return max(0.0, self.state_ms - self.function_ms)


def step_times(record: HarvestRecord, stats: RunStats) -> list[StepTime]:
    """The pipeline's steps of one run, in order (a step with neither a state time nor log lines is left out)."""
    found = []
    for step in STEPS:
        state = stats.step_ms.get(step, {}).get("p50")
        logs = record.logs.function(step)
        if state is None and logs is None:
            continue
        found.append(
            StepTime(
                step,
                state,
                logs.duration_ms_p50 if logs else None,
                logs.invocations if logs else 0,
                logs.cold_starts if logs else 0,
                logs.init_ms_mean if logs else None,
            )
        )
    return found


def busy_share(record: HarvestRecord) -> tuple[float, float] | None:
    """(mean running Lambda tasks, mean items in flight) over the time any item was in flight."""
    series = timeline(record)
    moments = [(tasks, flight) for tasks, flight in zip(series["tasks"], series["in_flight"], strict=True) if flight]
    if not moments:
        return None
    return (
        sum(t for t, _ in moments) / len(moments),
        sum(f for _, f in moments) / len(moments),
    )


def caption(record: HarvestRecord, label: str) -> str | None:
    """The running-versus-in-flight gap of one run, in words."""
    share = busy_share(record)
    if share is None:
        return None
    running, flight = share
    return (
        f"{label}: on average {running:.1f} Lambda(s) ran while {flight:.1f} items were in flight - the rest of "
        "the time an item is between its steps (Step Functions recording one step and starting the next) or "
        "waiting for a function to start: orchestration"
    )


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _cold(step: StepTime) -> str:
    if not step.cold_starts:
        return "0"
    return f"{step.cold_starts}" + (f" ({step.init_ms:.0f} ms)" if step.init_ms is not None else "")


def rows(pairs: list[tuple[str, HarvestRecord, RunStats]]) -> list[list[str]]:
    out = []
    for name, record, stats in pairs:
        for step in step_times(record, stats):
            out.append(
                [
                    name,
                    step.step,
                    _ms(step.state_ms),
                    _ms(step.function_ms),
                    _ms(step.orchestration_ms),
                    f"{step.invocations}",
                    _cold(step),
                ]
            )
    return out


HEADERS = ["run", "step", "state", "function", "orchestration", "invocations", "cold starts (init)"]
SMALL_HEADERS = ["run", "step", "state", "func-\ntion", "orches-\ntration", "invo-\ncations", "cold starts\n(init)"]


def table(pairs: list[tuple[str, HarvestRecord, RunStats]], fmt: str = "simple", columns: int | None = None) -> str:
    """Per run and step: state, function and orchestration time (ms), invocations and cold starts."""
    body = rows(pairs)
    if fmt != "simple":
        from tabulate import tabulate

        return str(tabulate(body, headers=HEADERS, tablefmt=fmt, disable_numparse=True))
    width = columns or terminal.width()
    headers = SMALL_HEADERS if terminal.narrow(width) else HEADERS
    align = ["left", "left", "right", "right", "right", "right", "left"]
    return terminal.table(body, headers, width, numparse=False, align=align)
