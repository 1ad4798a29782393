"""Metric datapoints by metric and time, kept up to date with an append-only list (pure logic, no moto).

GetMetricData scanned every datapoint the account holds (hundreds of thousands) for each call,
and bucketed them one by one; a dashboard refreshing every few seconds during a burst then held
the emulator's GIL more than the burst itself. :class:`PointIndex` converts each datum once,
when first seen, and files it under its (namespace, name, dimensions) in time order; a series
is then cut into periods by binary search, and for the usual datapoint (one raw value) a
period's values are a slice of a list - a query costs about its number of periods, not its
number of points. The source list is only ever appended to, or replaced whole (retention trims
it): a replaced list is indexed anew.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from scaleorfail.emulator import cwstats
from scaleorfail.emulator.cwstats import Aggregate, MetricKey, Point, micros


class Column:
    """One metric's points in time order, with their single raw values beside them when they all have one."""

    __slots__ = ("points", "simple", "times", "units", "values")

    def __init__(self) -> None:
        self.times: list[int] = []  # epoch microseconds, ascending
        self.points: list[Point] = []
        self.values: list[float] = []  # each point's value (meaningful while `simple`)
        self.simple = True  # every point is one raw value (not a statistic set, not Values/Counts)
        self.units: set[str | None] = set()

    def add(self, point: Point) -> None:
        single = not isinstance(point.values, Aggregate) and len(point.values) == 1
        value = float(point.values[0]) if single else 0.0  # type: ignore[index]
        self.simple = self.simple and single
        self.units.add(point.unit)
        at = point.at_us
        if not self.times or at >= self.times[-1]:
            self.times.append(at)
            self.points.append(point)
            self.values.append(value)
        else:  # written a little out of order (write-behind batches): filed in its place
            where = bisect.bisect_right(self.times, at)
            self.times.insert(where, at)
            self.points.insert(where, point)
            self.values.insert(where, value)


class PointIndex:
    """The datapoints of a CloudWatch backend, by metric and time (see the module's doc)."""

    def __init__(self, to_point: Callable[[Any], Point]) -> None:
        self._to_point = to_point
        self._source: list[Any] | None = None
        self._seen = 0
        self._columns: dict[MetricKey, Column] = {}
        self._lock = threading.Lock()

    def sync(self, source: list[Any]) -> None:
        """File the datums appended to `source` since the last call (all of them if it is a new list)."""
        with self._lock:
            if source is not self._source or len(source) < self._seen:
                self._source, self._seen, self._columns = source, 0, {}
            fresh = source[self._seen :]
            self._seen += len(fresh)
            for datum in fresh:
                point = self._to_point(datum)
                key = (point.namespace, point.name, point.dimensions)
                column = self._columns.get(key)
                if column is None:
                    column = self._columns[key] = Column()
                column.add(point)

    def points(self, key: MetricKey, start: datetime, end: datetime) -> list[Point]:
        """The metric's points with start <= timestamp < end, oldest first."""
        with self._lock:
            column = self._columns.get(key)
            if column is None:
                return []
            low = bisect.bisect_left(column.times, micros(start))
            return column.points[low : bisect.bisect_left(column.times, micros(end))]

    def series(
        self, key: MetricKey, stat: str, start: datetime, end: datetime, period_s: int, unit: str | None = None
    ) -> list[tuple[datetime, float]]:
        """:func:`cwstats.series` of the metric's points (those of `unit` when given)."""
        with self._lock:
            column = self._columns.get(key)
            if column is None:
                return []
            if not column.simple or (unit is not None and column.units != {unit}):
                chosen = column.points if unit is None else [p for p in column.points if p.unit == unit]
                return cwstats.series(chosen, stat, start, end, period_s)
            first_moment = cwstats.round_start(start, period_s)
            first, last = micros(first_moment), micros(end)
            width = max(1, period_s) * 1_000_000
            times, values = column.times, column.values
            out: list[tuple[datetime, float]] = []
            at = bisect.bisect_left(times, first)
            stop = bisect.bisect_left(times, last)
            while at < stop:
                bucket = (times[at] - first) // width
                bound = bisect.bisect_left(times, min(last, first + (bucket + 1) * width), at, stop)
                value = cwstats.statistic(stat, values[at:bound], [])
                if value is not None:
                    out.append((first_moment + timedelta(seconds=bucket * period_s), value))
                at = bound
            return out

    def metrics(self) -> int:
        with self._lock:
            return len(self._columns)
