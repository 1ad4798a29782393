"""The emulator's pure engines: filter patterns, metric math, alarm evaluation, CloudFormation properties, Insights.

Fast and exhaustive where the client tests (test_cli_compat.py) are end to end and few.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleorfail.emulator import alarms, cfn_props, cwstats, metricmath, protocol
from scaleorfail.emulator import logs_insights as insights
from scaleorfail.emulator.filterpattern import FilterPatternError, compile_pattern, split_fields
from scaleorfail.emulator.metric_index import PointIndex
from scaleorfail.emulator.threadpool import ElasticThreads

DOC = json.dumps({"step": "embed", "duration_ms": 120, "route": "billing", "err": None, "ok": True, "a": ["x", "y"]})


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [
        ("", "anything", True),
        ("ERROR", "an ERROR here", True),
        ("ERROR", "an error here", False),  # case-sensitive
        ("ERROR Exception", "ERROR and Exception", True),
        ("ERROR Exception", "ERROR only", False),
        ("?ERROR ?WARN", "WARN x", True),
        ("?ERROR ?WARN", "INFO x", False),
        ("ERROR -Retrying", "ERROR Retrying", False),
        ('"an error"', "it is an error", True),
        ("%tim.out%", "timeout", True),
        ('{ $.step = "embed" }', DOC, True),
        ('{ $.step = "embed" }', "step embed", False),  # not JSON
        ('{ $.step != "embed" }', DOC, False),
        ("{ $.route = bill* }", DOC, True),
        ("{ $.duration_ms >= 120 && $.duration_ms < 121 }", DOC, True),
        ('{ ($.route = "x" || $.route = "billing") && $.ok IS TRUE }', DOC, True),
        ("{ $.err IS NULL }", DOC, True),
        ("{ $.missing NOT EXISTS }", DOC, True),
        ("{ $.step EXISTS }", DOC, True),
        ('{ $.a[1] = "y" }', DOC, True),
        ("{ $.step = %emb.d% }", DOC, True),
        ("[a, b]", "one two", True),
        ("[a, b]", "one two three", False),
        ("[a, ..., c = three]", "one x y three", True),
        ("[ip, user, ..., status = 4* || status = 5*, bytes > 1000]", "1.1.1.1 bob GET /x 503 2000", True),
        ("[ip, user, ..., status = 4*, bytes > 1000]", "1.1.1.1 bob GET /x 404 20", False),
        ('[host, request = "*tickets*", code]', 'h "GET /tickets" 200', True),
    ],
)
def test_filter_patterns(pattern: str, message: str, expected: bool) -> None:
    assert compile_pattern(pattern)(message) is expected


@pytest.mark.parametrize("pattern", ["{ $.a = ", '{ $.a = "x"', "[a, a]", "[, b]", "{ $.a IS MAYBE }", "{ nope = 1 }"])
def test_malformed_filter_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(FilterPatternError):
        compile_pattern(pattern)


def test_space_delimited_fields_keep_quotes_and_brackets_together() -> None:
    assert split_fields('1.2.3.4 - [02/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200') == [
        "1.2.3.4",
        "-",
        "[02/Dec/2026:10:00:00 +0000]",
        "GET / HTTP/1.1",
        "200",
    ]


T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def series(label: str, *values: float | None) -> metricmath.Series:
    return metricmath.Series(
        label, {T0 + timedelta(minutes=i): v for i, v in enumerate(values) if v is not None}, period_s=60
    )


def math(expression: str, **known: metricmath.Series) -> list[list[float]]:
    return [[v for _, v in s.ordered()] for s in metricmath.evaluate(expression, known, "e", metrics=set(known))]


def test_metric_math_arithmetic_functions_and_arrays() -> None:
    a, b = series("a", 1, 2, 3), series("b", 10, None, 30)
    assert math("a*2 + 1", a=a) == [[3, 5, 7]]
    assert math("a + b", a=a, b=b) == [[11, 33]]  # only where both have a value
    assert math("SUM(METRICS())", a=a, b=b) == [[11, 2, 33]]
    assert math("SUM(a)", a=a) == [[6, 6, 6]]  # a number, shown at every timestamp
    assert math("METRICS('a')", a=a, b=b) == [[1, 2, 3]]
    assert math("FILL(b, 0)", a=a, b=b) == [[10, 0, 30]]
    assert math("FILL(b, REPEAT)", a=a, b=b) == [[10, 10, 30]]
    assert math("FILL(b, LINEAR)", a=a, b=b) == [[10, 20, 30]]
    assert math("RATE(a)", a=a) == [[1 / 60, 1 / 60]]
    assert math("DIFF(a)", a=a) == [[1, 1]] and math("RUNNING_SUM(a)", a=a) == [[1, 3, 6]]
    assert math("IF(a > 1, a, 0)", a=a) == [[0, 2, 3]]
    assert math("a >= 2 AND a < 3", a=a) == [[0, 1, 0]]
    assert math("MAX([a, b])", a=a, b=b) == [[10, 2, 30]]
    assert math("SORT(METRICS(), SUM, DESC, 1)", a=a, b=b) == [[10, 30]]
    assert math("PERIOD(a) + DATAPOINT_COUNT(a)", a=a) == [[63, 63, 63]]
    assert math("2 ^ 3 - -1", a=a) == [[9, 9, 9]]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("SEARCH('{AWS/Lambda}', 'Sum', 60)", "SEARCH"),
        ("NOSUCH(a)", "NOSUCH"),
        ("a +", "more"),
        ("zz * 2", "zz"),
        ("SELECT AVG(x) FROM y", "SELECT"),
    ],
)
def test_metric_math_errors_name_the_problem(expression: str, message: str) -> None:
    with pytest.raises(metricmath.MetricMathError, match=message):
        metricmath.evaluate(expression, {"a": series("a", 1)}, "e")


def spec(**overrides: object) -> alarms.AlarmSpec:
    base: dict[str, object] = {
        "name": "x",
        "comparison": "GreaterThanThreshold",
        "threshold": 5.0,
        "evaluation_periods": 3,
        "period_s": 60,
    }
    return alarms.AlarmSpec(**{**base, **overrides})  # type: ignore[arg-type]


NOW = T0 + timedelta(minutes=2, seconds=30)  # periods 12:00, 12:01, 12:02


def values(*points: float | None) -> dict[datetime, float]:
    return {T0 + timedelta(minutes=i): v for i, v in enumerate(points) if v is not None}


@pytest.mark.parametrize(
    ("overrides", "points", "current", "state"),
    [
        ({}, (6, 7, 8), "OK", "ALARM"),
        ({}, (6, 7, 1), "ALARM", "OK"),
        ({"datapoints_to_alarm": 2}, (6, 1, 8), "OK", "ALARM"),
        ({"datapoints_to_alarm": 2}, (6, 1, 1), "ALARM", "OK"),
        ({}, (None, None, None), "OK", "INSUFFICIENT_DATA"),  # missing (the default)
        ({"treat_missing": "notBreaching"}, (None, None, None), "ALARM", "OK"),
        ({"treat_missing": "breaching"}, (None, None, None), "OK", "ALARM"),
        ({"treat_missing": "breaching"}, (6, None, 8), "OK", "ALARM"),
        ({"treat_missing": "ignore"}, (None, None, None), "ALARM", None),  # no change
        ({"treat_missing": "missing"}, (None, 1, None), "ALARM", "OK"),
        ({"comparison": "LessThanOrEqualToThreshold"}, (5, 4, 3), "OK", "ALARM"),
        ({"comparison": "LessThanLowerOrGreaterThanUpperThreshold"}, (6, 7, 8), "OK", "INSUFFICIENT_DATA"),
    ],
)
def test_alarm_evaluation(
    overrides: dict[str, object], points: tuple[float | None, ...], current: str, state: str | None
) -> None:
    outcome = alarms.evaluate(spec(**overrides), values(*points), NOW, current)
    assert (outcome.state if outcome else None) == state
    if outcome is not None and outcome.state != "INSUFFICIENT_DATA":
        assert json.loads(outcome.reason_data)["period"] == 60


def test_alarm_periods_are_on_the_clock() -> None:
    assert alarms.window(spec(period_s=10, evaluation_periods=2), T0 + timedelta(seconds=27)) == [
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=20),
    ]


def test_cloudwatch_rounds_the_start_time_and_computes_trimmed_statistics() -> None:
    assert cwstats.round_start(T0 + timedelta(seconds=34), 300, now=T0) == T0
    assert cwstats.round_start(T0 + timedelta(seconds=23), 10, now=T0) == T0 + timedelta(seconds=20)
    raw = [float(v) for v in range(1, 101)]
    assert cwstats.statistic("p90", raw, []) == 90 and cwstats.statistic("tm90", raw, []) == 45.5
    assert cwstats.statistic("IQM", raw, []) == 50.5 and cwstats.statistic("tc90", raw, []) == 90
    with pytest.raises(cwstats.StatisticError):
        cwstats.statistic("median", raw, [])


def test_the_point_index_answers_a_metric_s_range_from_a_growing_list() -> None:
    def at(seconds: float, name: str = "Duration", value: float = 1.0) -> cwstats.Point:
        return cwstats.Point("AWS/Lambda", name, (("FunctionName", "f"),), T0 + timedelta(seconds=seconds), (value,))

    index = PointIndex(lambda point: point)
    source = [at(0), at(10, "Invocations"), at(20), at(5)]  # the last written late: filed in its place
    index.sync(source)
    key = ("AWS/Lambda", "Duration", (("FunctionName", "f"),))
    assert [p.timestamp for p in index.points(key, T0, T0 + timedelta(seconds=30))] == [
        T0,
        T0 + timedelta(seconds=5),
        T0 + timedelta(seconds=20),
    ]
    assert index.points(key, T0 + timedelta(seconds=5), T0 + timedelta(seconds=20)) == [at(5)]  # [start, end)
    source.append(at(25, value=7.0))  # appended: filed at the next sync, the rest not converted again
    index.sync(source)
    assert index.points(key, T0 + timedelta(seconds=21), T0 + timedelta(seconds=60)) == [at(25, value=7.0)]
    index.sync([at(30)])  # the list replaced (retention trimmed it): indexed anew
    assert index.points(key, T0, T0 + timedelta(seconds=60)) == [at(30)] and index.metrics() == 1


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=600_000_000), min_size=1, max_size=80),
    period=st.sampled_from([1, 10, 60]),
    stat=st.sampled_from(["Sum", "Average", "Maximum", "Minimum", "SampleCount", "p95", "p50", "tm90"]),
    window=st.tuples(st.integers(min_value=0, max_value=600), st.integers(min_value=1, max_value=700)),
)
def test_the_index_s_series_are_the_plain_ones(
    offsets: list[int], period: int, stat: str, window: tuple[int, int]
) -> None:
    points = [
        cwstats.Point("N", "M", (), T0 + timedelta(microseconds=us), (float(k % 7),)) for k, us in enumerate(offsets)
    ]
    index = PointIndex(lambda point: point)
    index.sync(points)  # in the order written, not sorted
    start = T0 + timedelta(seconds=window[0])
    end = start + timedelta(seconds=window[1])
    assert index.series(("N", "M", ()), stat, start, end, period) == cwstats.series(points, stat, start, end, period)
    aggregate = cwstats.Point("N", "M", (), T0, cwstats.Aggregate(2, 3.0, 1.0, 2.0))
    index.sync([*points, aggregate])  # a statistic set: the plain computation
    everything = [*points, aggregate]
    assert index.series(("N", "M", ()), stat, start, end, period) == cwstats.series(
        everything, stat, start, end, period
    )


def test_state_machine_properties_become_the_api_request() -> None:
    request = cfn_props.state_machine_request(
        {
            "StateMachineName": "m",
            "RoleArn": "arn:role",
            "Definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "${N}", "End": True}}},
            "DefinitionSubstitutions": {"N": 3},
            "LoggingConfiguration": {
                "Level": "ALL",
                "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": "arn:lg"}}],
            },
            "Tags": [{"Key": "k", "Value": "v"}],
        },
        "default",
        lambda bucket, key, version: b"",
    )
    assert json.loads(request["definition"])["States"]["A"]["Result"] == "3"
    assert request["loggingConfiguration"] == {
        "level": "ALL",
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": "arn:lg"}}],
        "includeExecutionData": False,
    }
    assert request["tags"] == [{"key": "k", "value": "v"}] and request["sm_type"] == "STANDARD"
    stored = {"b/k": b'{"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}', "b/bad": b'{"StartAt": "Gone"}'}
    s3 = cfn_props.state_machine_request(
        {"DefinitionS3Location": {"Bucket": "b", "Key": "k"}}, "n", lambda b, k, v: stored[f"{b}/{k}"]
    )
    assert s3["definition"] == stored["b/k"].decode() and s3["name"] == "n"
    with pytest.raises(cfn_props.TemplateError, match="Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED"):
        cfn_props.state_machine_request(  # the definition is checked as CreateStateMachine checks it
            {"DefinitionS3Location": {"Bucket": "b", "Key": "bad"}}, "n", lambda b, k, v: stored[f"{b}/{k}"]
        )
    with pytest.raises(cfn_props.TemplateError):
        cfn_props.state_machine_request({"Definition": {}, "DefinitionString": "{}"}, "n", lambda b, k, v: b"")
    assert cfn_props.substitute_definition("${A} ${B} $.x", {"A": True}) == "true ${B} $.x"


def test_alarm_and_lambda_properties() -> None:
    request = cfn_props.alarm_request(
        {
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "ExtendedStatistic": "p95",
            "Period": 60,
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2,
            "Threshold": 1000,
            "ComparisonOperator": "GreaterThanThreshold",
            "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
        },
        "generated",
    )
    assert request["name"] == "generated" and request["extended_statistic"] == "p95"
    assert request["threshold"] == 1000.0 and request["datapoints_to_alarm"] == 2
    with pytest.raises(cfn_props.TemplateError):
        cfn_props.alarm_request({"ComparisonOperator": "x", "EvaluationPeriods": 1, "MetricName": "m"}, "n")
    env = cfn_props.lambda_properties({"Environment": {"Variables": {"N": 20, "F": 0.5, "B": False}}})
    assert env["Environment"]["Variables"] == {"N": "20", "F": "0.5", "B": "false"}
    assert cfn_props.unrecognized_types(["AWS::S3::Bucket", "AWS::No::Such", "Custom::Mine"], {"AWS::S3::Bucket"}) == [
        "AWS::No::Such"
    ]


def event(message: str, ms: int = 1_000) -> insights.Event:
    return insights.Event(ms, message, "s", "g", pointer=f"p{ms}")


def test_insights_functions_glob_parse_statistics_and_pointers() -> None:
    events = [event('{"step": "embed", "n": 3}', 1_000), event("user=ada, action=login done", 2_000)]
    result = insights.execute("fields @message | sort @timestamp asc", events, 0, 10_000)
    assert [r["@ptr"] for r in result.rows] == ["p1000", "p2000"]
    assert result.statistics()["recordsScanned"] == 2 and result.statistics()["bytesScanned"] > 0
    parsed = insights.run(
        'parse @message "user=*, action=*" as user, action | filter ispresent(user) | display user, action',
        events,
        0,
        10_000,
    )
    assert parsed[0]["user"] == "ada" and parsed[0]["action"] == "login done"
    row = insights.run(
        "filter step = 'embed' | fields n ^ 2 as sq, coalesce(nope, 'x') as c, substr('abcdef', 2, 2) as s, "
        "ltrim('..a', '.') as l, isIpv4InSubnet('10.1.2.3', '10.0.0.0/8') as inside, fromMillis(0) as zero, "
        "toMillis('1970-01-01 00:00:01.000') as one, dateceil(@timestamp, 1m) as up",
        events,
        0,
        10_000,
    )[0]
    assert row["sq"] == "9" and row["c"] == "x" and row["s"] == "cd" and row["l"] == "a" and row["inside"] == "true"
    assert row["zero"] == "1970-01-01 00:00:00.000" and row["one"] == "1000" and row["up"].endswith("00:01:00.000")
    counted = insights.execute(
        "filter step = 'embed' | stats count(*) as n, sortsFirst(step) as first", events, 0, 10_000
    )
    assert counted.rows == [{"n": "1", "first": "embed"}] and counted.records_matched == 1


@pytest.mark.parametrize(
    "text", ["pattern @message", "fields nosuch(@message)", "stats avg(x) by", "fields @message | limit 0", "explode x"]
)
def test_insights_refuses_what_it_does_not_know(text: str) -> None:
    with pytest.raises(insights.QueryError):
        insights.execute(text, [event("x")], 0, 10_000)


@pytest.mark.parametrize(
    ("body", "problem"), [(b"", None), (b"{}", None), (b"{x", "not valid JSON"), (b"[]", "object")]
)
def test_protocol_checks_the_json_body(body: bytes, problem: str | None) -> None:
    found = protocol.malformed(body)
    assert (found is None) if problem is None else (problem in str(found))


def test_elastic_threads_reuse_a_parked_thread_and_never_queue_behind_a_busy_one() -> None:
    threads = ElasticThreads("t", idle_s=30)
    seen: list[str] = []
    release, blocked, done = threading.Event(), threading.Event(), threading.Event()

    def block() -> None:
        seen.append(threading.current_thread().name)
        blocked.set()
        release.wait(10)

    threads.submit(block)
    assert blocked.wait(10)
    threads.submit(lambda: (seen.append(threading.current_thread().name), done.set()))
    assert done.wait(10)  # ran beside the blocked job, on a thread of its own
    assert seen[0] != seen[1]
    wait_until(lambda: threads.running == 1)  # the blocked job is in flight: the emulator is not quiet
    release.set()
    wait_until(lambda: threads.parked == 2 and threads.running == 0)
    again = threading.Event()
    threads.submit(lambda: (seen.append(threading.current_thread().name), again.set()))
    assert again.wait(10) and seen[2] in seen[:2]  # a parked thread took it: no third thread


def test_elastic_threads_reset_each_thread_before_a_job_and_end_idle_ones() -> None:
    resets: list[int] = []
    threads = ElasticThreads("idle-ends", idle_s=0.05, on_job=lambda: resets.append(1))
    ran = threading.Event()
    threads.submit(ran.set)
    assert ran.wait(10)
    wait_until(lambda: threads.parked == 0 and len(resets) == 1)  # parked, then ended after idle_s
    names = {t.name for t in threading.enumerate()}
    assert not any(name.startswith("idle-ends-") for name in names)


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)
