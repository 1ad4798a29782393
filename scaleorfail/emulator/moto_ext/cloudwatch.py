"""CloudWatch: GetMetricData and GetMetricStatistics with percentiles, metric math, alarms that evaluate.

* ``moto.cloudwatch.models.CloudWatchBackend.get_metric_data``: replaced - percentiles
  (:mod:`scaleorfail.emulator.cwstats`) over an index of ``metric_data`` by metric and time
  (:mod:`scaleorfail.emulator.metric_index`: a query costs its periods, not every datapoint), Expression queries by
  :mod:`scaleorfail.emulator.metricmath` (reads ``get_all_metrics`` / ``MetricDatum``).
* The alarm evaluator (:func:`evaluate_alarms`, on a timer, :mod:`scaleorfail.emulator.alarms`
  decides): ``CloudWatchBackend.put_metric_alarm`` (a new alarm starts INSUFFICIENT_DATA, an
  update keeps its state) / ``set_alarm_state`` / ``alarms`` and ``Alarm`` (``state_value``,
  ``state_reason``, ``state_reason_data``, ``update_state``, the configuration fields),
  ``MetricDataQuery`` / ``MetricStat`` / ``Metric`` / ``Dimension``; SNS actions through
  ``sns_backends[...].publish``; the alarm history.
* :class:`CloudWatchAPI`, moto's ``CloudWatchResponse`` on its ``url_paths`` (moto's own
  extension point): every action flushes the sink first; GetMetricStatistics with
  ExtendedStatistics and periods on clock boundaries; DescribeAlarmHistory (moto: HTTP 500).
* ``CloudWatchBackend.get_filtered_metrics`` (ListMetrics): each metric once, as on AWS.
* :func:`trim_metrics`: ``CloudWatchBackend.metric_data`` kept within the retention count.

The sink that writes the metrics is :class:`.core.MotoSink`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch import urls as cloudwatch_urls
from moto.cloudwatch.responses import CloudWatchResponse

from scaleorfail.emulator import alarms, cwstats, metricmath
from scaleorfail.emulator.metric_index import PointIndex
from scaleorfail.emulator.moto_ext.core import (
    MotoSink,
    declare,
    error_text,
    flush_sink,
    log,
    override,
    replace,
    replace_item,
    state,
)

ALARM_EVALUATION_S = 10.0  # SOF_ALARM_EVALUATION_S; CloudWatch evaluates standard alarms every minute
RESPONSE = "moto.cloudwatch.responses.CloudWatchResponse"
BACKEND = "moto.cloudwatch.models.CloudWatchBackend"
ROUTE = "{0}/$"
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


@declare(
    f"{BACKEND}.get_metric_data",
    why="percentiles and metric math, one pass per query (moto: basic statistics only)",
)
def _get_metric_data() -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    def get_metric_data(
        self: Any,
        queries: list[dict[str, Any]],
        start_time: datetime,
        end_time: datetime,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        flush_sink()
        index = _index(self)
        computed: dict[cwstats.MetricKey, list[cwstats.Point]] = {}
        for point in map(_point, self.aws_metric_data):  # moto's own metrics, made on the fly (SQS and the like)
            computed.setdefault((point.namespace, point.name, point.dimensions), []).append(point)

        def series_of(
            key: cwstats.MetricKey, stat: str, start: datetime, end: datetime, period_s: int, unit: str | None
        ) -> list[tuple[datetime, float]]:
            if key not in computed:
                return index.series(key, stat, start, end, period_s, unit)
            chosen = [*index.points(key, cwstats.round_start(start, period_s), end), *computed[key]]
            return cwstats.series([p for p in chosen if unit is None or p.unit == unit], stat, start, end, period_s)

        try:
            results = cwstats.metric_data_results(series_of, queries, start_time, end_time, scan_by)
        except cwstats.StatisticError as exc:
            from moto.cloudwatch.exceptions import InvalidParameterValue

            raise InvalidParameterValue(str(exc)) from None
        results += _metric_math(queries, results, scan_by)
        return [{k: v for k, v in r.items() if k != "return_data"} for r in results if r["return_data"]]

    replace(CloudWatchBackend, "get_metric_data", get_metric_data)


@declare(
    f"{BACKEND}.get_filtered_metrics",
    why="ListMetrics lists each metric once: moto compared every dimension with every other, so a metric with "
    "two dimensions (or none) came back once per datapoint, and the check made a listing O(datapoints x metrics)",
)
def _list_metrics() -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    def get_filtered_metrics(
        self: Any, metric_name: str | None, namespace: str | None, dimensions: list[dict[str, str]]
    ) -> list[Any]:
        """One datum per metric (namespace, name and dimension set) that passes moto's own filter."""
        judged: dict[cwstats.MetricKey, Any] = {}  # the first datum of each metric, or None: filtered out
        for md in self.get_all_metrics():
            key = (md.namespace, md.name, _moto_dimensions(md))
            if key not in judged:
                judged[key] = md if md.filter(namespace=namespace, name=metric_name, dimensions=dimensions) else None
        return [md for md in judged.values() if md is not None]

    replace(CloudWatchBackend, "get_filtered_metrics", get_filtered_metrics)


