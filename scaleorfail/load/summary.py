"""The load's requests in a few lines that fit the terminal, in place of Locust's console tables.

Locust's own tables (160 columns and more) stay in the run's locust.html and locust_*.csv;
the console gets, per request name, its count, failures and response-time percentiles, and
the first errors cut to the terminal's width.
"""

from __future__ import annotations

from typing import Any

from scaleorfail import terminal

PERCENTILES = (0.5, 0.95)
ERRORS_SHOWN = 3


def lines(stats: Any, columns: int) -> list[str]:
    """Summary lines of a Locust RequestStats: one row per request name, then the first errors."""
    entries = [stats.entries[key] for key in sorted(stats.entries)]
    if not entries:
        return []
    rows = [
        [
            entry.name,
            str(entry.num_requests),
            str(entry.num_failures),
            *(  # Locust keeps response times rounded to 2 significant digits: a percentile can exceed the max
                _ms(min(entry.get_response_time_percentile(p), entry.max_response_time)) if entry.num_requests else "-"
                for p in PERCENTILES
            ),
            _ms(entry.max_response_time) if entry.num_requests else "-",
        ]
        for entry in entries
    ]
    headers = ["request", "count", "failed", "p50 ms", "p95 ms", "max ms"]
    out = ["requests (every Locust table: locust.html and locust_*.csv in the run's folder):"]
    out += terminal.table(rows, headers, columns, numparse=False, align=["left"] + ["right"] * 5).splitlines()
    errors = sorted(stats.errors.values(), key=lambda e: -e.occurrences)
    for error in errors[:ERRORS_SHOWN]:
        out.append(terminal.cut(f"error x{error.occurrences}: {error.name}: {error.error}", columns))
    if len(errors) > ERRORS_SHOWN:
        out.append(f"... and {len(errors) - ERRORS_SHOWN} other errors (locust_failures.csv)")
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
