"""The alarms page and the Lambda functions page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scaleorfail.console.aws import Api, ApiError

RECENT_S = 3600  # "recent" invocations and throttles: the last hour


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def alarms(api: Api) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
        if token:
            kwargs["NextToken"] = token
        page = api.call("cloudwatch", "DescribeAlarms", **kwargs)
        for alarm in page.get("MetricAlarms", []):
            out.append(
                {
                    "name": alarm.get("AlarmName"),
                    "kind": "metric",
                    "state": alarm.get("StateValue"),
                    "reason": alarm.get("StateReason"),
                    "updated": _iso(alarm.get("StateUpdatedTimestamp")),
                    "description": alarm.get("AlarmDescription"),
                    "metric": " ".join(str(v) for v in (alarm.get("Namespace"), alarm.get("MetricName")) if v),
                    "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
                    "statistic": alarm.get("ExtendedStatistic") or alarm.get("Statistic"),
                    "period": alarm.get("Period"),
                    "condition": f"{alarm.get('ComparisonOperator', '')} {alarm.get('Threshold', '')}".strip(),
                    "evaluation": f"{alarm.get('DatapointsToAlarm') or alarm.get('EvaluationPeriods')} of "
                    f"{alarm.get('EvaluationPeriods')}",
                    "actions": bool(alarm.get("ActionsEnabled")),
                }
            )
        for alarm in page.get("CompositeAlarms", []):
            out.append(
                {
                    "name": alarm.get("AlarmName"),
                    "kind": "composite",
                    "state": alarm.get("StateValue"),
                    "reason": alarm.get("StateReason"),
                    "updated": _iso(alarm.get("StateUpdatedTimestamp")),
                    "description": alarm.get("AlarmDescription"),
                    "condition": alarm.get("AlarmRule"),
                }
            )
        token = page.get("NextToken")
        if not token:
            return out


def alarm_history(api: Api, name: str) -> list[dict[str, Any]]:
    found = api.call("cloudwatch", "DescribeAlarmHistory", AlarmName=name, MaxRecords=50)
    return [
        {
            "at": _iso(item.get("Timestamp")),
            "type": item.get("HistoryItemType"),
            "summary": item.get("HistorySummary"),
        }
        for item in found.get("AlarmHistoryItems", [])
    ]


def functions(api: Api) -> dict[str, Any]:
    listed: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        page = api.call("lambda", "ListFunctions", **({"Marker": marker} if marker else {}))
        listed += page.get("Functions", [])
        marker = page.get("NextMarker")
        if not marker:
            break
    settings = api.call("lambda", "GetAccountSettings")
    limit = settings.get("AccountLimit", {})
    rows = []
    for function in sorted(listed, key=lambda f: str(f.get("FunctionName"))):
        name = str(function.get("FunctionName"))
        try:
            reserved = api.call("lambda", "GetFunctionConcurrency", FunctionName=name).get(
                "ReservedConcurrentExecutions"
            )
        except ApiError:
            reserved = None
        environment = (function.get("Environment") or {}).get("Variables") or {}
        rows.append(
            {
                "name": name,
                "runtime": function.get("Runtime"),
                "handler": function.get("Handler"),
                "memory_mb": function.get("MemorySize"),
                "timeout_s": function.get("Timeout"),
                "reserved": reserved,
                "modified": function.get("LastModified"),
                "code_size": function.get("CodeSize"),
                "environment": dict(sorted(environment.items())),
            }
        )
    recent = _recent(api, [r["name"] for r in rows])
    for row in rows:
        row["recent"] = recent.get(row["name"], {})
    return {
        "account": {
            "concurrency": limit.get("ConcurrentExecutions"),
            "unreserved": limit.get("UnreservedConcurrentExecutions"),
            "functions": settings.get("AccountUsage", {}).get("FunctionCount"),
        },
        "recent_s": RECENT_S,
        "functions": rows,
    }


RECENT_METRICS = (("Invocations", "Sum"), ("Throttles", "Sum"), ("Errors", "Sum"), ("ConcurrentExecutions", "Maximum"))


def _recent(api: Api, names: list[str]) -> dict[str, dict[str, float | None]]:
    """Per function: invocations, throttles, errors (sums) and peak concurrency over the last hour."""
    if not names:
        return {}
    now = datetime.now(UTC)
    queries = []
    for i, name in enumerate(names[:100]):
        for j, (metric, stat) in enumerate(RECENT_METRICS):
            queries.append(
                {
                    "Id": f"f{i}_{j}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/Lambda",
                            "MetricName": metric,
                            "Dimensions": [{"Name": "FunctionName", "Value": name}],
                        },
                        "Period": RECENT_S,
                        "Stat": stat,
                    },
                }
            )
    out: dict[str, dict[str, float | None]] = {}
    try:
        found = api.call(
            "cloudwatch",
            "GetMetricData",
            MetricDataQueries=queries,
            StartTime=now - timedelta(seconds=RECENT_S),
            EndTime=now + timedelta(seconds=60),
        )
    except ApiError:
        return out
    for result in found.get("MetricDataResults", []):
        i, j = (int(part) for part in result["Id"][1:].split("_"))
        metric, stat = RECENT_METRICS[j]
        values = result.get("Values", [])
        value = (max(values) if stat == "Maximum" else sum(values)) if values else None
        out.setdefault(names[i], {})[metric] = value
    return out