def _dimension_key(dimensions: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(d["Name"]), str(d["Value"])) for d in dimensions))


def _moto_dimensions(md: Any) -> tuple[tuple[str, str], ...]:
    """A moto datum's dimensions as a metric key's (sorted name, value pairs)."""
    return tuple(sorted((d.name, d.value) for d in md.dimensions))


def _point(md: Any) -> cwstats.Point:
    """A moto ``MetricDatum`` / ``MetricAggregatedDatum`` as a statistics point."""
    return cwstats.Point(md.namespace, md.name, _moto_dimensions(md), cwstats.aware(md.timestamp), _values(md), md.unit)


_index_lock = threading.Lock()


def _index(backend: Any) -> PointIndex:
    """The backend's datapoints by metric and time, brought up to date with ``metric_data``."""
    found = backend.__dict__.get("_sof_index")
    if found is None:
        with _index_lock:
            found = backend.__dict__.get("_sof_index")
            if found is None:
                found = backend._sof_index = PointIndex(_point)
    found.sync(backend.metric_data)
    return found  # type: ignore[no-any-return]


def _values(md: Any) -> tuple[float, ...] | cwstats.Aggregate:
    if hasattr(md, "value"):
        return (float(md.value),)
    return cwstats.Aggregate(
        sample_count=float(md.sample_count), total=float(md.sum), minimum=float(md.min), maximum=float(md.max)
    )


def _metric_math(queries: list[dict[str, Any]], results: list[dict[str, Any]], scan_by: str) -> list[dict[str, Any]]:
    """GetMetricData results of the Expression queries (evaluated by :mod:`.metricmath`)."""
    from moto.cloudwatch.exceptions import ValidationError

    pending = [q for q in queries if "Expression" in q]
    if not pending:
        return []
    periods = [int(q["MetricStat"]["Period"]) for q in queries if "MetricStat" in q]
    known: dict[str, metricmath.Series] = {
        r["id"]: metricmath.Series(
            r["label"], dict(zip(r["timestamps"], r["values"], strict=True)), periods[0] if periods else 60
        )
        for r in results
    }
    out: list[dict[str, Any]] = []
    for _ in range(len(pending) + 1):  # expressions may use each other: evaluate those whose inputs are ready
        waiting = []
        for query in pending:
            try:
                evaluated = metricmath.evaluate(
                    str(query["Expression"]),
                    known,
                    query.get("Label") or query["Id"],
                    int(query.get("Period") or 60),
                    metrics={r["id"] for r in results},
                )
            except metricmath.MetricMathError as exc:
                if "Unrecognized metric id" in str(exc) and any(q["Id"] in str(exc) for q in pending):
                    waiting.append(query)
                    continue
                raise ValidationError(f"Error in expression {query['Id']}: {exc}") from None
            if len(evaluated) == 1:
                known[query["Id"]] = evaluated[0]
            for series in evaluated:
                ordered = series.ordered()
                if scan_by == "TimestampDescending":
                    ordered.reverse()
                out.append(
                    {
                        "id": query["Id"],
                        "label": series.label,
                        "values": [v for _, v in ordered],
                        "timestamps": [t for t, _ in ordered],
                        "status_code": "Complete",
                        "return_data": query.get("ReturnData", True),
                    }
                )
        if not waiting:
            return out
        pending = waiting
    raise ValidationError(f"Error in expression {pending[0]['Id']}: its metric ids form a cycle or do not exist")


