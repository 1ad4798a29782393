"""CloudWatch statistics over raw datapoints, percentiles included (GetMetricData).

CloudWatch computes percentiles from the raw values it received in a period; for values
sent only as statistic sets (min/max/sum/count) a percentile cannot be known and is
omitted. Sum, Average, Minimum, Maximum and SampleCount combine both kinds.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Point:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    timestamp: datetime
    values: tuple[float, ...] | Aggregate
    unit: str | None = None


def aware(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
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


class PointIndex:
    """Datapoints by metric and time, kept up to date with an append-only list of datums.

    GetMetricData scanned every datapoint the account holds (hundreds of thousands) for each
    call; a dashboard refreshing every few seconds during a burst then held the emulator's GIL
    more than the burst itself. Here each datum is converted once, when first seen, and filed
    under its (namespace, name, dimensions), in time order: a query costs the points of its
    metric in its time range. The source list is only ever appended to, or replaced whole
    (retention trims it): a replaced list is indexed anew.
    """

    def __init__(self, to_point: Callable[[Any], Point]) -> None:
        self._to_point = to_point
        self._source: list[Any] | None = None
        self._seen = 0
        self._by_metric: dict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[list[float], list[Point]]] = {}
        self._lock = threading.Lock()

    def sync(self, source: list[Any]) -> None:
        """File the datums appended to `source` since the last call (all of them if it is a new list)."""
        with self._lock:
            if source is not self._source or len(source) < self._seen:
                self._source, self._seen, self._by_metric = source, 0, {}
            fresh = source[self._seen :]
            self._seen += len(fresh)
            for datum in fresh:
                point = self._to_point(datum)
                moment = aware(point.timestamp).timestamp()
                times, points = self._by_metric.setdefault((point.namespace, point.name, point.dimensions), ([], []))
                if not times or moment >= times[-1]:
                    times.append(moment)
                    points.append(point)
                else:  # written a little out of order (write-behind batches): filed in its place
                    at = bisect.bisect_right(times, moment)
                    times.insert(at, moment)
                    points.insert(at, point)

    def points(
        self, namespace: str, name: str, dimensions: tuple[tuple[str, str], ...], start: datetime, end: datetime
    ) -> list[Point]:
        """The metric's points with start <= timestamp < end, oldest first."""
        with self._lock:
            found = self._by_metric.get((namespace, name, dimensions))
            if found is None:
                return []
            times, points = found
            low = bisect.bisect_left(times, aware(start).timestamp())
            high = bisect.bisect_left(times, aware(end).timestamp())
            return points[low:high]

    def metrics(self) -> int:
        with self._lock:
            return len(self._by_metric)
