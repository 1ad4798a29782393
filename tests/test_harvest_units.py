"""History parsing, run statistics, cost and the scaling model on synthetic data with known answers."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scaleorfail import history
from scaleorfail.evidence import analysis, compare
from scaleorfail.evidence.scaling import USL, fit
from scaleorfail.harvest.convert import execution as execution_record
from scaleorfail.record import codec, model

T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


class HistoryBuilder:
    """Writes a Step Functions history the way the service chains it (previousEventId)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, at_ms: float, parent: int | None, **details: Any) -> int:
        event: dict[str, Any] = {
            "id": len(self.events) + 1,
            "type": kind,
            "timestamp": T0 + timedelta(milliseconds=at_ms),
            "previousEventId": parent or 0,
        }
        event.update(details)
        self.events.append(event)
        return int(event["id"])

    def task(
        self, parent: int, step: str, entered: float, attempts: list[tuple[float, float, float, str | None]]
    ) -> int:
        last = self.add("TaskStateEntered", entered, parent, stateEnteredEventDetails={"name": step})
        for scheduled, started, ended, error in attempts:
            last = self.add("TaskScheduled", scheduled, last)
            last = self.add("TaskStarted", started, last)
            if error:
                last = self.add("TaskFailed", ended, last, taskFailedEventDetails={"error": error, "cause": "x"})
            else:
                last = self.add("TaskSucceeded", ended, last)
        exit_at = attempts[-1][2]
        return self.add("TaskStateExited", exit_at, last, stateExitedEventDetails={"name": step})


def two_item_history() -> list[dict[str, Any]]:
    """Map concurrency 1, two tickets; item 1 waits for item 0 and has one throttled Embed attempt."""
    h = HistoryBuilder()
    start = h.add("ExecutionStarted", 0, None)
    mapped = h.add("MapStateEntered", 5, start, stateEnteredEventDetails={"name": "ProcessTickets"})
    map_started = h.add("MapStateStarted", 10, mapped, mapStateStartedEventDetails={"length": 2})
    it0 = h.add("MapIterationStarted", 10, map_started, mapIterationStartedEventDetails={"index": 0})
    last = h.task(it0, "Preprocess", 11, [(11, 12, 20, None)])
    last = h.task(last, "Embed", 20, [(21, 22, 272, None)])
    last = h.task(last, "Postprocess", 272, [(272, 273, 280, None)])
    h.add("MapIterationSucceeded", 281, last, mapIterationSucceededEventDetails={"index": 0})
    it1 = h.add("MapIterationStarted", 282, map_started, mapIterationStartedEventDetails={"index": 1})
    last = h.task(it1, "Preprocess", 283, [(283, 284, 290, None)])
    last = h.task(
        last,
        "Embed",
        290,
        [(291, 292, 295, "Lambda.TooManyRequestsException"), (1295, 1296, 1546, None)],
    )
    last = h.task(last, "Postprocess", 1546, [(1546, 1547, 1550, None)])
    done = h.add("MapIterationSucceeded", 1551, last, mapIterationSucceededEventDetails={"index": 1})
    h.add("ExecutionSucceeded", 1560, done)
    random.Random(3).shuffle(h.events)  # the parser must not depend on the order it is given
    return h.events


def test_history_is_attributed_to_items_and_steps_exactly() -> None:
    timeline = history.parse(two_item_history())
    assert timeline.status == "SUCCEEDED" and timeline.stop - timeline.start == 1560
    assert timeline.map_started - timeline.start == 10 and timeline.map_length == 2
    first, second = timeline.items
    assert (first.started - timeline.start, first.duration_ms, first.status) == (10, 271, "SUCCEEDED")
    assert [v.step for v in second.visits] == ["Preprocess", "Embed", "Postprocess"]
    embed = second.visits[1]
    assert embed.retries == 1 and embed.duration_ms == 1256
    assert [a.duration_ms for a in embed.attempts] == [3, 250]
    assert [a.schedule_delay_ms for a in embed.attempts] == [1, 1]
    assert embed.attempts[0].error == "Lambda.TooManyRequestsException"
    assert timeline.state_transitions == 7  # Map + 3 tasks x 2 items


