"""CloudWatch statistics over raw datapoints, percentiles included (GetMetricData).

CloudWatch computes percentiles from the raw values it received in a period; for values
sent only as statistic sets (min/max/sum/count) a percentile cannot be known and is
omitted. Sum, Average, Minimum, Maximum and SampleCount combine both kinds.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


@dataclass(frozen=True)
class Aggregate:
    sample_count: float
    total: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class Point:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    timestamp: datetime
    values: tuple[float, ...] | Aggregate
    unit: str | None = None


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (CloudWatch's method for raw data)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def statistic(stat: str, raw: list[float], aggregates: list[Aggregate]) -> float | None:
    count = len(raw) + sum(a.sample_count for a in aggregates)
    if count == 0:
        return None
    if stat == "SampleCount":
        return float(count)
    total = sum(raw) + sum(a.total for a in aggregates)
    if stat == "Sum":
        return total
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min([*raw, *(a.minimum for a in aggregates)])
    if stat == "Maximum":
        return max([*raw, *(a.maximum for a in aggregates)])
    match = PERCENTILE.match(stat)
    if match:
        if aggregates or not raw:
            return None
        return percentile(sorted(raw), float(match.group(1)))
    raise ValueError(f"unsupported statistic {stat!r}")


def select(
    points: Iterable[Point], namespace: str, name: str, dimensions: dict[str, str], unit: str | None
) -> list[Point]:
    wanted = tuple(sorted(dimensions.items()))
    return [
        p
        for p in points
        if p.name == name and p.namespace == namespace and p.dimensions == wanted and (unit is None or p.unit == unit)
    ]


def series(
    points: list[Point], stat: str, start: datetime, end: datetime, period_s: int
) -> list[tuple[datetime, float]]:
    """(period start, value) for each period in [start, end) that has data."""
    start, end = aware(start), aware(end)
    buckets: dict[int, tuple[list[float], list[Aggregate]]] = defaultdict(lambda: ([], []))
    for point in points:
        moment = aware(point.timestamp)
        if not start <= moment < end:
            continue
        index = int((moment - start).total_seconds() // period_s)
        raw, aggregates = buckets[index]
        if isinstance(point.values, Aggregate):
            aggregates.append(point.values)
        else:
            raw.extend(point.values)
    out = []
    for index in sorted(buckets):
        value = statistic(stat, *buckets[index])
        if value is not None:
            out.append((start + timedelta(seconds=index * period_s), value))
    return out


def get_metric_data(
    points: list[Point],
    queries: list[dict[str, Any]],
    start: datetime,
    end: datetime,
    scan_by: str,
    *,
    include_hidden: bool = False,
) -> list[dict[str, Any]]:
    """GetMetricData results of the MetricStat queries (expressions are the caller's).

    With include_hidden, queries with ReturnData false are included, marked by
    ``return_data``, so that expressions can use them.
    """
    results = []
    for query in queries:
        if "MetricStat" not in query:
            continue
        metric_stat = query["MetricStat"]
        metric = metric_stat["Metric"]
        dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
        chosen = select(points, metric["Namespace"], metric["MetricName"], dimensions, metric_stat.get("Unit"))
        data = series(chosen, metric_stat["Stat"], start, end, int(metric_stat["Period"]))
        if scan_by == "TimestampDescending":
            data.reverse()
        result = {
            "id": query["Id"],
            "label": query.get("Label") or f"{metric['MetricName']} {metric_stat['Stat']}",
            "values": [v for _, v in data],
            "timestamps": [t for t, _ in data],
            "status_code": "Complete",
        }
        if include_hidden:
            result["return_data"] = query.get("ReturnData", True)
            results.append(result)
        elif query.get("ReturnData", True):
            results.append(result)
    return results
