"""The start rate a run achieved against the one it asked for, and who could not keep up.

A harness asked for 180 starts/s that delivered 42/s ran another experiment than the one its
manifest names. The manifest and the harvest record keep both rates; progress lines, ``sof
compare`` and ``sof rca`` say when the achieved rate fell below :data:`SHORT_RATIO` of the asked
one, and whose fault it was: the target (StartExecution answered slowly - the calls queued behind
it) or the harness (the calls answered quickly, it did not make them fast enough: CPU, Locust users).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SHORT_RATIO = 0.9
SLOW_START_MS = 500.0  # StartExecution usually answers in tens of ms; p50 above this: the target is the bottleneck


@dataclass(frozen=True)
class StartPace:
    asked_per_s: float
    achieved_per_s: float
    starts: int  # StartExecution calls made (started and failed)
    latency_p50_ms: float | None  # of the successful StartExecution calls

    @property
    def short(self) -> bool:
        return self.achieved_per_s < SHORT_RATIO * self.asked_per_s

    @property
    def culprit(self) -> str:
        """Who could not keep up, with the number that says so."""
        latency = self.latency_p50_ms
        if latency is not None and latency >= SLOW_START_MS:
            return f"the target: StartExecution took p50 {latency / 1000:.1f} s, so the calls queued behind it"
        shown = "-" if latency is None else f"{latency:.0f} ms"
        return f"the harness: StartExecution answered in p50 {shown}, but the calls were not made fast enough"

    def sentence(self) -> str:
        return (
            f"started {self.achieved_per_s:.1f}/s of the {self.asked_per_s:g}/s asked "
            f"({self.achieved_per_s / self.asked_per_s:.0%}); {self.culprit}"
        )


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else None


def measure(
    planned: int, duration_s: float, started: list[tuple[str, float]], failed_at: list[str]
) -> StartPace | None:
    """The pace of a stream of starts: ``started`` as (ISO start time, StartExecution latency ms), ``failed_at``
    the failed starts' times. None for a single execution (nothing to pace) or an unknown profile length.

    Asked: the profile's starts over its duration. Achieved: the calls made over the time from the first
    to the last (plus one asked interval, so a run on time measures its asked rate exactly)."""
    if planned < 2 or duration_s <= 0:
        return None
    moments = sorted(datetime.fromisoformat(at).timestamp() for at in [s for s, _ in started] + failed_at)
    asked = planned / duration_s
    if len(moments) < 2:
        return StartPace(round(asked, 3), 0.0, len(moments), _median([lat for _, lat in started]))
    span = moments[-1] - moments[0] + 1.0 / asked
    # a run cut short made fewer calls than planned within its duration: count the time it was given
    span = max(span, duration_s) if len(moments) < planned else span
    return StartPace(round(asked, 3), round(len(moments) / span, 3), len(moments), _median([lat for _, lat in started]))