def record_for(events: list[dict[str, Any]], batch: int = 2, memory: int = 256, **fields: Any) -> model.HarvestRecord:
    """A harvest record of one execution with this history (the typed record the harvest writes)."""
    timeline = history.parse(events)
    status = {
        "arn": "arn:x",
        "status": timeline.status,
        "start": T0,
        "stop": T0 + timedelta(milliseconds=(timeline.stop or timeline.start) - timeline.start),
    }
    execution = execution_record("r-0-0", status, timeline, 1, batch)
    base: dict[str, Any] = {
        "run_id": "r",
        "label": "c1",
        "target": "local",
        "profile": "single-batch",
        "parameters": {"max_concurrency": 1},
        "region": "us-east-1",
        "window": model.Window(T0, status["stop"]),
        "functions": {
            s: model.Function(s, memory if s == "embed" else 128) for s in ("preprocess", "embed", "postprocess")
        },
        "executions": (execution,),
        "reconciliation": model.Reconciliation(1, {timeline.status: 1}, (), 0, True),
        "metrics": model.Metrics(
            60, T0.replace(second=0), T0.replace(second=0) + timedelta(minutes=1), False, None, {}
        ),
    }
    return model.HarvestRecord(**{**base, **fields})


def test_run_statistics_from_a_known_history() -> None:
    run = analysis.stats(record_for(two_item_history()))
    assert (run.executions_ok, run.tickets, run.tickets_ok) == (1, 2, 2)
    assert run.wall_s == 1.56 and run.throughput == round(2 / 1.56, 3)
    assert run.queue_wait_ms == {"p50": 0.0, "p95": 272.0, "max": 272.0}
    assert run.step_ms["Embed"] == {"p50": 252.0, "p95": 1256.0}
    assert run.task_ms["Embed"] == {"p50": 250.0, "p95": 250.0}  # successful attempts only
    assert (run.retries, run.throttles, run.retry_errors) == (1, 1, {"Lambda.TooManyRequestsException": 1})
    assert run.peak_in_flight == 1 and run.peak_concurrency == 1
    assert run.execution_ms == {"p50": 1560.0, "p95": 1560.0, "p99": 1560.0}
    assert run.item_ms_mean == (271 + 1269) / 2
    assert run.little_ratio == pytest.approx(run.throughput * (1540 / 2) / 1000.0, rel=1e-3)


def test_cost_arithmetic() -> None:
    prices = {
        "as_of": "test",
        "lambda": {"usd_per_gb_second": 0.0001, "usd_per_million_requests": 1.0},
        "step_functions_standard": {"usd_per_thousand_state_transitions": 1.0},
    }
    cost = analysis.cost(record_for(two_item_history(), memory=1024), prices)
    assert cost is not None
    # billed attempts: pre 8 + 6 ms (128 MB), embed 250 + 250 ms (1024 MB), post 7 + 3 ms (128 MB); 429 not billed
    gb_s = (8 + 6 + 7 + 3) / 1000 * 0.125 + (250 + 250) / 1000 * 1.0
    assert cost.lambda_gb_s == round(gb_s, 4) and cost.lambda_requests == 6
    assert cost.state_transitions == 7 + 1  # the retry is a transition too
    assert cost.usd == pytest.approx(gb_s * 0.0001 + 6 / 1e6 + 8 / 1000, rel=1e-6)
    assert cost.usd_per_1000_tickets == pytest.approx(cost.usd / 2 * 1000, rel=1e-3)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert analysis.percentile(values, 50) == 50.0
    assert analysis.percentile(values, 95) == 95.0
    assert analysis.percentile(values, 99) == 99.0
    assert analysis.percentile([7.0], 95) == 7.0 and analysis.percentile([], 50) is None


def test_timeline_counts_queue_depth_and_throttles() -> None:
    series = analysis.timeline(record_for(two_item_history()), resolution_ms=10.0)
    at = {round(t * 1000): i for i, t in enumerate(series["t_s"])}
    assert series["queued"][at[100]] == 1 and series["in_flight"][at[100]] == 1
    assert series["queued"][at[300]] == 0 and series["in_flight"][at[300]] == 1
    assert series["tasks"][at[1000]] == 0  # in the retry's backoff: nothing running
    assert sum(series["throttles"]) == 1


