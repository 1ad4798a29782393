"""CloudWatch statistics over raw datapoints, percentiles included (GetMetricData).

CloudWatch computes percentiles from the raw values it received in a period; for values
sent only as statistic sets (min/max/sum/count) a percentile cannot be known and is
omitted. Sum, Average, Minimum, Maximum and SampleCount combine both kinds.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scaleorfail.stats import percentile

PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


@dataclass(frozen=True)
class Aggregate:
    sample_count: float
    total: float
    minimum: float
    maximum: float


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def aware(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (bucketing by float seconds could misplace a boundary point)."""
    return (aware(moment) - EPOCH) // MICROSECOND


@dataclass(frozen=True)
class Point:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    timestamp: datetime
    values: tuple[float, ...] | Aggregate
    unit: str | None = None
    at_us: int = field(init=False, repr=False, compare=False)  # the timestamp in epoch microseconds

    def __post_init__(self) -> None:
        object.__setattr__(self, "at_us", micros(self.timestamp))


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
    trimmed = _trimmed_bounds(stat)
    if trimmed is not None:
        if aggregates or not raw:
            return None
        return _trimmed(stat[:2].lower() if not stat.upper().startswith("IQM") else "tm", raw, *trimmed)
    raise StatisticError(f"The value {stat} for parameter Stat is not supported.")


class StatisticError(ValueError):
    """A statistic name CloudWatch does not know (InvalidParameterValue)."""


TRIMMED_SHORT = re.compile(r"^(tm|tc|ts|wm)(\d{1,2}(?:\.\d+)?|100)$")
TRIMMED_RANGE = re.compile(r"^(TM|TC|TS|WM)\((\d{1,3}(?:\.\d+)?)?%:(\d{1,3}(?:\.\d+)?)?%\)$")


def _trimmed_bounds(stat: str) -> tuple[float, float] | None:
    """(lower, upper) percentiles of a trimmed statistic: tm99, TM(10%:90%), IQM, tc90, ts90, wm99."""
    if stat == "IQM":
        return 25.0, 75.0
    short = TRIMMED_SHORT.match(stat)
    if short:
        return 0.0, float(short.group(2))
    ranged = TRIMMED_RANGE.match(stat)
    if ranged:
        return float(ranged.group(2) or 0), float(ranged.group(3) or 100)
    return None


def _trimmed(kind: str, raw: list[float], lower: float, upper: float) -> float | None:
    ordered = sorted(raw)
    low = percentile(ordered, lower) if lower > 0 else None
    high = percentile(ordered, upper)
    kept = [v for v in ordered if (low is None or v > low) and high is not None and v <= high]
    if kind == "tc":
        return float(len(kept))
    if kind == "ts":
        return float(sum(kept))
    if kind == "wm":  # winsorized: values outside the bounds clamped to them
        floor = low if low is not None else ordered[0]
        clamped = [min(max(v, floor), high if high is not None else v) for v in ordered]
        return sum(clamped) / len(clamped)
    return sum(kept) / len(kept) if kept else None


STANDARD_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


