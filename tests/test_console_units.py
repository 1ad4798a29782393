"""The console's parts without a browser: history folding, incremental reads, ASL graphs, dashboard
bodies, Markdown trees and the request checks."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scaleorfail.console import asl, dashboards, markdown
from scaleorfail.console.app import create_app
from scaleorfail.console.aws import Api
from scaleorfail.console.context import Console
from scaleorfail.console.executions import FIRST_PAGE, PAGE, Executions
from scaleorfail.console.model import ExecutionModel
from scaleorfail.target import Target

T0 = datetime(2026, 12, 1, tzinfo=UTC)
DEFINITION = {
    "StartAt": "Check",
    "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": False, "Next": "Fill"}],
                  "Default": "Fan"},
        "Fill": {"Type": "Pass", "Next": "Fan"},
        "Fan": {
            "Type": "Map",
            "ItemProcessor": {
                "StartAt": "Work",
                "States": {
                    "Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                             "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:1:function:work"},
                             "Catch": [{"ErrorEquals": ["Bad"], "Next": "Aside"}], "Next": "Done"},
                    "Aside": {"Type": "Pass", "End": True},
                    "Done": {"Type": "Succeed"},
                },
            },
            "End": True,
        },
    },
}  # fmt: skip


class History:
    """A history written event by event, as Step Functions numbers it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, previous: int | None = None, **details: Any) -> int:
        event: dict[str, Any] = {
            "id": len(self.events) + 1,
            "type": kind,
            "timestamp": T0 + timedelta(seconds=len(self.events)),
        }
        if previous is not None:
            event["previousEventId"] = previous
        if details:
            key = kind[0].lower() + kind[1:] + "EventDetails"
            event[key] = details
        self.events.append(event)
        return int(event["id"])


def two_item_run(fail_second: bool = True) -> History:
    h = History()
    h.add("ExecutionStarted", input='{"items": [1, 2]}')
    h.add("ChoiceStateEntered", 1, name="Check")
    h.add("ChoiceStateExited", 2, name="Check")
    m = h.add("MapStateEntered", 3, name="Fan")
    started = h.add("MapStateStarted", m, length=2)
    for index in (0, 1):
        it = h.add("MapIterationStarted", started, name="Fan", index=index)
        entered = h.add("TaskStateEntered", it, name="Work")
        s1 = h.add("TaskScheduled", entered)
        h.add("TaskStarted", s1)
        if index == 1 and fail_second:
            f = h.add("TaskFailed", s1, error="Lambda.TooManyRequestsException", cause="429")
            s2 = h.add("TaskScheduled", f)
            h.add("TaskStarted", s2)
            last = h.add("TaskFailed", s2, error="Bad", cause=json.dumps({"errorType": "Bad", "errorMessage": "no"}))
            exit_ = h.add("TaskStateExited", last, name="Work")
            aside = h.add("PassStateEntered", exit_, name="Aside")
            done = h.add("PassStateExited", aside, name="Aside")
        else:
            ok = h.add("TaskSucceeded", s1, output="{}")
            exit_ = h.add("TaskStateExited", ok, name="Work")
            d = h.add("SucceedStateEntered", exit_, name="Done")
            done = h.add("SucceedStateExited", d, name="Done")
        h.add("MapIterationSucceeded", done, name="Fan", index=index)
    ms = h.add("MapStateSucceeded", len(h.events))
    h.add("MapStateExited", ms, name="Fan")
    h.add("ExecutionSucceeded", len(h.events), output='{"ok": true}')
    return h


def test_a_history_folds_into_state_statuses_map_counts_and_visits() -> None:
    model = ExecutionModel(DEFINITION)
    model.add(two_item_run().events)
    assert model.status == "SUCCEEDED"
    assert model.maps["Fan"].counts() == {
        "length": 2, "pending": 0, "running": 0, "succeeded": 2, "failed": 0, "aborted": 0,
    }  # fmt: skip
    statuses = model.state_statuses()
    assert statuses["Work"] == {"succeeded": 1, "caught": 1}
    assert statuses["Aside"] == {"succeeded": 1} and statuses["Check"] == {"succeeded": 1}
    caught = next(v for v in model.visits if v.state == "Work" and v.iteration == 1)
    assert caught.retries == 1 and caught.attempts[-1].error == "Bad"
    assert model.state_statuses(("Fan", 0))["Work"] == {"succeeded": 1}
    assert model.failed_state() is None


