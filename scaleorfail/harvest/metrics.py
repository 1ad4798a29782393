"""The run window's CloudWatch metrics: one GetMetricData call per 500 queries, one period for the run.

CloudWatch publishes AWS/Lambda and AWS/States data in 1-minute periods, typically a minute
or two after the minute ends: read sooner, on AWS, the record's metrics are provisional.
The numbers are per function and per state machine, not per run: what else ran in the same
minutes is counted too (the collector lists those executions in ``Metrics.shared_with``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from scaleorfail.record import model

LAMBDA_METRICS = (
    ("Invocations", "Sum"),
    ("Errors", "Sum"),
    ("Throttles", "Sum"),
    ("ConcurrentExecutions", "Maximum"),
    ("Duration", "p50"),
    ("Duration", "p95"),
    ("Duration", "Average"),
)
# The SageMaker endpoint variant (latencies in microseconds); throttled requests count as 4XX.
ENDPOINT_METRICS = (
    ("Invocations", "Sum"),
    ("Invocation4XXErrors", "Sum"),
    ("Invocation5XXErrors", "Sum"),
    ("ModelLatency", "p95"),
    ("ModelLatency", "Average"),
    ("ModelSetupTime", "SampleCount"),
)
STATES_METRICS = (
    "ExecutionsStarted",
    "ExecutionsSucceeded",
    "ExecutionsFailed",
    "ExecutionsTimedOut",
    "ExecutionsAborted",
)
SETTLE_S = 180.0


def metric_window(window: tuple[datetime, datetime]) -> tuple[datetime, datetime, int]:
    """The whole-minute window covering the run, and its length in seconds (the one period)."""
    start = window[0].replace(second=0, microsecond=0)
    period = 60 * (int((window[1] - start).total_seconds()) // 60 + 1)
    return start, start + timedelta(seconds=period), period


def settled_at(target: str, stop: datetime, settle_s: float = SETTLE_S) -> datetime | None:
    """When a run's CloudWatch metrics (query window ending at `stop`) are complete; None: at once (the
    emulator writes them as the work happens and every read sees all of it)."""
    return None if target == "local" else stop + timedelta(seconds=settle_s)


def read(
    call: Callable[..., Any],
    cloudwatch: Any,
    window: tuple[datetime, datetime],
    functions: dict[str, model.Function],
    state_machine_arn: str,
    embed: model.EmbedBackend,
    target: str,
    settle_s: float = SETTLE_S,
) -> model.Metrics:
    start, stop, period = metric_window(window)
    queries: list[dict[str, Any]] = []
    index: dict[str, tuple[str, str, str]] = {}

    def add(namespace: str, metric: str, stat: str, dims: dict[str, str], scope: str) -> None:
        key = f"q{len(queries)}"
        index[key] = (scope, metric, stat)
        queries.append(
            {
                "Id": key,
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": metric,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    },
                    "Period": period,
                    "Stat": stat,
                },
            }
        )

    for step, info in functions.items():
        for metric, stat in LAMBDA_METRICS:
            add("AWS/Lambda", metric, stat, {"FunctionName": info.name}, step)
    for metric, stat in (("Throttles", "Sum"), ("ConcurrentExecutions", "Maximum")):
        add("AWS/Lambda", metric, stat, {}, "account")
    for metric in STATES_METRICS:
        add("AWS/States", metric, "Sum", {"StateMachineArn": state_machine_arn}, "states")
    if embed.backend == "sagemaker" and embed.endpoint:
        dims = {"EndpointName": embed.endpoint, "VariantName": embed.variant or "AllTraffic"}
        for metric, stat in ENDPOINT_METRICS:
            add("AWS/SageMaker", metric, stat, dims, "endpoint")
    values: dict[str, dict[str, float | None]] = {}
    for offset in range(0, len(queries), 500):
        token = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": queries[offset : offset + 500],
                "StartTime": start,
                "EndTime": stop,
                "ScanBy": "TimestampAscending",
            }
            if token:
                kwargs["NextToken"] = token
            response = call("GetMetricData", cloudwatch.get_metric_data, **kwargs)
            for item in response["MetricDataResults"]:
                scope, metric, stat = index[item["Id"]]
                found = [float(v) for v in item.get("Values", [])]
                values.setdefault(scope, {})[f"{metric}_{stat}"] = found[0] if found else None
            token = response.get("NextToken")
            if not token:
                break
    settled = settled_at(target, stop, settle_s)
    return model.Metrics(
        period_s=period,
        start=start,
        stop=stop,
        provisional=settled is not None and datetime.now(UTC) < settled,
        settled_at=settled,
        values=values,
    )