def metric_statistics(
    points: list[Point],
    start: datetime,
    end: datetime,
    period_s: int,
    statistics: list[str],
    extended: list[str],
) -> list[dict[str, Any]]:
    """GetMetricStatistics datapoints: one per period with data, standard and percentile statistics."""
    start, end = round_start(start, period_s), aware(end)
    buckets: dict[int, tuple[list[float], list[Aggregate], str | None]] = {}
    for point in points:
        moment = aware(point.timestamp)
        if not start <= moment < end:
            continue
        index = int((moment - start).total_seconds() // period_s)
        raw, aggregates, _ = buckets.setdefault(index, ([], [], point.unit))
        if isinstance(point.values, Aggregate):
            aggregates.append(point.values)
        else:
            raw.extend(point.values)
        if point.unit:
            buckets[index] = (raw, aggregates, point.unit)
    out = []
    for index in sorted(buckets):
        raw, aggregates, unit = buckets[index]
        datum: dict[str, Any] = {"Timestamp": start + timedelta(seconds=index * period_s), "Unit": unit or "None"}
        for stat in statistics:
            value = statistic(stat, raw, aggregates)
            if value is not None:
                datum[stat] = value
        values = {name: statistic(name, raw, aggregates) for name in extended}
        if extended:
            datum["ExtendedStatistics"] = {k: v for k, v in values.items() if v is not None}
        out.append(datum)
    return out


def round_start(start: datetime, period_s: int, now: datetime | None = None) -> datetime:
    """StartTime rounded down as CloudWatch rounds it, so that periods fall on clock boundaries.

    Periods under a minute: to a multiple of the period within the minute (01:05:23 with
    10 s -> 01:05:20). Otherwise by the data's age: under 15 days to the whole minute,
    15-63 days to 5 minutes, older to the hour.
    """
    start = aware(start).replace(microsecond=0)
    if period_s < 60:
        return start.replace(second=start.second - start.second % max(period_s, 1))
    age = (aware(now) if now else datetime.now(UTC)) - start
    if age < timedelta(days=15):
        return start.replace(second=0)
    if age < timedelta(days=63):
        return start.replace(minute=start.minute - start.minute % 5, second=0)
    return start.replace(minute=0, second=0)


def series(
    points: list[Point], stat: str, start: datetime, end: datetime, period_s: int
) -> list[tuple[datetime, float]]:
    """(period start, value) for each period in [start, end) that has data, periods from the rounded start."""
    start, end = round_start(start, period_s), aware(end)
    first, last, width = micros(start), micros(end), max(1, period_s) * 1_000_000
    buckets: dict[int, tuple[list[float], list[Aggregate]]] = defaultdict(lambda: ([], []))
    for point in points:  # the hot loop of a dashboard refresh: integers only
        at = point.at_us
        if at < first or at >= last:
            continue
        raw, aggregates = buckets[(at - first) // width]
        values = point.values
        if isinstance(values, Aggregate):
            aggregates.append(values)
        else:
            raw.extend(values)
    out = []
    for index in sorted(buckets):
        value = statistic(stat, *buckets[index])
        if value is not None:
            out.append((start + timedelta(seconds=index * period_s), value))
    return out


MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]  # (namespace, name, sorted dimensions)
SeriesOf = Callable[[MetricKey, str, datetime, datetime, int, "str | None"], list[tuple[datetime, float]]]


def get_metric_data(
    points: list[Point], queries: list[dict[str, Any]], start: datetime, end: datetime, scan_by: str
) -> list[dict[str, Any]]:
    """GetMetricData results of the MetricStat queries (expressions are the caller's).

    Queries with ReturnData false are included, marked by ``return_data``, so that
    expressions can use them.
    """
    by_metric: dict[MetricKey, list[Point]] = defaultdict(list)
    for point in points:  # one pass over the datapoints, whatever the number of queries
        by_metric[(point.namespace, point.name, point.dimensions)].append(point)

    def series_of(
        key: MetricKey, stat: str, start: datetime, end: datetime, period_s: int, unit: str | None
    ) -> list[tuple[datetime, float]]:
        chosen = by_metric.get(key, [])
        if unit is not None:
            chosen = [p for p in chosen if p.unit == unit]
        return series(chosen, stat, start, end, period_s)

    return metric_data_results(series_of, queries, start, end, scan_by)


def metric_data_results(
    series_of: SeriesOf, queries: list[dict[str, Any]], start: datetime, end: datetime, scan_by: str
) -> list[dict[str, Any]]:
    """GetMetricData results of the MetricStat queries, each series from `series_of`."""
    results = []
    for query in queries:
        if "MetricStat" not in query:
            continue
        metric_stat = query["MetricStat"]
        metric = metric_stat["Metric"]
        dimensions = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
        key = (metric["Namespace"], metric["MetricName"], dimensions)
        data = series_of(key, metric_stat["Stat"], start, end, int(metric_stat["Period"]), metric_stat.get("Unit"))
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