def test_speedup_and_efficiency_against_the_lowest_concurrency() -> None:
    runs = []
    for c, throughput in ((2, 4.0), (10, 12.0), (5, 9.0)):
        run = analysis.stats(record_for(two_item_history()))
        run.label, run.run_id, run.max_concurrency, run.throughput = f"c{c}", f"r{c}", c, throughput
        runs.append(run)
    baseline = compare.with_baseline(runs)
    assert baseline is runs[0]
    assert [(r.speedup, r.efficiency) for r in runs] == [(1.0, 1.0), (3.0, 0.6), (2.25, 0.9)]
    assert "c10" in compare.table(runs)


# -- the scaling model -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lam", "sigma", "kappa"),
    [(4.0, 0.0, 0.0), (4.0, 0.05, 0.0), (4.0, 0.05, 0.002), (1.5, 0.2, 0.01)],
)
def test_the_usl_fit_recovers_known_parameters(lam: float, sigma: float, kappa: float) -> None:
    truth = USL(lam, sigma, kappa, 1.0)
    settings = [1, 2, 5, 10, 20, 40]
    model = fit([(n, truth.throughput(n)) for n in settings])
    assert model.lam == pytest.approx(lam, rel=1e-6)
    assert model.sigma == pytest.approx(sigma, abs=1e-6)
    assert model.kappa == pytest.approx(kappa, abs=1e-7)
    rng = random.Random(7)
    noisy = fit([(n, truth.throughput(n) * (1 + rng.uniform(-0.02, 0.02))) for n in settings])
    assert noisy.lam == pytest.approx(lam, rel=0.05) and noisy.r2 > 0.98


def _bend(model: USL, n: float, low: float, high: float) -> float:
    """How far the normalised curve is above its chord at n (what Kneedle maximises)."""
    x_low, x_high = model.throughput(low), model.throughput(high)
    return (model.throughput(n) - x_low) / (x_high - x_low) - (n - low) / (high - low)


def test_the_model_answers_where_returns_diminish() -> None:
    model = USL(4.0, 0.05, 0.002, 1.0)
    assert model.peak_concurrency == pytest.approx(21.79, abs=0.01)
    knee = model.knee(1, 40)
    assert knee is not None and knee < model.peak_concurrency  # the range ends at the peak
    peak = model.peak_concurrency
    assert all(_bend(model, knee, 1, peak) >= _bend(model, n, 1, peak) - 0.01 for n in range(1, 22))
    # AWS's published run (126 s at 2, 41 s at 10 for 500 tickets) bends past 10, not at the Map cap
    aws = fit([(2, 500 / 126), (10, 500 / 41)])
    aws_knee = aws.knee(1, 40)
    assert aws.sigma > 0.05 and aws_knee is not None and 10 < aws_knee < 20
    # linear scaling has no knee at all
    assert USL(2.0, 0.0, 0.0, 1.0).knee(1, 40) is None
    assert model.recommend(20.0, 40) == (7, pytest.approx(model.throughput(7)), True)
    best_n, best_x, reached = model.recommend(1000.0, 10)
    assert (best_n, reached) == (10, False) and best_x == pytest.approx(model.throughput(10))
    with pytest.raises(ValueError):
        fit([(2, 4.0)])


def aws_shaped_history(map_exit_parent: str) -> list[dict[str, Any]]:
    """Two tickets at concurrency 2, closed the way AWS closes an inline Map: MapStateSucceeded
    names the last MapIterationSucceeded as its previous event, and MapStateExited follows it."""
    h = HistoryBuilder()
    start = h.add("ExecutionStarted", 0, None)
    mapped = h.add("MapStateEntered", 5, start, stateEnteredEventDetails={"name": "ProcessTickets"})
    map_started = h.add("MapStateStarted", 6, mapped, mapStateStartedEventDetails={"length": 2})
    ends = []
    for index, begin in ((0, 10), (1, 12)):
        it = h.add("MapIterationStarted", begin, map_started, mapIterationStartedEventDetails={"index": index})
        last = h.task(it, "Preprocess", begin + 1, [(begin + 1, begin + 20, begin + 40, None)])
        last = h.task(last, "Embed", begin + 41, [(begin + 41, begin + 60, begin + 330, None)])
        last = h.task(last, "Postprocess", begin + 331, [(begin + 331, begin + 350, begin + 370 + index * 30, None)])
        ends.append(
            h.add(
                "MapIterationSucceeded",
                begin + 371 + index * 30,
                last,
                mapIterationSucceededEventDetails={"index": index},
            )
        )
    succeeded = h.add("MapStateSucceeded", 420, ends[-1])
    exited = h.add(
        "MapStateExited",
        425,
        succeeded if map_exit_parent == "aws" else ends[-1],  # moto 5.2.5 names the iteration's end for both
        stateExitedEventDetails={"name": "ProcessTickets"},
    )
    h.add("ExecutionSucceeded", 430, exited)
    return h.events


