"""The Universal Scalability Law, fitted to throughput at several concurrency settings.

    X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

lambda: throughput of one unit of concurrency; sigma: contention (the serial part);
kappa: coherency (crosstalk that makes adding concurrency counter-productive). The fit
uses the USL's linear form N / X = a + b (N - 1) + c N (N - 1) (a = 1/lambda,
b = sigma/lambda, c = kappa/lambda) solved by least squares with sigma, kappa >= 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from scaleorfail.pipeline import MAP_LIMIT

KNEE_MIN_BEND = 0.05  # the normalised curve must rise this far above its chord to have a knee


@dataclass(frozen=True)
class USL:
    lam: float
    sigma: float
    kappa: float
    r2: float
    points: int = 0  # settings it was fitted to
    parameters: int = 3  # parameters it fitted (lambda, and sigma and kappa where they are not 0)

    @property
    def exact(self) -> bool:
        """As many parameters as points (or more): the curve passes through them by construction, R² is 1."""
        return 0 < self.points <= self.parameters

    def throughput(self, n: float) -> float:
        return self.lam * n / (1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0))

    @property
    def peak_concurrency(self) -> float | None:
        """N where X(N) is highest (None: it keeps rising)."""
        if self.kappa <= 0:
            return None
        return math.sqrt((1.0 - self.sigma) / self.kappa) if self.sigma < 1 else 1.0

    def knee(self, low: float = 1.0, high: float = MAP_LIMIT) -> int | None:
        """Where returns diminish over the knob's range [low, high] (the Kneedle method), or None.

        Kneedle (Satopaa et al., "Finding a 'Kneedle' in a Haystack", ICDCS workshops 2011):
        normalise the curve to the unit square over the range and take the point farthest above
        the straight line from its first to its last point - where the curve bends from "more
        concurrency pays" to "more concurrency barely helps". A curve that stays within
        KNEE_MIN_BEND of that line (linear scaling) has no knee: None. The range ends at the
        peak when throughput falls before `high` (kappa > 0).
        """
        peak = self.peak_concurrency
        top = min(high, peak) if peak is not None and peak > low else high
        if top <= low:
            return None
        x_low, x_top = self.throughput(low), self.throughput(top)
        if x_top <= x_low:
            return None
        best, best_bend = None, KNEE_MIN_BEND
        steps = max(2, round((top - low) * 10))
        for i in range(1, steps):
            n = low + (top - low) * i / steps
            bend = (self.throughput(n) - x_low) / (x_top - x_low) - (n - low) / (top - low)
            if bend > best_bend:
                best, best_bend = n, bend
        return None if best is None else round(best)

    def ceiling(self, high: float = MAP_LIMIT) -> float:
        """The best throughput the model reaches at or below `high`."""
        peak = self.peak_concurrency
        return self.throughput(min(high, peak) if peak is not None and peak >= 1 else high)

    def recommend(self, target_throughput: float, limit: int) -> tuple[int, float, bool]:
        """Smallest N <= limit reaching the target; else the best N within the limit."""
        best_n, best_x = 1, self.throughput(1)
        for n in range(1, max(1, limit) + 1):
            x = self.throughput(n)
            if x >= target_throughput:
                return n, x, True
            if x > best_x:
                best_n, best_x = n, x
        return best_n, best_x, False


def fit(points: list[tuple[float, float]]) -> USL:
    """Least-squares USL through (N, X) points (at least 2, N >= 1, X > 0)."""
    clean = [(float(n), float(x)) for n, x in points if n >= 1 and x > 0]
    if len(clean) < 2:
        raise ValueError("the USL needs throughput at two or more concurrency settings")
    n = np.array([p[0] for p in clean])
    x = np.array([p[1] for p in clean])
    y = n / x
    columns = {"a": np.ones_like(n), "b": n - 1.0, "c": n * (n - 1.0)}
    best: tuple[float, dict[str, float]] | None = None
    for size in (3, 2, 1):  # largest model with non-negative sigma and kappa wins
        for names in combinations(("b", "c"), size - 1):
            chosen = ("a", *names)
            if len(clean) < len(chosen):
                continue
            matrix = np.column_stack([columns[c] for c in chosen])
            solution, *_ = np.linalg.lstsq(matrix, y, rcond=None)
            values = dict(zip(chosen, (float(v) for v in solution), strict=True))
            if values["a"] <= 0 or any(values[k] < 0 for k in names):
                continue
            error = float(np.sum((matrix @ solution - y) ** 2))
            if best is None or error < best[0] - 1e-12:
                best = (error, values)
        if best is not None:
            break
    if best is None:
        slope = float(np.mean(x / n))
        best = (0.0, {"a": 1.0 / slope})
    values = best[1]
    fitted = len(values)
    a = values["a"]
    model = USL(lam=1.0 / a, sigma=values.get("b", 0.0) / a, kappa=values.get("c", 0.0) / a, r2=0.0)
    predicted = np.array([model.throughput(v) for v in n])
    total = float(np.sum((x - x.mean()) ** 2))
    r2 = 1.0 - float(np.sum((x - predicted) ** 2)) / total if total > 0 else 1.0
    return USL(model.lam, model.sigma, model.kappa, round(r2, 4), len(clean), fitted)
