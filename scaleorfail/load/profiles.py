"""Load profiles: how many executions start, and exactly when.

A profile is a piecewise-linear rate r(t) (executions started per second) over a
duration. Start k happens at the moment the cumulative count C(t) = integral of r
reaches k, so the achieved rate is exact, not a statistical "users" approximation:
over any whole profile the number of starts is C(duration), rounded up.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

NAMES = ("single-batch", "burst", "steady", "ramp", "spike", "step")
DEFAULT_DURATION = {"burst": 10.0, "steady": 60.0, "ramp": 60.0, "spike": 60.0, "step": 60.0, "single-batch": 0.0}


@dataclass(frozen=True)
class Profile:
    """A rate curve given by (time, rate) corner points; linear in between."""

    name: str
    points: tuple[tuple[float, float], ...]
    single: bool = False

    @property
    def duration(self) -> float:
        return self.points[-1][0] if self.points else 0.0

    def cumulative(self, t: float) -> float:
        """C(t): expected starts in [0, t)."""
        if self.single:
            return 1.0 if t > 0 else 0.0
        total = 0.0
        for (t0, r0), (t1, r1) in zip(self.points, self.points[1:], strict=False):
            if t <= t0:
                break
            end = min(t, t1)
            r_end = r0 + (r1 - r0) * (end - t0) / (t1 - t0) if t1 > t0 else r1
            total += (r0 + r_end) / 2.0 * (end - t0)
        return total

    def total(self) -> int:
        """How many executions the whole profile starts."""
        if self.single:
            return 1
        return math.ceil(self.cumulative(self.duration) - 1e-9)

    def start_times(self) -> list[float]:
        """t_k for k = 0 .. total-1: the moment C(t) reaches k (solved per linear segment)."""
        if self.single:
            return [0.0]
        total = self.total()
        times: list[float] = []
        done = 0.0  # C at the start of the segment
        for (t0, r0), (t1, r1) in zip(self.points, self.points[1:], strict=False):
            width = t1 - t0
            if width <= 0:
                continue
            after = done + (r0 + r1) / 2.0 * width
            curve = (r1 - r0) / (2.0 * width)
            while len(times) < total and len(times) < after - 1e-9:
                need = len(times) - done
                if abs(curve) < 1e-12:
                    offset = need / r0
                else:
                    offset = (-r0 + math.sqrt(max(0.0, r0 * r0 + 4.0 * curve * need))) / (2.0 * curve)
                times.append(t0 + min(max(offset, 0.0), width))
            done = after
        return times


def build(
    name: str, rate: float, duration: float | None, *, baseline_rate: float | None = None, steps: int = 4
) -> Profile:
    """The profile `name` with the given parameters (validated by the caller)."""
    if name == "single-batch":
        return Profile(name, (), single=True)
    length = DEFAULT_DURATION[name] if duration is None else duration
    if name in ("burst", "steady"):
        return Profile(name, ((0.0, rate), (length, rate)))
    if name == "ramp":
        return Profile(name, ((0.0, 0.0), (length, rate)))
    if name == "spike":
        base = rate / 5.0 if baseline_rate is None else baseline_rate
        third = length / 3.0
        return Profile(
            name,
            ((0.0, base), (third, base), (third, rate), (2 * third, rate), (2 * third, base), (length, base)),
        )
    if name == "step":
        width = length / steps
        corners: list[tuple[float, float]] = []
        for index in range(steps):
            level = rate * (index + 1) / steps
            corners += [(index * width, level), ((index + 1) * width, level)]
        return Profile(name, tuple(corners))
    raise ValueError(f"unknown profile {name!r}")


def my_starts(times: list[float], worker_index: int, workers: int) -> list[tuple[int, float]]:
    """The (sequence number, time) of the starts one of `workers` processes makes: every workers-th."""
    return [(k, t) for k, t in enumerate(times) if k % workers == worker_index]


def achieved_rate(start_moments: list[float], window: tuple[float, float]) -> float:
    """Starts per second inside [window) - for checking a run against its profile."""
    sorted_moments = sorted(start_moments)
    first = bisect.bisect_left(sorted_moments, window[0])
    last = bisect.bisect_left(sorted_moments, window[1])
    return (last - first) / (window[1] - window[0])