def _points(
    backend: Any,
    namespace: str,
    name: str,
    dimensions: list[dict[str, str]],
    unit: str | None,
    since: datetime | None = None,
) -> list[cwstats.Point]:
    """The datapoints of one metric (exact dimensions), since a moment or all (``metric_data`` and
    moto's ``aws_metric_data``)."""
    wanted = _dimension_key(dimensions)
    start = since or EARLIEST
    points = _index(backend).points((namespace, name, wanted), start, LATEST)
    key = (namespace, name, wanted)
    points += [p for p in map(_point, backend.aws_metric_data) if (p.namespace, p.name, p.dimensions) == key]
    return [p for p in points if not unit or p.unit == unit]


@override(
    f"{RESPONSE}.get_metric_statistics",
    why="ExtendedStatistics (percentiles) and periods on clock boundaries (moto ignored the one and started "
    "its periods at the first datapoint)",
)
def _get_metric_statistics(self: Any) -> Any:
    from moto.cloudwatch.exceptions import InvalidParameterCombination, InvalidParameterValue
    from moto.core.responses import ActionResult

    statistics = list(self._get_param("Statistics", []) or [])
    extended = list(self._get_param("ExtendedStatistics", []) or [])
    if bool(statistics) == bool(extended):
        raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics, but not both.")
    for name in statistics:
        if name not in cwstats.STANDARD_STATISTICS:
            raise InvalidParameterValue(f"The value {name} for parameter Statistics is not supported.")
    for name in extended:
        if not cwstats.PERCENTILE.match(name):
            raise InvalidParameterValue(f"The value {name} for parameter ExtendedStatistics is not supported.")
    period = int(self._get_int_param("Period") or 0)
    if period < 1 or (period >= 60 and period % 60) or (period < 60 and period not in (1, 5, 10, 20, 30)):
        raise InvalidParameterValue("The parameter Period must be 1, 5, 10, 20, 30 or a multiple of 60.")
    start, end = self._get_param("StartTime"), self._get_param("EndTime")
    start, end = cwstats.aware(_as_datetime(start)), cwstats.aware(_as_datetime(end))
    if start >= end:
        raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
    if (end - start).total_seconds() / period > 1440:
        raise InvalidParameterCombination(
            "You have requested up to 1,441 datapoints, which exceeds the limit of 1,440. "
            "You may reduce the datapoints requested by increasing Period, or decreasing the time range."
        )
    flush_sink()
    points = _points(
        self.cloudwatch_backend,
        self._get_param("Namespace"),
        self._get_param("MetricName"),
        self._get_param("Dimensions", []) or [],
        self._get_param("Unit"),
        since=cwstats.round_start(start, period),
    )
    datapoints = cwstats.metric_statistics(points, start, end, period, statistics, extended)
    return ActionResult({"Label": self._get_param("MetricName"), "Datapoints": datapoints})


# -- alarms that evaluate ------------------------------------------------------------------------


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)  # type: ignore[no-any-return]


def _alarm_history_add(alarm: Any, kind: str, summary: str, data: dict[str, Any]) -> None:
    history: list[dict[str, Any]] = state.setdefault("alarm_history", [])
    with state.setdefault("alarm_lock", threading.RLock()):
        history.append(
            {
                "AlarmName": alarm.name,
                "AlarmType": "CompositeAlarm" if getattr(alarm, "rule", None) else "MetricAlarm",
                "Timestamp": datetime.now(UTC),
                "HistoryItemType": kind,
                "HistorySummary": summary,
                "HistoryData": json.dumps(data, default=str),
            }
        )
        del history[: max(0, len(history) - 10_000)]


def _alarm_configured(account_id: str, region: str, alarm: Any, created: bool) -> None:
    word = "created" if created else "updated"
    _alarm_history_add(
        alarm, "ConfigurationUpdate", f'Alarm "{alarm.name}" {word}', {"type": "Update", "version": "1.0"}
    )


def _alarm_state_changed(account_id: str, region: str, alarm: Any, old: str, old_reason: str) -> None:
    """History of a state change, then the actions of the new state (SNS topics notified)."""
    data = {
        "version": "1.0",
        "oldState": {"stateValue": old, "stateReason": old_reason},
        "newState": {
            "stateValue": alarm.state_value,
            "stateReason": alarm.state_reason,
            "stateReasonData": json.loads(alarm.state_reason_data or "{}"),
        },
    }
    _alarm_history_add(alarm, "StateUpdate", alarms.history_summary(alarm.name, old, alarm.state_value), data)
    if not alarm.actions_enabled:
        return
    actions = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }[alarm.state_value] or []
    for action in actions:
        _alarm_action(account_id, region, alarm, old, str(action))


