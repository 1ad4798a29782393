"""CloudWatch statistics over raw datapoints, percentiles included (GetMetricData).

CloudWatch computes percentiles from the raw values it received in a period; for values
sent only as statistic sets (min/max/sum/count) a percentile cannot be known and is
omitted. Sum, Average, Minimum, Maximum and SampleCount combine both kinds.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scaleorfail.analysis import percentile

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
        return percentile(raw, float(match.group(1)))  # nearest rank: CloudWatch's method for raw data
    raise ValueError(f"unsupported statistic {stat!r}")


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
    points: list[Point], queries: list[dict[str, Any]], start: datetime, end: datetime, scan_by: str
) -> list[dict[str, Any]]:
    """GetMetricData results of the MetricStat queries (expressions are the caller's).

    Queries with ReturnData false are included, marked by ``return_data``, so that
    expressions can use them.
    """
    by_metric: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[Point]] = defaultdict(list)
    for point in points:  # one pass over the datapoints, whatever the number of queries
        by_metric[(point.namespace, point.name, point.dimensions)].append(point)
    results = []
    for query in queries:
        if "MetricStat" not in query:
            continue
        metric_stat = query["MetricStat"]
        metric = metric_stat["Metric"]
        dimensions = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
        unit = metric_stat.get("Unit")
        chosen = [
            p
            for p in by_metric.get((metric["Namespace"], metric["MetricName"], dimensions), [])
            if unit is None or p.unit == unit
        ]
        data = series(chosen, metric_stat["Stat"], start, end, int(metric_stat["Period"]))
        if scan_by == "TimestampDescending":
            data.reverse()
        results.append(
            {
                "id": query["Id"],
                "label": query.get("Label") or f"{metric['MetricName']} {metric_stat['Stat']}",
                "values": [v for _, v in data],
                "timestamps": [t for t, _ in data],
                "status_code": "Complete",
                "return_data": query.get("ReturnData", True),
            }
        )
    return results
