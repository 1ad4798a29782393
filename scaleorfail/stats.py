"""Numbers and order statistics shared by the emulator (CloudWatch, Logs Insights) and the analysis.

A base module: it imports nothing of the package, so the emulator and the client side
can both use it without depending on each other.
"""

from __future__ import annotations

import math


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values): CloudWatch's method for raw data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def number(value: object) -> float | None:
    """A log field or query value as a number, the way CloudWatch compares them (None: not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None