@pytest.mark.parametrize("shape", ["aws", "moto"])
def test_the_map_closes_at_top_level_not_on_the_last_ticket(shape: str) -> None:
    timeline = history.parse(aws_shaped_history(shape))
    last = timeline.items[-1]
    assert [v.step for v in last.visits] == ["Preprocess", "Embed", "Postprocess"]
    assert last.visits[-1].exited - timeline.start == 12 + 370 + 30  # its own TaskStateExited, not the Map's exit
    assert last.status == "SUCCEEDED" and last.ended - timeline.start == 12 + 371 + 30
    (map_visit,) = timeline.top
    assert (map_visit.step, map_visit.entered - timeline.start, map_visit.exited - timeline.start) == (
        "ProcessTickets",
        5,
        425,
    )


@pytest.mark.parametrize(
    ("error", "cause", "expected"),
    [
        (
            "Lambda.Unknown",
            "The cause could not be determined because Lambda did not return an error type. Returned payload: "
            '{"errorMessage":"2026-11-30T10:00:03.123Z 1f2e Task timed out after 3.00 seconds"}',
            "Lambda.Unknown (timed out)",
        ),
        (
            "Runtime.ExitError",
            '{"errorType":"Runtime.ExitError","errorMessage":"RequestId: 1f2e Error: Runtime exited with error: '
            'signal: killed"}',
            "Runtime.ExitError (out of memory)",
        ),
        (
            "Lambda.Unknown",
            "The cause could not be determined because Lambda did not return an error type. Returned payload: "
            '{"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: 1f2e Error: Runtime exited with error: '
            'signal: killed"}',
            "Lambda.Unknown (out of memory)",
        ),
        (
            "Runtime.ExitError",
            '{"errorMessage":"RequestId: 1f2e Error: Runtime exited with error: exit status 1"}',
            "Runtime.ExitError",
        ),
        (
            "Lambda.TooManyRequestsException",
            "Rate Exceeded. (Service: AWSLambda; Status Code: 429; ...)",
            "Lambda.TooManyRequestsException",
        ),
    ],
)
def test_vague_aws_errors_are_qualified_by_their_cause(error: str, cause: str, expected: str) -> None:
    h = HistoryBuilder()
    start = h.add("ExecutionStarted", 0, None)
    mapped = h.add("MapStateEntered", 1, start, stateEnteredEventDetails={"name": "ProcessTickets"})
    map_started = h.add("MapStateStarted", 2, mapped, mapStateStartedEventDetails={"length": 1})
    it = h.add("MapIterationStarted", 3, map_started, mapIterationStartedEventDetails={"index": 0})
    entered = h.add("TaskStateEntered", 4, it, stateEnteredEventDetails={"name": "Embed"})
    scheduled = h.add("TaskScheduled", 5, entered)
    began = h.add("TaskStarted", 6, scheduled)
    failed = h.add("TaskFailed", 3006, began, taskFailedEventDetails={"error": error, "cause": cause})
    h.add("ExecutionFailed", 3010, failed, executionFailedEventDetails={"error": error, "cause": cause})
    timeline = history.parse(h.events)
    assert timeline.items[0].visits[0].attempts[0].error == expected
    assert timeline.error == expected


# -- the typed record ---------------------------------------------------------------------------------------


def test_the_record_round_trips_through_json_and_has_no_positional_lists() -> None:
    record = record_for(two_item_history(), pending=("x",), final=False)
    text = codec.dumps(record)
    assert codec.loads(text) == record
    data = codec.to_jsonable(record)
    attempt = data["executions"][0]["items"][1]["visits"][1]["attempts"][0]
    assert attempt == {
        "scheduled": 291.0,
        "started": 292.0,
        "ended": 295.0,
        "error": "Lambda.TooManyRequestsException",
        "request_id": None,
    }
    assert (data["schema"], data["version"]) == ("scale-or-fail/harvest", 3)


