"""CloudWatch dashboards drawn from their bodies, whichever tool wrote them.

A body's widgets are normalised for the page: text widgets become a Markdown tree,
metric widgets a list of series (the compact metric arrays expanded - "." repeats the
previous metric's value at that place, "..." everything up to the values that follow -
with each series' stat, period, label, axis and visibility; metric math expressions
kept as expressions). The data of all metric widgets is one request from the page and
one GetMetricData call per widget from here (ids are scoped to a widget).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from scaleorfail.console import markdown
from scaleorfail.console.aws import Api, ApiError

DEFAULT_RANGE_S = 3 * 3600
MAX_POINTS = 1440
_DURATION = re.compile(r"^-?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def duration_s(text: Any) -> int | None:
    """An ISO 8601 relative time such as -PT3H (a dashboard's start) in seconds."""
    match = _DURATION.match(str(text or "").strip())
    if not match or not any(match.groups()):
        return None
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


def expand(metrics: Any) -> list[dict[str, Any]]:
    """The series of a metric widget's `metrics` array."""
    out: list[dict[str, Any]] = []
    previous: list[Any] = []
    for position, entry in enumerate(metrics if isinstance(metrics, list) else []):
        if not isinstance(entry, list):
            continue
        options = entry[-1] if entry and isinstance(entry[-1], dict) else {}
        values = entry[:-1] if options or (entry and isinstance(entry[-1], dict)) else entry
        auto_id = f"sof{position}"
        if "expression" in options:
            out.append(
                {
                    "id": str(options.get("id") or auto_id),
                    "expression": str(options["expression"]),
                    "label": str(options.get("label") or options.get("id") or "expression"),
                    "yAxis": options.get("yAxis", "left"),
                    "visible": options.get("visible", True) is not False,
                    "color": options.get("color"),
                    "period": options.get("period"),
                }
            )
            continue
        full: list[Any] = []
        for place, value in enumerate(values):
            if value == "...":
                rest = len(values) - place - 1
                full += previous[len(full) : max(len(full), len(previous) - rest)]
            elif value == "." and len(full) < len(previous):
                full.append(previous[len(full)])
            else:
                full.append(value)
        previous = full
        if len(full) < 2:
            continue
        names = [str(v) for v in full]
        dimensions = [{"Name": names[i], "Value": names[i + 1]} for i in range(2, len(names) - 1, 2)]
        out.append(
            {
                "id": str(options.get("id") or auto_id),
                "namespace": names[0],
                "metric": names[1],
                "dimensions": dimensions,
                "stat": options.get("stat"),
                "period": options.get("period"),
                "label": str(options.get("label") or names[1]),
                "yAxis": options.get("yAxis", "left"),
                "visible": options.get("visible", True) is not False,
                "color": options.get("color"),
            }
        )
    return out


def widget(index: int, raw: Any) -> dict[str, Any]:
    """One widget as the page draws it."""
    spec: dict[str, Any] = raw if isinstance(raw, dict) else {}
    found = spec.get("properties")
    props: dict[str, Any] = found if isinstance(found, dict) else {}
    kind = str(spec.get("type") or "?")
    base = {
        "index": index,
        "type": kind,
        "x": spec.get("x"),
        "y": spec.get("y"),
        "width": spec.get("width", 6),
        "height": spec.get("height", 6),
        "title": str(props.get("title") or ""),
    }
    if kind == "text":
        return base | {"markdown": markdown.tree(str(props.get("markdown") or ""))}
    if kind == "metric":
        given = props.get("yAxis")
        axis: dict[str, Any] = given if isinstance(given, dict) else {}
        return base | {
            "view": str(props.get("view") or "timeSeries"),
            "stacked": bool(props.get("stacked", False)),
            "stat": str(props.get("stat") or "Average"),
            "period": int(props.get("period") or 300),
            "region": props.get("region"),
            "yAxis": {side: axis.get(side) or {} for side in ("left", "right")},
            "series": expand(props.get("metrics")),
            "setPeriodToTimeRange": bool(props.get("setPeriodToTimeRange", False)),
        }
    if kind == "alarm":
        return base | {"alarms": [str(a) for a in props.get("alarms") or []]}
    if kind == "log":
        return base | {"query": str(props.get("query") or ""), "view": props.get("view")}
    return base


def describe(api: Api, name: str) -> dict[str, Any]:
    found = api.call("cloudwatch", "GetDashboard", DashboardName=name)
    try:
        body = json.loads(found.get("DashboardBody") or "{}")
    except ValueError:
        body = {}
    widgets = body.get("widgets") if isinstance(body, dict) else None
    return {
        "name": found.get("DashboardName", name),
        "arn": found.get("DashboardArn"),
        "range_s": duration_s(body.get("start")) if isinstance(body, dict) else None,
        "widgets": [widget(i, w) for i, w in enumerate(widgets if isinstance(widgets, list) else [])],
    }


def listing(api: Api) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = api.call("cloudwatch", "ListDashboards", **({"NextToken": token} if token else {}))
        for entry in page.get("DashboardEntries", []):
            modified = entry.get("LastModified")
            out.append(
                {
                    "name": entry.get("DashboardName"),
                    "modified": modified.isoformat() if isinstance(modified, datetime) else modified,
                    "size": entry.get("Size"),
                }
            )
        token = page.get("NextToken")
        if not token:
            return out


PERIODS = (1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


def _period(asked: int, range_s: int) -> int:
    """The widget's period, made longer (as the AWS console does) when the range would need too many points."""
    if range_s / max(1, asked) <= MAX_POINTS:
        return max(1, asked)
    return next((p for p in PERIODS if p >= asked and range_s / p <= MAX_POINTS), PERIODS[-1])


def queries(spec: dict[str, Any], range_s: int) -> list[dict[str, Any]]:
    out = []
    for series in spec["series"]:
        period = _period(int(series.get("period") or spec["period"]), range_s)
        if spec.get("setPeriodToTimeRange"):
            period = max(60, range_s // 60 * 60)
        query: dict[str, Any] = {"Id": series["id"], "ReturnData": bool(series["visible"])}
        if "expression" in series:
            query |= {"Expression": series["expression"], "Label": series["label"], "Period": period}
        else:
            query["MetricStat"] = {
                "Metric": {
                    "Namespace": series["namespace"],
                    "MetricName": series["metric"],
                    "Dimensions": series["dimensions"],
                },
                "Period": period,
                "Stat": str(series.get("stat") or spec["stat"]),
            }
            query["Label"] = series["label"]
        out.append(query)
    return out


def data(api: Api, name: str, start: float, end: float) -> dict[str, Any]:
    """Every metric widget's series over [start, end] (epoch seconds), one GetMetricData per widget."""
    described = describe(api, name)
    range_s = max(60, int(end - start))
    widgets: dict[str, dict[str, Any]] = {}
    for spec in described["widgets"]:
        if spec["type"] != "metric" or not spec["series"]:
            continue
        try:
            widgets[str(spec["index"])] = {"series": _fetch(api, queries(spec, range_s), start, end)}
        except ApiError as problem:
            widgets[str(spec["index"])] = {"error": f"{problem.code}: {problem.message}"}
    return {"start": start, "end": end, "widgets": widgets}


def _fetch(api: Api, metric_queries: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "MetricDataQueries": metric_queries,
            "StartTime": datetime.fromtimestamp(start, UTC),
            "EndTime": datetime.fromtimestamp(end, UTC),
            "ScanBy": "TimestampAscending",
        }
        if token:
            kwargs["NextToken"] = token
        page = api.call("cloudwatch", "GetMetricData", **kwargs)
        for result in page.get("MetricDataResults", []):
            entry = results.setdefault(
                result["Id"], {"id": result["Id"], "label": result.get("Label"), "points": {}, "status": None}
            )
            entry["status"] = result.get("StatusCode")
            for moment, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                entry["points"][moment.timestamp() if isinstance(moment, datetime) else float(moment)] = value
        token = page.get("NextToken")
        if not token:
            break
    out = []
    for query in metric_queries:
        if not query["ReturnData"]:
            continue
        entry = results.get(query["Id"], {"points": {}, "status": "Complete"})
        times = sorted(entry["points"])
        out.append(
            {
                "id": query["Id"],
                "label": query.get("Label") or entry.get("label") or query["Id"],
                "times": times,
                "values": [entry["points"][t] for t in times],
                "status": entry.get("status"),
            }
        )
    return out
