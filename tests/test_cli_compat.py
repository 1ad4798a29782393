"""The AWS CLI (and boto3) against the emulator, on the project's own pipeline, as against AWS.

Every test drives a real client - the `aws` command from PyPI, by subprocess with
AWS_ENDPOINT_URL, or boto3 - and declares with @compat what it is evidence for: the
compatibility table of docs/emulator.md is generated from these marks.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_support import Cli, alarm_emulator, finished, poll, state_update
from compat import compat
from emulator_support import Emulator, deploy, tickets

pytestmark = pytest.mark.slow
EMBED_GROUP = "/aws/lambda/scale-or-fail-embed"
SIGNATURE = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/states/aws4_request, SignedHeaders=host, Signature=0"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with alarm_emulator(tmp_path_factory.mktemp("cli")) as running:
        yield running


@pytest.fixture(scope="module")
def cli(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(emulator, tmp_path_factory.mktemp("cli-home"))


@pytest.fixture(scope="module")
def pipeline(emulator: Emulator) -> dict[str, Any]:
    return deploy(emulator)


def moment(value: Any) -> datetime:
    """A timestamp of the CLI's JSON output (epoch seconds, or ISO 8601)."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def start(cli: Cli, arn: str, payload: dict[str, Any], folder: Path) -> str:
    path = folder / f"input-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(payload))
    return str(
        cli("stepfunctions", "start-execution", "--state-machine-arn", arn, "--input", f"file://{path}")["executionArn"]
    )


# -- Step Functions --------------------------------------------------------------------------------