def test_folding_in_pieces_gives_what_folding_at_once_gives() -> None:
    events = two_item_run().events
    whole, pieces = ExecutionModel(DEFINITION), ExecutionModel(DEFINITION)
    whole.add(events)
    for start in range(0, len(events), 3):
        pieces.add(events[start : start + 3])
    pieces.add(events[:5])  # a repeat changes nothing
    assert pieces.state_statuses() == whole.state_statuses()
    assert [v.to_json(pieces.states) for v in pieces.visits] == [v.to_json(whole.states) for v in whole.visits]
    assert pieces.maps["Fan"].counts() == whole.maps["Fan"].counts()


def test_a_running_map_counts_pending_running_and_a_failure_marks_its_state() -> None:
    h = History()
    h.add("ExecutionStarted", input="{}")
    m = h.add("MapStateEntered", 1, name="Fan")
    started = h.add("MapStateStarted", m, length=5)
    it = h.add("MapIterationStarted", started, name="Fan", index=0)
    h.add("TaskStateEntered", it, name="Work")
    model = ExecutionModel(DEFINITION)
    model.add(h.events)
    assert model.maps["Fan"].counts()["pending"] == 4 and model.maps["Fan"].counts()["running"] == 1
    assert model.state_statuses()["Work"] == {"running": 1}
    s = h.add("TaskScheduled", 5)
    failed = h.add("TaskFailed", s, error="PayloadTooLarge", cause="{}")
    end = h.add("MapIterationFailed", failed, name="Fan", index=0)
    h.add("ExecutionFailed", end, error="PayloadTooLarge", cause="{}")
    model.add(h.events)
    assert model.failed_state() == "Work" and model.state_statuses()["Work"] == {"failed": 1}
    assert model.maps["Fan"].counts()["failed"] == 1 and model.status == "FAILED"