def _alarm_action(account_id: str, region: str, alarm: Any, old: str, action: str) -> None:
    if ":sns:" not in action:
        _alarm_history_add(
            alarm,
            "Action",
            f"Failed to execute action {action}. Received error: the emulator runs SNS actions only",
            {"actionState": "Failed", "notificationResource": action},
        )
        return
    from moto.sns.models import sns_backends

    trigger = {
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
        "Statistic": alarm.extended_statistic or (alarm.statistic or "").upper(),
        "Unit": alarm.unit,
        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
    }
    subject, message = alarms.notification(
        name=alarm.name,
        description=alarm.description,
        account=account_id,
        region=region,
        arn=alarm.alarm_arn,
        old=old,
        new=alarm.state_value,
        reason=alarm.state_reason,
        reason_data=alarm.state_reason_data,
        changed_at=datetime.now(UTC),
        trigger=trigger,
    )
    topic_region = action.split(":")[3] if action.count(":") >= 5 else region
    try:
        message_id = sns_backends[account_id][topic_region].publish(message, arn=action, subject=subject)
    except Exception as exc:  # a deleted topic: AWS records the failure in the history too
        _alarm_history_add(
            alarm,
            "Action",
            f"Failed to execute action {action}. Received error: {error_text(exc)}",
            {"actionState": "Failed", "notificationResource": action},
        )
        return
    _alarm_history_add(
        alarm,
        "Action",
        f"Successfully executed action {action}",
        {"actionState": "Succeeded", "notificationResource": action, "publishedMessage": {"messageId": message_id}},
    )


def _alarm_spec(alarm: Any) -> alarms.AlarmSpec:
    return alarms.AlarmSpec(
        name=alarm.name,
        comparison=str(alarm.comparison_operator),
        threshold=float(alarm.threshold or 0),
        evaluation_periods=int(alarm.evaluation_periods or 1),
        period_s=int(alarm.period or _query_period(alarm) or 60),
        datapoints_to_alarm=int(alarm.datapoints_to_alarm) if alarm.datapoints_to_alarm else None,
        treat_missing=alarm.treat_missing_data,
        statistic=str(alarm.extended_statistic or alarm.statistic or ""),
    )


def _query_period(alarm: Any) -> int | None:
    for query in alarm.metric_data_queries or []:
        if query.metric_stat is not None and query.metric_stat.period:
            return int(query.metric_stat.period)
    return None


def _query_dicts(alarm: Any) -> list[dict[str, Any]]:
    """moto's ``MetricDataQuery`` objects of a metric-math alarm, back as GetMetricData queries."""
    out = []
    for query in alarm.metric_data_queries:
        item: dict[str, Any] = {"Id": query.id, "ReturnData": query.return_data not in (False, "false")}
        if query.label:
            item["Label"] = query.label
        if query.expression:
            item["Expression"] = query.expression
        if query.metric_stat is not None:
            stat = query.metric_stat
            item["MetricStat"] = {
                "Metric": {
                    "Namespace": stat.metric.namespace,
                    "MetricName": stat.metric.metric_name,
                    "Dimensions": [{"Name": d.name, "Value": d.value} for d in stat.metric.dimensions],
                },
                "Period": int(stat.period),
                "Stat": stat.stat,
            }
            if stat.unit:
                item["MetricStat"]["Unit"] = stat.unit
        out.append(item)
    return out