@compat(
    "Step Functions",
    "StopExecution",
    differences="ABORTED at once; a Lambda function already running finishes its invocation (its result is dropped), "
    "and the ExecutionAborted event is written when it returns",
)
def test_stop_execution_aborts_a_map_execution_with_its_error_and_cause(
    cli: Cli, emulator: Emulator, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    arn = start(cli, pipeline["state_machine_arn"], {"tickets": tickets(300), "max_concurrency": 1}, tmp_path)
    sfn = emulator.client("stepfunctions")
    poll(
        lambda: any(e["type"] == "MapIterationSucceeded" for e in sfn.get_execution_history(executionArn=arn)["events"])
    )
    stopped = cli(
        "stepfunctions", "stop-execution", "--execution-arn", arn, "--error", "Ops.Stop", "--cause", "by hand"
    )
    assert datetime.fromtimestamp(float(stopped["stopDate"]), UTC) <= datetime.now(UTC) + timedelta(seconds=1)
    description = cli("stepfunctions", "describe-execution", "--execution-arn", arn)
    assert description["status"] == "ABORTED" and "stopDate" in description
    history = cli(
        "stepfunctions", "get-execution-history", "--execution-arn", arn, "--reverse-order", "--max-items", "1"
    )
    last = history["events"][0]
    assert last["type"] == "ExecutionAborted"
    assert last["executionAbortedEventDetails"] == {"error": "Ops.Stop", "cause": "by hand"}


@compat("Step Functions", "StartExecution", "DescribeExecution", "GetExecutionHistory")
def test_execution_data_is_left_out_when_asked_and_described_as_included(
    cli: Cli, pipeline: dict[str, Any], tmp_path: Path, emulator: Emulator
) -> None:
    arn = start(cli, pipeline["state_machine_arn"], {"tickets": tickets(2), "max_concurrency": 2}, tmp_path)
    finished(emulator.client("stepfunctions"), arn)
    description = cli("stepfunctions", "describe-execution", "--execution-arn", arn)
    assert description["status"] == "SUCCEEDED"
    assert description["inputDetails"] == {"included": True} and description["outputDetails"] == {"included": True}
    assert json.loads(description["output"])["results"][0]["ticket_id"] == "T-0000"
    full = cli("stepfunctions", "get-execution-history", "--execution-arn", arn)["events"]
    bare = cli("stepfunctions", "get-execution-history", "--execution-arn", arn, "--no-include-execution-data")[
        "events"
    ]
    assert len(bare) == len(full)
    assert any("input" in e.get("executionStartedEventDetails", {}) for e in full)
    for event in bare:
        for key, details in event.items():
            if key.endswith("EventDetails"):
                assert not {"input", "output", "inputDetails", "outputDetails"} & set(details), event


# -- CloudWatch Logs: FilterLogEvents --------------------------------------------------------------


@pytest.fixture(scope="module")
def log_group(cli: Cli) -> str:
    """Two streams whose events interleave in time: JSON lines and space-delimited access lines."""
    group = "/sof/filter-patterns"
    cli("logs", "create-log-group", "--log-group-name", group)
    now = int(time.time() * 1000) - 60_000
    lines = {
        "app/1": [
            (now + 0, json.dumps({"step": "embed", "duration_ms": 250, "route": "billing"})),
            (now + 2, json.dumps({"step": "preprocess", "duration_ms": 3, "error": None})),
            (now + 4, "ERROR Exiting after a timeout"),
        ],
        "app/2": [
            (now + 1, json.dumps({"step": "embed", "duration_ms": 900, "route": "delivery"})),
            (now + 3, "WARN slow dependency"),
        ],
        "web/1": [(now + 5, '10.0.0.1 - alice [02/Dec/2026:10:00:00] "GET /tickets" 404 2048')],
    }
    for stream, events in lines.items():
        cli("logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", stream)
        batch = json.dumps([{"timestamp": t, "message": m} for t, m in events])
        cli("logs", "put-log-events", "--log-group-name", group, "--log-stream-name", stream, "--log-events", batch)
    return group


def matched(cli: Cli, group: str, *args: str) -> list[dict[str, Any]]:
    return list(cli("logs", "filter-log-events", "--log-group-name", group, *args)["events"])


@compat(
    "CloudWatch Logs",
    "FilterLogEvents",
    "PutLogEvents",
    "CreateLogStream",
    differences="filter patterns: terms, JSON and space-delimited as documented; no metric-filter dimensions",
)
def test_filter_log_events_understands_the_three_pattern_forms(cli: Cli, log_group: str) -> None:
    def messages(*args: str) -> list[str]:
        return [e["message"] for e in matched(cli, log_group, *args)]

    everything = matched(cli, log_group)
    assert [e["timestamp"] for e in everything] == sorted(e["timestamp"] for e in everything)  # interleaved
    assert [e["logStreamName"] for e in everything][:4] == ["app/1", "app/2", "app/1", "app/2"]
    embed = messages("--filter-pattern", '{ $.step = "embed" }')
    assert len(embed) == 2 and all('"embed"' in m for m in embed)
    assert len(messages("--filter-pattern", '{ $.step = "embed" && $.duration_ms > 500 }')) == 1
    assert len(messages("--filter-pattern", "{ $.error IS NULL }")) == 1
    assert len(messages("--filter-pattern", "{ $.route = deliv* }")) == 1
    assert messages("--filter-pattern", "?ERROR ?WARN") == ["WARN slow dependency", "ERROR Exiting after a timeout"]
    assert messages("--filter-pattern", "ERROR -timeout") == []
    assert messages("--filter-pattern", "[ip, id, user, timestamp, request, status = 4*, bytes > 1000]") == [
        '10.0.0.1 - alice [02/Dec/2026:10:00:00] "GET /tickets" 404 2048'
    ]
    assert messages("--filter-pattern", "[a, b]") == []  # no event has exactly two fields
    assert len(messages("--filter-pattern", "[level = WARN, ...]")) == 1
    assert {e["logStreamName"] for e in matched(cli, log_group, "--log-stream-name-prefix", "app/")} == {
        "app/1",
        "app/2",
    }
    assert messages("--log-stream-names", "web/1", "--filter-pattern", "alice") != []
    bad = cli.fails("logs", "filter-log-events", "--log-group-name", log_group, "--filter-pattern", "{ $.step = ")
    assert "InvalidParameterException" in bad.stderr
    both = cli.fails(
        "logs",
        "filter-log-events",
        "--log-group-name",
        log_group,
        "--log-stream-names",
        "a",
        "--log-stream-name-prefix",
        "b",
    )
    assert "InvalidParameterException" in both.stderr


@compat("CloudWatch Logs", "FilterLogEvents", client="boto3")
def test_filter_log_events_pages_with_next_token(emulator: Emulator, log_group: str) -> None:
    logs = emulator.client("logs")
    seen: list[str] = []
    token = None
    while True:
        page = logs.filter_log_events(logGroupName=log_group, limit=2, **({"nextToken": token} if token else {}))
        assert len(page["events"]) <= 2
        seen += [e["eventId"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 6


# -- CloudWatch metrics -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def custom_metric(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> datetime:
    """Sof/Test Requests: 1..20 at one minute, 100 the next; Errors 2 then 3 (values 60 s apart)."""
    base = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=0, microsecond=0)
    folder = tmp_path_factory.mktemp("metrics")
    data = [
        *(
            {"MetricName": "Requests", "Timestamp": (base + timedelta(seconds=i)).isoformat(), "Value": float(i + 1)}
            for i in range(20)
        ),
        {"MetricName": "Requests", "Timestamp": (base + timedelta(seconds=70)).isoformat(), "Value": 100.0},
        {"MetricName": "Errors", "Timestamp": (base + timedelta(seconds=5)).isoformat(), "Value": 2.0},
        {"MetricName": "Errors", "Timestamp": (base + timedelta(seconds=75)).isoformat(), "Value": 3.0},
    ]
    path = folder / "data.json"
    path.write_text(json.dumps(data))
    cli("cloudwatch", "put-metric-data", "--namespace", "Sof/Test", "--metric-data", f"file://{path}")
    return base


def metric_query(qid: str, name: str, stat: str = "Sum", return_data: bool = False) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {"Metric": {"Namespace": "Sof/Test", "MetricName": name}, "Period": 60, "Stat": stat},
        "ReturnData": return_data,
    }


@compat(
    "CloudWatch",
    "GetMetricData",
    "PutMetricData",
    differences="metric math: arithmetic, comparisons and the documented functions except SEARCH, "
    "ANOMALY_DETECTION_BAND, INSIGHT_RULE_METRIC, SERVICE_QUOTA, LAMBDA and Metrics Insights SELECT",
)
def test_get_metric_data_evaluates_metric_math(cli: Cli, custom_metric: datetime, tmp_path: Path) -> None:
    queries = [
        metric_query("inv", "Requests"),
        metric_query("err", "Errors"),
        {"Id": "double", "Expression": "inv*2", "Label": "twice"},
        {"Id": "total", "Expression": "SUM(METRICS())"},
        {"Id": "rate", "Expression": "100 * err / inv"},
        {"Id": "p95", **metric_query("p95", "Requests", "p95", True)},
    ]
    path = tmp_path / "queries.json"
    path.write_text(json.dumps(queries))
    window = (
        "--start-time",
        (custom_metric - timedelta(seconds=30)).isoformat(),
        "--end-time",
        (custom_metric + timedelta(minutes=3)).isoformat(),
    )
    answer = cli(
        "cloudwatch",
        "get-metric-data",
        "--metric-data-queries",
        f"file://{path}",
        "--scan-by",
        "TimestampAscending",
        *window,
    )
    results = {r["Id"]: r for r in answer["MetricDataResults"]}
    assert set(results) == {"double", "total", "rate", "p95"}  # ReturnData false: not returned
    assert results["double"]["Values"] == [420.0, 200.0] and results["double"]["Label"] == "twice"
    assert results["total"]["Values"] == [231.0, 203.0]  # METRICS(): the three MetricStat queries, not "double"
    assert [round(v, 3) for v in results["rate"]["Values"]] == [0.952, 3.0]
    assert results["p95"]["Values"] == [19.0, 100.0]
    stamps = [moment(t) for t in results["double"]["Timestamps"]]
    assert stamps == [custom_metric, custom_metric + timedelta(minutes=1)]
    assert {r["StatusCode"] for r in results.values()} == {"Complete"}
    path.write_text(
        json.dumps([metric_query("inv", "Requests"), {"Id": "bad", "Expression": "SEARCH('x', 'Sum', 60)"}])
    )
    refused = cli.fails("cloudwatch", "get-metric-data", "--metric-data-queries", f"file://{path}", *window)
    assert "ValidationError" in refused.stderr and "SEARCH" in refused.stderr


@compat("CloudWatch", "GetMetricStatistics", differences="percentiles are nearest-rank over the raw values")
def test_get_metric_statistics_gives_percentiles_on_clock_aligned_periods(cli: Cli, custom_metric: datetime) -> None:
    window = (
        "--start-time",
        (custom_metric + timedelta(seconds=13)).isoformat(),
        "--end-time",
        (custom_metric + timedelta(minutes=3)).isoformat(),
    )
    common = ("--namespace", "Sof/Test", "--metric-name", "Requests", "--period", "60", *window)
    percentiles = cli("cloudwatch", "get-metric-statistics", *common, "--extended-statistics", "p95", "p50")
    points = sorted(percentiles["Datapoints"], key=lambda d: d["Timestamp"])
    assert [p["ExtendedStatistics"] for p in points] == [{"p95": 19.0, "p50": 10.0}, {"p95": 100.0, "p50": 100.0}]
    standard = cli("cloudwatch", "get-metric-statistics", *common, "--statistics", "Sum", "SampleCount", "Maximum")
    points = sorted(standard["Datapoints"], key=lambda d: d["Timestamp"])
    stamps = [moment(p["Timestamp"]) for p in points]
    assert stamps == [custom_metric, custom_metric + timedelta(minutes=1)]  # 12:00:13 rounds down to 12:00:00
    assert [(p["Sum"], p["SampleCount"], p["Maximum"]) for p in points] == [(210.0, 20.0, 20.0), (100.0, 1.0, 100.0)]
    both = cli.fails(
        "cloudwatch", "get-metric-statistics", *common, "--statistics", "Sum", "--extended-statistics", "p9"
    )
    assert "InvalidParameterCombination" in both.stderr


@compat("CloudWatch", "ListMetrics", differences="every metric that has a datapoint, however old (AWS: two weeks)")
def test_list_metrics_lists_each_metric_once(cli: Cli, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    endpoint = [{"Name": "EndpointName", "Value": "e1"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    data = [
        *(
            {"MetricName": "Calls", "Timestamp": (now - timedelta(seconds=i)).isoformat(), "Value": 1.0}
            for i in range(3)
        ),
        *({"MetricName": "Latency", "Dimensions": endpoint, "Value": float(i)} for i in range(2)),
        {"MetricName": "Latency", "Dimensions": endpoint[:1], "Value": 5.0},
    ]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    cli("cloudwatch", "put-metric-data", "--namespace", "Sof/List", "--metric-data", f"file://{path}")

    def listed(*filters: str) -> list[tuple[str, list[tuple[str, str]]]]:
        metrics = cli("cloudwatch", "list-metrics", "--namespace", "Sof/List", *filters)["Metrics"]
        return sorted((m["MetricName"], sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics)

    # one entry per metric (namespace, name, dimension set), not one per datapoint
    assert listed() == [
        ("Calls", []),
        ("Latency", [("EndpointName", "e1")]),
        ("Latency", [("EndpointName", "e1"), ("VariantName", "AllTraffic")]),
    ]
    assert listed("--dimensions", "Name=VariantName") == [
        ("Latency", [("EndpointName", "e1"), ("VariantName", "AllTraffic")])
    ]


# -- alarms -----------------------------------------------------------------------------------------


def alarm(cli: Cli, name: str) -> dict[str, Any]:
    return dict(cli("cloudwatch", "describe-alarms", "--alarm-names", name)["MetricAlarms"][0])


@compat(
    "CloudWatch",
    "PutMetricAlarm",
    "DescribeAlarms",
    "DescribeAlarmHistory",
    differences="evaluated every SOF_ALARM_EVALUATION_S (10 s) including the current period; "
    "composite and anomaly-detection alarms are stored, not evaluated",
)
def test_an_alarm_moves_through_its_states_with_history_and_notifies_its_topic(cli: Cli, emulator: Emulator) -> None:
    topic = cli("sns", "create-topic", "--name", "sof-alarm-test")["TopicArn"]
    queue = cli("sqs", "create-queue", "--queue-name", "sof-alarm-test")["QueueUrl"]
    queue_arn = cli("sqs", "get-queue-attributes", "--queue-url", queue, "--attribute-names", "QueueArn")["Attributes"][
        "QueueArn"
    ]
    cli("sns", "subscribe", "--topic-arn", topic, "--protocol", "sqs", "--notification-endpoint", queue_arn)
    cli(
        "cloudwatch", "put-metric-alarm", "--alarm-name", "sof-depth",
        "--namespace", "Sof/Alarm", "--metric-name", "Depth",
        "--statistic", "Maximum", "--period", "10", "--evaluation-periods", "1", "--threshold", "5",
        "--comparison-operator", "GreaterThanThreshold", "--treat-missing-data", "missing",
        "--alarm-actions", topic, "--ok-actions", topic,
    )  # fmt: skip
    assert alarm(cli, "sof-depth")["StateValue"] == "INSUFFICIENT_DATA"
    cli("cloudwatch", "put-metric-data", "--namespace", "Sof/Alarm", "--metric-name", "Depth", "--value", "9")
    raised = poll(lambda: state_update(emulator, "sof-depth", "ALARM"), what="the change to ALARM")["data"]["newState"]
    assert "greater than the threshold (5.0)" in raised["stateReason"]
    assert raised["stateReasonData"]["recentDatapoints"] == [9.0]
    cli("cloudwatch", "put-metric-data", "--namespace", "Sof/Alarm", "--metric-name", "Depth", "--value", "1")

    def left_alarm() -> dict[str, Any] | None:
        """The change out of ALARM (to OK, or to INSUFFICIENT_DATA when a busy machine let a period pass empty)."""
        cw = emulator.client("cloudwatch")
        items = cw.describe_alarm_history(AlarmName="sof-depth", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
        out = [{**h, "data": json.loads(h["HistoryData"])} for h in items]
        return next((h for h in out if h["data"]["oldState"]["stateValue"] == "ALARM"), None)

    back = poll(left_alarm, what="the way back")
    assert back["data"]["newState"]["stateValue"] in ("OK", "INSUFFICIENT_DATA")
    assert alarm(cli, "sof-depth")["StateValue"] in ("OK", "INSUFFICIENT_DATA")
    history = cli(
        "cloudwatch", "describe-alarm-history", "--alarm-name", "sof-depth", "--scan-by", "TimestampAscending"
    )
    kinds = [(h["HistoryItemType"], h["HistorySummary"]) for h in history["AlarmHistoryItems"]]
    assert kinds[0] == ("ConfigurationUpdate", 'Alarm "sof-depth" created')
    assert ("StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM") in kinds
    raised_by_cli = next(h for h in history["AlarmHistoryItems"] if h["HistorySummary"].endswith("to ALARM"))
    assert "greater than the threshold (5.0)" in json.loads(raised_by_cli["HistoryData"])["newState"]["stateReason"]
    assert ("Action", f"Successfully executed action {topic}") in kinds
    only = cli(
        "cloudwatch", "describe-alarm-history", "--alarm-name", "sof-depth", "--history-item-type", "StateUpdate"
    )
    assert {h["HistoryItemType"] for h in only["AlarmHistoryItems"]} == {"StateUpdate"}
    sqs = emulator.client("sqs")
    note = poll(
        lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"), what="the SNS notification"
    )
    body = json.loads(json.loads(note[0]["Body"])["Message"])
    assert body["AlarmName"] == "sof-depth" and body["NewStateValue"] == "ALARM"
    assert body["Trigger"]["MetricName"] == "Depth" and body["Trigger"]["Threshold"] == 5.0


@compat("CloudWatch", "PutMetricAlarm", "SetAlarmState", client="boto3")
def test_missing_data_treatment_and_set_alarm_state(emulator: Emulator) -> None:
    cloudwatch = emulator.client("cloudwatch")
    common = {
        "Namespace": "Sof/Alarm",
        "MetricName": "Nothing",
        "Statistic": "Sum",
        "Period": 10,
        "EvaluationPeriods": 2,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    for treatment in ("breaching", "notBreaching", "missing", "ignore"):
        cloudwatch.put_metric_alarm(AlarmName=f"sof-{treatment}", TreatMissingData=treatment, **common)
    expected = {
        "breaching": "ALARM",
        "notBreaching": "OK",
        "missing": "INSUFFICIENT_DATA",
        "ignore": "INSUFFICIENT_DATA",
    }

    def states() -> dict[str, str]:
        found = cloudwatch.describe_alarms(AlarmNamePrefix="sof-")["MetricAlarms"]
        return {
            a["AlarmName"].removeprefix("sof-"): a["StateValue"]
            for a in found
            if a["AlarmName"].removeprefix("sof-") in expected
        }

    poll(lambda: states() == expected, what=f"states {expected}")
    cloudwatch.set_alarm_state(AlarmName="sof-ignore", StateValue="ALARM", StateReason="by hand")
    cloudwatch.set_alarm_state(AlarmName="sof-notBreaching", StateValue="ALARM", StateReason="by hand")
    # The evaluation that puts notBreaching back to OK keeps ignore's state while its data is missing.
    poll(lambda: states()["notBreaching"] == "OK", what="the next evaluation")
    assert states()["ignore"] == "ALARM"
    history = cloudwatch.describe_alarm_history(AlarmName="sof-ignore", HistoryItemType="StateUpdate")
    assert [h["HistorySummary"] for h in history["AlarmHistoryItems"]] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM"
    ]
    cloudwatch.delete_alarms(AlarmNames=[f"sof-{t}" for t in expected])


@compat("CloudWatch", "DescribeAlarms", differences="alarms declared in terraform/ evaluate like any other")
def test_the_pipeline_alarms_from_terraform_fire_on_a_failed_execution(
    cli: Cli, emulator: Emulator, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    name = pipeline["alarm_names"]["executions_failed"]
    arn = start(cli, pipeline["state_machine_arn"], {"tickets": [{"ticket_id": "T-BIG", "text": "x" * 5100}]}, tmp_path)
    failed = finished(emulator.client("stepfunctions"), arn)
    assert failed["status"] == "FAILED"
    # in ALARM for the minute of the failure (notBreaching after it): its history keeps the change
    raised = poll(lambda: state_update(emulator, name, "ALARM", since=failed["startDate"]), what=f"{name} in ALARM")
    assert raised["data"]["newState"]["stateReasonData"]["recentDatapoints"][0] >= 1.0
    assert alarm(cli, name)["AlarmName"] == name  # DescribeAlarms (the CLI) knows the alarm terraform declared


# -- Logs Insights ----------------------------------------------------------------------------------


def query(cli: Cli, group: str, text: str) -> dict[str, Any]:
    now = int(time.time())
    started = cli(
        "logs", "start-query", "--log-group-name", group, "--start-time", str(now - 3600), "--end-time", str(now + 60),
        "--query-string", text,
    )  # fmt: skip
    return dict(cli("logs", "get-query-results", "--query-id", started["queryId"]))


def values(result: dict[str, Any], field: str) -> list[str]:
    return [f["value"] for row in result["results"] for f in row if f["field"] == field]


@compat(
    "CloudWatch Logs",
    "StartQuery",
    "GetQueryResults",
    "StopQuery",
    "GetLogRecord",
    "DescribeQueries",
    differences="queries complete at once (StopQuery then answers success false); commands pattern, diff, anomaly, "
    "unnest, lookup, filterIndex and SOURCE are refused with MalformedQueryException",
)
def test_logs_insights_answers_as_aws_does(cli: Cli, log_group: str) -> None:
    result = query(cli, log_group, "fields @timestamp, @message | filter step = 'embed' | sort @timestamp asc")
    assert result["status"] == "Complete"
    assert result["statistics"]["recordsScanned"] == 6 and result["statistics"]["recordsMatched"] == 2
    pointers = values(result, "@ptr")
    assert len(pointers) == 2
    record = cli("logs", "get-log-record", "--log-record-pointer", pointers[0])["logRecord"]
    assert json.loads(record["@message"])["step"] == "embed" and record["@logStream"] in ("app/1", "app/2")
    functions = query(
        cli,
        log_group,
        "filter ispresent(route) | fields strcontains(route, 'bill') as billing, coalesce(error, route) as first, "
        "substr(route, 0, 3) as head, replace(route, 'i', '!') as swapped, trim('  x  ') as trimmed, "
        "greatest(duration_ms, 300) as big, least(duration_ms, 300) as small, unmask(route) as plain, "
        "datefloor(@timestamp, 1h) as hour, toupper(route) as loud | sort duration_ms asc",
    )
    row = {f["field"]: f["value"] for f in functions["results"][0]}
    assert row["billing"] == "1" and row["first"] == "billing" and row["head"] == "bil" and row["swapped"] == "b!ll!ng"
    assert row["trimmed"] == "x" and row["big"] == "300" and row["small"] == "250" and row["plain"] == "billing"
    assert row["hour"].endswith(":00:00.000") and row["loud"] == "BILLING"
    globbed = query(cli, log_group, 'parse @message "after a *" as what | filter ispresent(what) | display what')
    assert values(globbed, "what") == ["timeout"]
    binned = query(cli, log_group, "stats count(*) as n by bin(1h) as hour, datefloor(@timestamp, 1d) as day")
    assert sum(int(v) for v in values(binned, "n")) == 6 and "@ptr" not in json.dumps(binned["results"])
    for bad, named in (
        ("fields @message | limit", "limit"),
        ("pattern @message", "pattern"),
        ("fields nosuch(@message)", "nosuch"),
    ):
        now = int(time.time())
        refused = cli.fails(
            "logs",
            "start-query",
            "--log-group-name",
            log_group,
            "--start-time",
            str(now - 60),
            "--end-time",
            str(now),
            "--query-string",
            bad,
        )
        assert "MalformedQueryException" in refused.stderr and named in refused.stderr, refused.stderr
    now = int(time.time())
    ident = cli(
        "logs",
        "start-query",
        "--log-group-name",
        log_group,
        "--start-time",
        str(now - 60),
        "--end-time",
        str(now),
        "--query-string",
        "fields @message",
    )["queryId"]
    assert cli("logs", "stop-query", "--query-id", ident) == {"success": False}  # it had completed already
    listed = cli("logs", "describe-queries", "--log-group-name", log_group)["queries"]
    assert ident in {q["queryId"] for q in listed}


# -- the protocol -------------------------------------------------------------------------------------


@compat(
    "all JSON-protocol services",
    "malformed request body",
    client="HTTP (urllib)",
    differences="the message text is the emulator's own",
)
@pytest.mark.parametrize(
    ("target", "content_type"),
    [
        ("AWSStepFunctions.ListStateMachines", "application/x-amz-json-1.0"),
        ("Logs_20140328.DescribeLogGroups", "application/x-amz-json-1.1"),
        ("GraniteServiceVersion20100801.DescribeAlarms", "application/x-amz-json-1.0"),
        ("SageMaker.ListEndpoints", "application/x-amz-json-1.1"),
    ],
)
def test_a_malformed_request_body_is_a_serialization_exception(
    emulator: Emulator, target: str, content_type: str
) -> None:
    for body in (b"{not json", b"[1, 2]"):
        request = urllib.request.Request(
            emulator.url + "/",
            data=body,
            method="POST",
            headers={
                "X-Amz-Target": target,
                "Content-Type": content_type,
                "Authorization": SIGNATURE,
            },
        )
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=10)
        assert raised.value.code == 400
        answer = json.loads(raised.value.read())
        assert answer["__type"] == "SerializationException" and answer["message"]


@compat("all JSON-protocol services", "unknown operation", client="HTTP (urllib)")
def test_an_operation_the_emulator_lacks_is_a_client_error_not_a_500(emulator: Emulator) -> None:
    request = urllib.request.Request(
        emulator.url + "/",
        data=b"{}",
        method="POST",
        headers={
            "X-Amz-Target": "AWSStepFunctions.NoSuchOperation",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": SIGNATURE,
        },
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 400
    assert json.loads(raised.value.read())["__type"] == "UnknownOperationException"