class FakeApi:
    """GetExecutionHistory over a growing history; counts the events it hands out."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.visible = 0
        self.calls: list[dict[str, Any]] = []
        self.served = 0

    def call(self, service: str, api: str, **kwargs: Any) -> Any:
        if api == "DescribeExecution":
            ended = any(e["type"] == "ExecutionSucceeded" for e in self.history.events[: self.visible])
            return {"stateMachineArn": "sm", "status": "SUCCEEDED" if ended else "RUNNING", "name": "x"}
        if api == "DescribeStateMachine":
            return {"definition": json.dumps(DEFINITION)}
        assert api == "GetExecutionHistory"
        self.calls.append(kwargs)
        events = self.history.events[: self.visible]
        if kwargs.get("reverseOrder"):
            events = events[::-1]
        start = int(kwargs.get("nextToken") or 0)
        page = events[start : start + kwargs["maxResults"]]
        self.served += len(page)
        more = start + kwargs["maxResults"] < len(events)
        return {"events": page, **({"nextToken": str(start + kwargs["maxResults"])} if more else {})}

    try_call = call


def test_a_live_execution_is_read_incrementally_one_call_per_tick() -> None:
    history = two_item_run()
    api = FakeApi(history)
    executions = Executions(api)  # type: ignore[arg-type]
    api.visible = 6
    tracked = executions.get("arn:x")
    assert api.served == 6 and not api.calls[0].get("reverseOrder")
    for visible in [*range(8, len(history.events), 2), len(history.events)]:
        api.calls.clear()
        api.served = 0
        api.visible = visible
        executions.get("arn:x")
        assert len(api.calls) == 1 and api.calls[0]["reverseOrder"] is True
        assert tracked.model.last_id == visible
    assert tracked.done
    api.calls.clear()
    executions.get("arn:x")
    assert api.calls == []  # an ended execution is not read again


def test_the_graph_nests_the_map_and_labels_choices_and_catches() -> None:
    graph = asl.build(DEFINITION).to_json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["Fan"]["container"] and nodes["Work"]["parent"] == "Fan" and nodes["Work"]["function"] == "work"
    edges = {(e["from"], e["to"], e["label"]) for e in graph["edges"]}
    assert (asl.START, "Check", "") in edges
    assert ("Check", "Fill", "$.x IsPresent False") in edges and ("Check", "Work", "Default") in edges
    assert ("Fill", "Work", "") in edges  # into the Map: its first inner state
    assert ("Work", "Aside", "Catch Bad") in edges
    assert ("Done", asl.END, "") in edges and ("Aside", asl.END, "") in edges  # the Map's end leaves it
    assert not [e for e in graph["edges"] if "Fan" in (e["from"], e["to"])]  # no edge at a layout cluster


def test_compact_metric_arrays_expand_as_cloudwatch_reads_them() -> None:
    series = dashboards.expand(
        [
            ["AWS/Lambda", "Invocations", "FunctionName", "a", {"label": "A"}],
            ["...", "b"],
            [".", "Errors", ".", "c", {"stat": "p95", "yAxis": "right", "visible": False}],
            [{"expression": "m1 + m2", "id": "e1", "label": "sum"}],
        ]
    )
    assert [(s.get("metric"), s.get("dimensions")) for s in series[:3]] == [
        ("Invocations", [{"Name": "FunctionName", "Value": "a"}]),
        ("Invocations", [{"Name": "FunctionName", "Value": "b"}]),
        ("Errors", [{"Name": "FunctionName", "Value": "c"}]),
    ]
    assert series[2]["stat"] == "p95" and series[2]["yAxis"] == "right" and not series[2]["visible"]
    assert series[3]["expression"] == "m1 + m2" and series[3]["id"] == "e1"
    spec = dashboards.widget(0, {"type": "metric", "properties": {"metrics": [["N", "M"]], "period": 60}})
    (query,) = dashboards.queries(spec, 7 * 86400)
    assert query["MetricStat"]["Period"] >= 7 * 86400 / dashboards.MAX_POINTS
    assert dashboards.duration_s("-PT3H") == 10800 and dashboards.duration_s("-P1D") == 86400


def test_markdown_becomes_a_tree_with_raw_html_left_as_text() -> None:
    tree = markdown.tree("# Title\n\n<script>alert(1)</script> [x](javascript:alert(1)) [ok](https://a.b) **b**")
    assert tree[0] == ["h1", {}, ["Title"]]
    flat = json.dumps(tree)
    assert "<script>alert(1)</script>" in flat  # text, to be set with textContent
    assert '"href": "javascript' not in flat and '"href": "https://a.b"' in flat and '["strong", {}, ["b"]]' in flat


@pytest.fixture
def client() -> Any:
    console = Console(Api(Target("local", "us-east-1", "http://127.0.0.1:1"), read_only=False), 4571)
    return create_app(console).test_client()


def test_requests_from_other_hosts_and_sites_are_refused(client: Any) -> None:
    home = {"Host": "127.0.0.1:4571"}
    page = client.get("/", headers=home)
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "require-trusted-types-for 'script'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert client.get("/", headers={"Host": "evil.example:4571"}).status_code == 421
    assert client.get("/", headers={"Host": "127.0.0.1:9999"}).status_code == 421
    assert client.get("/api/console", headers=home | {"Origin": "http://evil.example"}).status_code == 403
    assert client.get("/api/console", headers=home | {"Sec-Fetch-Site": "cross-site"}).status_code == 403
    navigation = home | {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    assert client.get("/runs", headers=navigation).status_code == 200  # following a link is fine
    assert client.options("/api/console", headers=home).status_code == 403
    token = page.get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    stop = "/api/execution/stop?arn=arn:aws:states:us-east-1:1:execution:a:b"
    origin = {"Origin": "http://127.0.0.1:4571"}
    assert client.post(stop, headers=home | origin).status_code == 403  # no token
    assert client.post(stop, headers=home | {"X-CSRF-Token": token}).status_code == 403  # no Origin
    assert client.post(stop, headers=home | origin | {"X-CSRF-Token": token + "x"}).status_code == 403


def test_a_long_history_opens_with_its_first_page_and_reads_the_rest_in_the_background() -> None:
    history = History()
    history.add("ExecutionStarted", input="{}")
    for _ in range(2_499):
        history.add("PassStateEntered", len(history.events), name="Check")
    api = FakeApi(history)
    api.visible = len(history.events)
    tracked = Executions(api).get("arn:long")  # type: ignore[arg-type]
    assert api.calls[0]["maxResults"] == FIRST_PAGE  # the page opens with one small page
    deadline = time.monotonic() + 10
    while tracked.loading and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not tracked.loading and tracked.model.last_id == 2_500
    assert [c["maxResults"] for c in api.calls] == [FIRST_PAGE, PAGE, PAGE, PAGE]


def test_the_cli_names_a_console_page_only_while_a_console_for_that_target_runs(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scaleorfail import consolelink

    monkeypatch.setenv("SOF_STATE_DIR", str(tmp_path))
    arn = "arn:aws:states:us-east-1:123456789012:execution:pipeline:run-1"
    assert consolelink.line(consolelink.execution_path(arn), "local") is None
    consolelink.write_state("http://127.0.0.1:4570", "local", read_only=False)
    assert (
        consolelink.line(consolelink.execution_path(arn), "local")
        == f"console: http://127.0.0.1:4570/states/executions/{arn}"
    )
    assert consolelink.line(consolelink.run_path("burst-c2"), "aws") is None  # a console for another target
    consolelink.write_state("http://127.0.0.1:4570", "local", read_only=False, pid=2**22 + 12345)  # not running
    assert consolelink.line(consolelink.run_path("burst-c2")) is None
    consolelink.clear_state(2**22 + 12345)
    assert consolelink.read_state() is None