def _alarm_values(backend: Any, alarm: Any, spec: alarms.AlarmSpec, now: datetime) -> dict[datetime, float]:
    start, end = alarms.lookback(spec, now)
    if alarm.metric_data_queries:
        results = backend.get_metric_data(_query_dicts(alarm), start, end, "TimestampAscending")
        chosen = [r for r in results if r["id"] == (alarm.threshold_metric_id or r["id"])][:1] or results[:1]
        if not chosen:
            return {}
        return alarms.period_values(list(zip(chosen[0]["timestamps"], chosen[0]["values"], strict=True)))
    stat = alarm.extended_statistic or alarm.statistic
    points = _points(
        backend,
        alarm.namespace,
        alarm.metric_name,
        [{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
        alarm.unit,
        since=start,
    )
    return alarms.period_values(cwstats.series(points, str(stat), start, end, spec.period_s))


def evaluate_alarms(now: datetime | None = None) -> int:
    """One evaluation of every metric alarm; returns how many changed state."""
    from moto.cloudwatch.models import cloudwatch_backends

    flush_sink()
    changed = 0
    # Periods are judged a little after the data arrives (the sink writes behind, the timer ticks):
    # a datapoint at the very end of a period is still seen in it.
    moment = (now or datetime.now(UTC)) - timedelta(seconds=float(state.get("alarm_lag_s", 1.0)))
    for account_id, regions in list(cloudwatch_backends.items()):
        for region, backend in list(regions.items()):
            for alarm in list(backend.alarms.values()):
                if getattr(alarm, "rule", None):
                    continue  # composite alarms are not evaluated
                try:
                    spec = _alarm_spec(alarm)
                    outcome = alarms.evaluate(
                        spec, _alarm_values(backend, alarm, spec, moment), moment, alarm.state_value
                    )
                except Exception:  # one broken alarm must not stop the others
                    log.exception("alarm %s: evaluation failed", alarm.name)
                    continue
                if outcome is None or outcome.state == alarm.state_value:
                    continue
                old, old_reason = alarm.state_value, alarm.state_reason
                alarm.update_state(outcome.reason, outcome.reason_data, outcome.state)
                _alarm_state_changed(account_id, region, alarm, old, old_reason)
                changed += 1
    return changed


def _evaluate_alarms_forever(interval_s: float) -> None:
    while True:
        time.sleep(interval_s)
        try:
            with state.setdefault("alarm_lock", threading.RLock()):
                evaluate_alarms()
        except Exception:  # the evaluator must outlive any one bad round (a backend created meanwhile ...)
            log.exception("alarm evaluation failed; retrying at the next tick")


@declare(f"{BACKEND}.put_metric_alarm", why="a new alarm starts INSUFFICIENT_DATA, an update keeps its state; history")
@declare(f"{BACKEND}.set_alarm_state", why="SetAlarmState recorded in the alarm history, the new state's actions run")
def _alarms() -> None:
    """Alarms with a lifecycle: INSUFFICIENT_DATA at creation, evaluated on a timer, with history.

    moto 5.2.5 internals: ``CloudWatchBackend.put_metric_alarm`` / ``set_alarm_state`` /
    ``alarms`` and ``Alarm`` attributes (``state_value``, ``state_reason``,
    ``state_reason_data``, ``update_state``, the configuration fields), ``MetricDataQuery`` /
    ``MetricStat`` / ``Metric`` / ``Dimension``; ``sns_backends[...].publish`` for actions.
    The timer is :func:`start_alarm_evaluator`; the history is served by :func:`_describe_alarm_history`.
    """
    from moto.cloudwatch.models import CloudWatchBackend

    original_put = CloudWatchBackend.put_metric_alarm
    original_set = CloudWatchBackend.set_alarm_state

    def put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        queries = kwargs.get("metric_data_queries")
        if queries and isinstance(queries[0], dict):
            kwargs["metric_data_queries"] = _moto_queries(queries)
        with state.setdefault("alarm_lock", threading.RLock()):
            previous = self.alarms.get(name)
            alarm = original_put(self, name, *args, **kwargs)
            if previous is None:  # AWS: a new alarm starts in INSUFFICIENT_DATA
                alarm.state_value = "INSUFFICIENT_DATA"
            else:  # an update keeps the state
                for attribute in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp"):
                    setattr(alarm, attribute, getattr(previous, attribute))
            _alarm_configured(self.account_id, self.region_name, alarm, created=previous is None)
        return alarm

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        with state.setdefault("alarm_lock", threading.RLock()):
            alarm = self.alarms.get(alarm_name)
            old, old_reason = (alarm.state_value, alarm.state_reason) if alarm else ("", "")
            original_set(self, alarm_name, reason, reason_data, state_value)
            alarm = self.alarms[alarm_name]
            if old != alarm.state_value:
                _alarm_state_changed(self.account_id, self.region_name, alarm, old, old_reason)

    replace(CloudWatchBackend, "put_metric_alarm", put_metric_alarm)
    replace(CloudWatchBackend, "set_alarm_state", set_alarm_state)


def start_alarm_evaluator() -> None:
    """Alarms evaluated every SOF_ALARM_EVALUATION_S seconds (0: never), on a daemon thread."""
    interval = float(os.environ.get("SOF_ALARM_EVALUATION_S") or ALARM_EVALUATION_S)
    state["alarm_lag_s"] = interval + MotoSink.FLUSH_INTERVAL_S + 0.75
    if interval > 0:
        threading.Thread(target=_evaluate_alarms_forever, args=(interval,), name="alarms", daemon=True).start()


@override(f"{RESPONSE}.describe_alarm_history", adds=True, why="DescribeAlarmHistory (moto 5.2.5 answered HTTP 500)")
def _describe_alarm_history(self: Any) -> Any:
    """DescribeAlarmHistory (moto 5.2.5 answered HTTP 500): the emulator's history, filtered and paged."""
    from moto.cloudwatch.exceptions import InvalidParameterValue, ResourceNotFound
    from moto.core.responses import ActionResult

    name = self._get_param("AlarmName")
    kinds = self._get_param("AlarmTypes", []) or []
    item_type = self._get_param("HistoryItemType")
    start, end = self._get_param("StartDate"), self._get_param("EndDate")
    scan_by = self._get_param("ScanBy") or "TimestampDescending"
    max_records = int(self._get_param("MaxRecords") or 100)
    if not 1 <= max_records <= 100:
        raise InvalidParameterValue("The parameter MaxRecords must be between 1 and 100.")
    if item_type and item_type not in ("ConfigurationUpdate", "StateUpdate", "Action"):
        raise InvalidParameterValue(f"The value {item_type} for parameter HistoryItemType is not supported.")
    if (
        name
        and name not in self.cloudwatch_backend.alarms
        and not any(h["AlarmName"] == name for h in state.get("alarm_history", []))
    ):
        raise ResourceNotFound()
    with state.setdefault("alarm_lock", threading.RLock()):
        items = [dict(h) for h in state.get("alarm_history", [])]
    items = [
        h
        for h in items
        if (not name or h["AlarmName"] == name)
        and (not kinds or h["AlarmType"] in kinds)
        and (not item_type or h["HistoryItemType"] == item_type)
        and (not start or h["Timestamp"] >= cwstats.aware(_as_datetime(start)))
        and (not end or h["Timestamp"] <= cwstats.aware(_as_datetime(end)))
    ]
    items.sort(key=lambda h: h["Timestamp"], reverse=scan_by == "TimestampDescending")
    token = self._get_param("NextToken")
    offset = int(token) if token and str(token).isdigit() else 0
    page = items[offset : offset + max_records]
    result: dict[str, Any] = {"AlarmHistoryItems": page}
    if offset + max_records < len(items):
        result["NextToken"] = str(offset + max_records)
    return ActionResult(result)


def _moto_queries(queries: list[dict[str, Any]]) -> list[Any]:
    """GetMetricData-style query dicts (an alarm's Metrics) as moto's ``MetricDataQuery`` objects."""
    from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat

    out = []
    for query in queries:
        stat = query.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=metric["MetricName"],
                    namespace=metric["Namespace"],
                    dimensions=[Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions") or []],
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        out.append(
            MetricDataQuery(
                query_id=query["Id"],
                label=str(query.get("Label") or ""),
                period=str(query.get("Period") or ""),
                return_data=query.get("ReturnData", True),
                expression=query.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return out


@override(f"{RESPONSE}.call_action", why="reads of metrics see every datum queued before the request (sink flushed)")
def _call_action(self: Any) -> Any:
    flush_sink()
    return CloudWatchResponse.call_action(self)


class CloudWatchAPI(CloudWatchResponse):
    """moto's CloudWatch API with the actions above."""

    call_action = _call_action
    get_metric_statistics = _get_metric_statistics
    describe_alarm_history = _describe_alarm_history


@declare(f"moto.cloudwatch.urls.url_paths[{ROUTE}]", why="the CloudWatch API served by CloudWatchAPI")
def _route() -> None:
    replace_item(cloudwatch_urls, "url_paths", ROUTE, CloudWatchAPI.dispatch)


# -- retention (issue 12) -----------------------------------------------------------------------


def trim_metrics(account_id: str, region: str, budget: int) -> int:
    """Drop the oldest metric data points past `budget`; returns how many.

    Relies on ``CloudWatchBackend.metric_data`` (a list of ``MetricDatum`` with ``timestamp``).
    """
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    data = backend.metric_data
    if len(data) <= budget:
        return 0
    from scaleorfail.emulator import retention

    ordered = sorted(data, key=lambda d: d.timestamp)
    keep = max(1, int(budget * retention.TRIM_TO))
    backend.metric_data = ordered[len(ordered) - keep :]
    return len(ordered) - keep