def test_a_record_of_another_version_or_damaged_is_not_read() -> None:
    data = codec.to_jsonable(record_for(two_item_history()))
    assert codec.from_jsonable({**data, "version": 2}) is None  # old caches are harvested again
    assert codec.from_jsonable({**data, "executions": {"not": "a list"}}) is None
    broken = codec.to_jsonable(record_for(two_item_history()))
    broken["executions"][0]["items"][0]["visits"][0]["attempts"][0] = [11.0, 12.0, 20.0, None]  # the v2 shape
    assert codec.from_jsonable(broken) is None
    assert codec.loads('{"schema": ') is None


def test_attempts_carry_the_lambda_request_id_from_the_history() -> None:
    output = '{"Payload": {}, "SdkResponseMetadata": {"RequestId": "11111111-2222-3333-4444-555555555555"}}'
    assert history.succeeded_request_id(output) == "11111111-2222-3333-4444-555555555555"
    headers = '{"SdkHttpMetadata": {"HttpHeaders": {"x-amzn-RequestId": "abc-1"}}}'
    assert history.succeeded_request_id(headers) == "abc-1"
    assert history.succeeded_request_id('{"Payload": 1}') is None and history.succeeded_request_id(None) is None
    handler = '{"errorType": "PayloadTooLarge", "errorMessage": "too long", "requestId": "r-9"}'
    assert history.failed_request_id("PayloadTooLarge", handler) == "r-9"
    killed = '{"errorMessage":"RequestId: 1f2e3d4c-0000-1111-2222-333344445555 Error: Runtime exited with error"}'
    assert history.failed_request_id("Runtime.ExitError", killed) == "1f2e3d4c-0000-1111-2222-333344445555"
    throttled = "Rate Exceeded. (Service: AWSLambda; Status Code: 429; Request ID: 9f; Proxy: null)"
    assert history.failed_request_id("Lambda.TooManyRequestsException", throttled) is None  # it never ran


def test_log_lines_are_tied_to_their_invocations_and_kept_by_request_id() -> None:
    from scaleorfail.harvest import logs

    def lines(stream: str, request: str, at: int, handler: str) -> list[dict[str, Any]]:
        return [
            {"logStreamName": stream, "timestamp": at, "message": f"START RequestId: {request} Version: $LATEST"},
            {"logStreamName": stream, "timestamp": at + 1, "message": handler},
            {"logStreamName": stream, "timestamp": at + 2, "message": f"END RequestId: {request}"},
            {
                "logStreamName": stream,
                "timestamp": at + 2,
                "message": f"REPORT RequestId: {request}\tDuration: 1.00 ms\tBilled Duration: 2 ms\t"
                "Memory Size: 128 MB\tMax Memory Used: 128 MB\tInit Duration: 90.00 ms\t",
            },
        ]

    mine = '{"step": "preprocess", "ticket_id": "T-1", "error": "PayloadTooLarge", "message": "5100 > 5000"}'
    other = '{"step": "preprocess", "ticket_id": "T-1", "error": "PayloadTooLarge", "message": "a neighbour"}'
    events = lines("s1", "ours", 1000, mine) + lines("s2", "theirs", 1000, other)

    class FakeLogs:
        def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
            return {"events": [e for e in events if kwargs["startTime"] <= e["timestamp"] <= kwargs["endTime"]]}

    def call(api: str, function: Any, **kwargs: Any) -> Any:
        return function(**kwargs)

    attempt = model.Attempt(1.0, 2.0, 3.0, "PayloadTooLarge", request_id="ours")
    visit = model.Visit("Preprocess", 0.0, None, (attempt,))
    execution = model.Execution(
        "r-0-0", "arn:x", "FAILED", 1000.0, 1003.0, 1, items=(model.Item(0, 0.0, 4.0, "FAILED", (visit,)),)
    )
    groups = {"preprocess": "/aws/lambda/pre"}
    found = logs.lambda_logs(call, FakeLogs(), groups, (execution,), 1000, 1003)
    scope, functions, rows = found.scope, found.functions, found.rows
    assert found.problems == [] and scope is not None and scope.by == "Preprocess by request id"
    assert (scope.read, scope.kept) == (8, 4)
    assert [r.message for r in rows] == [mine] and rows[0].request_id == "ours"
    (summary,) = functions
    assert (summary.invocations, summary.cold_starts, summary.at_memory_limit) == (1, 1, 1)
    assert summary.peak_concurrency == found.peak_concurrency == 1  # the neighbour's invocation is not ours
    # without request ids in the history, the exact window decides (and the scope says so)
    anonymous = model.Execution(
        "r-0-0",
        "arn:x",
        "FAILED",
        1000.0,
        1003.0,
        1,
        items=(model.Item(0, 0.0, 4.0, "FAILED", (model.Visit("Preprocess", 0.0, None, (model.Attempt(1, 2, 3),)),)),),
    )
    found = logs.lambda_logs(call, FakeLogs(), groups, (anonymous,), 1000, 1003)
    scope, rows = found.scope, found.rows
    assert found.peak_concurrency == 2  # both in the window: their START..END overlap
    assert scope is not None and scope.by == "Preprocess by time window (ms)" and len(rows) == 2


