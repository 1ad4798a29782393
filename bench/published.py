"""The workshop's published AWS numbers (../shared/reference/workshop.md) and how a result is scored against them.

One execution of N tickets at a Map max_concurrency, its batch duration on AWS:

* 500 tickets: about 126 s at 2, 68 s at 5, 41 s at 10, 26 s at 30 (Activity 4's sweet-spot table);
* 40 tickets: about 17 s at 2 ("15-20 s"), 4-7 s at 10.

A point published as a range is scored as a range: a result inside it is 0 % off, one outside
is off by its distance to the nearer end, relative to that end (18 s against "15-20 s" is 0 %,
22 s is +10 %, 13.5 s is -10 %). Every point is also shown against its central value (17 s,
5.5 s) so that nothing hides in a wide range.
"""

from __future__ import annotations

from dataclasses import dataclass

TOLERANCE = 0.15  # issue 21: every published point within 15 %


@dataclass(frozen=True)
class Point:
    tickets: int
    concurrency: int
    central: float  # seconds: the number the workshop gives ("about 17 s"), the middle of a bare range
    low: float
    high: float

    @property
    def key(self) -> str:
        return f"{self.tickets}@{self.concurrency}"

    @property
    def label(self) -> str:
        if self.low == self.high:
            return f"{self.central:g} s"
        return f"{self.low:g}-{self.high:g} s"

    def residual(self, seconds: float) -> float:
        """Relative distance to the published value or range (0 inside a range)."""
        if seconds < self.low:
            return seconds / self.low - 1.0
        if seconds > self.high:
            return seconds / self.high - 1.0
        return 0.0

    def off_central(self, seconds: float) -> float:
        return seconds / self.central - 1.0


POINTS = (
    Point(500, 2, 126.0, 126.0, 126.0),
    Point(500, 5, 68.0, 68.0, 68.0),
    Point(500, 10, 41.0, 41.0, 41.0),
    Point(500, 30, 26.0, 26.0, 26.0),
    Point(40, 2, 17.0, 15.0, 20.0),
    Point(40, 10, 5.5, 4.0, 7.0),
)
SWEEP = (1, 2, 5, 10, 20, 30, 40)  # the sweep at 500 tickets whose knee and ceiling are reported
KNEE_GOAL = (15, 25)  # issue 21: the knee (Kneedle) of the sweep 1..40 lands in 15-25