def test_a_handler_line_is_tied_by_the_request_id_it_names() -> None:
    """The handlers log function_request_id: no START/END bracket needed, none trusted over it."""
    from scaleorfail.harvest import logs

    def line(request: str | None, ticket: str) -> str:
        keys = {"function_name": "sof-preprocess", "function_request_id": request} if request else {}
        return json.dumps({"step": "preprocess", "ticket_id": ticket, "error": "InvalidTicket", **keys})

    events = [
        # the window began after this invocation's START: the line still names its invocation
        {"logStreamName": "s1", "timestamp": 1, "message": line("early", "T-1")},
        {"logStreamName": "s1", "timestamp": 2, "message": "END RequestId: early"},
        # two environments' lines in one stream (a log stream read merged): each names its own
        {"logStreamName": "s2", "timestamp": 3, "message": "START RequestId: a Version: $LATEST"},
        {"logStreamName": "s2", "timestamp": 4, "message": line("b", "T-2")},
        {"logStreamName": "s2", "timestamp": 5, "message": line(None, "T-3")},  # an older line: its bracket
        {"logStreamName": "s2", "timestamp": 6, "message": "[ERROR] InvalidTicket: text is empty\rTraceback"},
        {"logStreamName": "s2", "timestamp": 7, "message": "END RequestId: a"},
        {"logStreamName": "s2", "timestamp": 8, "message": line(None, "T-4")},  # outside any bracket
    ]
    found = logs.attribute(events)
    tickets = {
        r: [json.loads(e["message"])["ticket_id"] for e in lines if e["message"].startswith("{")]
        for r, lines in found.by_request.items()
    }
    assert tickets == {"early": ["T-1"], "a": ["T-3"], "b": ["T-2"]}
    assert [json.loads(e["message"])["ticket_id"] for e in found.unattributed] == ["T-4"]
    assert "[ERROR] InvalidTicket: text is empty\rTraceback" in [e["message"] for e in found.by_request["a"]]
    assert logs.own_request_id('{"step": "embed", "function_request_id": "r-1"}') == "r-1"
    assert logs.own_request_id('{"step": "embed", "function_request_id": 7}') is None
    assert logs.own_request_id("REPORT RequestId: r-2\tDuration: 1.00 ms") == "r-2"


def test_concurrency_is_counted_from_each_invocations_start_and_end_lines() -> None:
    from scaleorfail.harvest import logs

    def invocation(request: str, start: int, end: int) -> list[dict[str, Any]]:
        return [
            {"timestamp": start, "message": f"START RequestId: {request} Version: $LATEST"},
            {"timestamp": start + 1, "message": "a handler line"},
            {"timestamp": end, "message": f"END RequestId: {request}"},
            {"timestamp": end, "message": f"REPORT RequestId: {request}\tDuration: 1.00 ms\t"},
        ]

    events = invocation("a", 0, 100) + invocation("b", 50, 150) + invocation("c", 100, 200) + invocation("d", 120, 130)
    assert sorted(logs.windows(events)) == [(0, 100), (50, 150), (100, 200), (120, 130)]
    # c starts in the millisecond a ends: one environment handed over, not two at once
    assert logs.peak(logs.windows(events)) == 3
    unfinished = [{"timestamp": 5, "message": "START RequestId: e Version: $LATEST"}]
    assert logs.windows(unfinished) == [] and logs.peak([]) is None
