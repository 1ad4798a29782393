"""The RCA tree on AWS-shaped histories: deaths AWS reports as Lambda.Unknown or Runtime.ExitError."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_harvest_units import HistoryBuilder, record_for

from scaleorfail.evidence import analysis, rca
from scaleorfail.record import model

TIMEOUT_CAUSE = (
    "The cause could not be determined because Lambda did not return an error type. Returned payload: "
    '{"errorMessage":"2026-11-30T10:00:06.123Z 1f2e Task timed out after 6.00 seconds"}'
)
KILLED_CAUSE = (
    '{"errorType":"Runtime.ExitError",'
    '"errorMessage":"RequestId: 1f2e Error: Runtime exited with error: signal: killed"}'
)


def failing_embed_history(error: str, cause: str, tickets: int = 3) -> list[dict[str, object]]:
    """Tickets one at a time; Embed fails each (no retry) the way AWS records it, the batch fails."""
    h = HistoryBuilder()
    start = h.add("ExecutionStarted", 0, None)
    mapped = h.add("MapStateEntered", 1, start, stateEnteredEventDetails={"name": "ProcessTickets"})
    map_started = h.add("MapStateStarted", 2, mapped, mapStateStartedEventDetails={"length": tickets})
    at = 3.0
    last = map_started
    for index in range(tickets):
        it = h.add("MapIterationStarted", at, map_started, mapIterationStartedEventDetails={"index": index})
        last = h.task(it, "Preprocess", at + 1, [(at + 1, at + 2, at + 10, None)])
        entered = h.add("TaskStateEntered", at + 11, last, stateEnteredEventDetails={"name": "Embed"})
        scheduled = h.add("TaskScheduled", at + 12, entered)
        began = h.add("TaskStarted", at + 13, scheduled)
        last = h.add("TaskFailed", at + 6013, began, taskFailedEventDetails={"error": error, "cause": cause})
        last = h.add("MapIterationFailed", at + 6014, last, mapIterationFailedEventDetails={"index": index})
        at += 6020
    h.add("ExecutionFailed", at, last, executionFailedEventDetails={"error": error, "cause": cause})
    return h.events


@pytest.mark.parametrize(
    ("error", "cause", "leaf"),
    [
        ("Lambda.Unknown", TIMEOUT_CAUSE, "TIMED OUT"),
        ("Runtime.ExitError", KILLED_CAUSE, "EXHAUSTED"),
        (
            "Sandbox.Timedout",
            '{"errorType":"Sandbox.Timedout","errorMessage":"Task timed out after 6.00 seconds"}',
            "TIMED OUT",
        ),
    ],
)
def test_aws_reported_deaths_reach_their_leaf(error: str, cause: str, leaf: str) -> None:
    record = record_for(failing_embed_history(error, cause), batch=3)
    diagnosis = rca.diagnose(record, analysis.stats(record))
    assert [f.leaf for f in diagnosis.findings] == [leaf]
    assert not any("outside the tree" in note for note in diagnosis.notes)
    cited = " ".join(e.text for f in diagnosis.findings for e in f.evidence)
    assert error in cited  # the evidence names the error as AWS reported it


def test_an_unexplained_exit_is_not_guessed_into_a_leaf() -> None:
    cause = '{"errorMessage":"RequestId: 1f2e Error: Runtime exited with error: exit status 1"}'
    record = record_for(failing_embed_history("Runtime.ExitError", cause), batch=3)
    diagnosis = rca.diagnose(record, analysis.stats(record))
    assert not any(f.leaf in ("EXHAUSTED", "TIMED OUT") for f in diagnosis.findings)
    assert any("Runtime.ExitError x3" in note for note in diagnosis.notes)


HISTORY_LIMIT_CAUSE = "The execution reached the maximum number of history events (25000)."


def history_limited(tickets: int, concurrency: int) -> list[dict[str, object]]:
    """A batch at max_concurrency whose items all succeed until the history reaches 25,000 events."""
    h = HistoryBuilder()
    start = h.add("ExecutionStarted", 0, None)
    mapped = h.add("MapStateEntered", 1, start, stateEnteredEventDetails={"name": "ProcessTickets"})
    map_started = h.add("MapStateStarted", 2, mapped, mapStateStartedEventDetails={"length": tickets})
    last = map_started
    for index in range(tickets):
        if len(h.events) >= 24_980:
            break
        at = 3.0 + (index // concurrency) * 300  # waves of `concurrency` items, 300 ms each
        it = h.add("MapIterationStarted", at, map_started, mapIterationStartedEventDetails={"index": index})
        last = h.task(it, "Preprocess", at + 1, [(at + 1, at + 2, at + 50, None)])
        last = h.task(last, "Embed", at + 50, [(at + 51, at + 52, at + 250, None)])
        last = h.task(last, "Postprocess", at + 250, [(at + 251, at + 252, at + 290, None)])
        last = h.add("MapIterationSucceeded", at + 291, last, mapIterationSucceededEventDetails={"index": index})
    while len(h.events) < 24_999:
        last = h.add("MapIterationStarted", at + 400, map_started, mapIterationStartedEventDetails={"index": 0})
    h.add("ExecutionFailed", at + 500, last, executionFailedEventDetails={"error": "States.Runtime",
          "cause": HISTORY_LIMIT_CAUSE})  # fmt: skip
    return h.events


def test_a_batch_that_died_at_the_history_limit_is_named_so_with_its_event_count_and_the_fix() -> None:
    events = history_limited(tickets=1_600, concurrency=10)
    assert len(events) == 25_000
    record = record_for(events, batch=1_600, parameters={"max_concurrency": 10})
    diagnosis = rca.diagnose(record, analysis.stats(record))
    assert diagnosis.classification[0] == "QUOTA (execution history limit (25,000 events))", diagnosis.classification
    finding = diagnosis.findings[0]
    cited = " ".join(e.text for e in finding.evidence)
    assert "States.Runtime" in cited and "25,000 events" in cited and "maximum number of history events" in cited
    assert "smaller batches" in finding.action and "Distributed Map" in finding.action
    markdown = rca.to_markdown(diagnosis)
    assert "no 429, no errors" not in markdown  # an execution failed: the queueing evidence must not say otherwise


def queued_history(tickets: int, cold: int, slow: dict[int, float] | None = None) -> list[dict[str, object]]:
    """max_concurrency 2: tickets run two at a time, Embed 200 ms warm; the first `cold` Embeds take 2 s,
    and the tickets in `slow` (index -> ms) as long as it says."""
    h = HistoryBuilder()
    start = h.add("ExecutionStarted", 0, None)
    mapped = h.add("MapStateEntered", 1, start, stateEnteredEventDetails={"name": "ProcessTickets"})
    map_started = h.add("MapStateStarted", 2, mapped, mapStateStartedEventDetails={"length": tickets})
    lanes = [3.0, 3.0]  # when each of the Map's two slots is free
    last = map_started
    for index in range(tickets):
        lane = min(range(2), key=lanes.__getitem__)
        at = lanes[lane]
        embed_ms = (slow or {}).get(index, 2000.0 if index < cold else 200.0)
        it = h.add("MapIterationStarted", at, map_started, mapIterationStartedEventDetails={"index": index})
        last = h.task(it, "Preprocess", at + 1, [(at + 1, at + 2, at + 10, None)])
        last = h.task(last, "Embed", at + 10, [(at + 11, at + 12, at + 12 + embed_ms, None)])
        end = at + 12 + embed_ms
        last = h.task(last, "Postprocess", end, [(end, end + 1, end + 10, None)])
        last = h.add("MapIterationSucceeded", end + 11, last, mapIterationSucceededEventDetails={"index": index})
        lanes[lane] = end + 12
    h.add("ExecutionSucceeded", max(lanes) + 1, last)
    return h.events


@pytest.mark.parametrize("reported_cold_starts", [3, 0])
def test_queueing_is_judged_on_warm_latency_when_the_logs_count_the_cold_starts(reported_cold_starts: int) -> None:
    # 40 tickets on 2 slots, 3 Embed cold starts of 2 s: with them, Embed's p95 is a cold start (10x the p50)
    embed_logs = model.FunctionLogs("Embed", "/aws/lambda/embed", 40, cold_starts=reported_cold_starts)
    record = record_for(
        queued_history(40, cold=3),
        batch=40,
        parameters={"max_concurrency": 2},
        logs=model.Logs(functions=(embed_logs,)),
    )
    diagnosis = rca.diagnose(record, analysis.stats(record))
    queueing = "THROTTLED (queueing at the Map's max_concurrency (throughput-bound))"
    if reported_cold_starts:
        assert queueing in diagnosis.classification, diagnosis.ruled_out
        cited = " ".join(e.text for f in diagnosis.findings for e in f.evidence)
        assert "Embed p50 200 ms, p95 200 ms (its 3 cold starts left out)" in cited
    else:  # nothing says the two slow Embeds were cold starts: latency is not normal, no queueing verdict
        assert queueing not in diagnosis.classification
        assert "warm Embed p95 2.00 s is far from its p50 200 ms" in diagnosis.ruled_out["THROTTLED"]


@pytest.mark.parametrize("slow_ticket", [2, 11])
def test_one_starved_item_in_a_small_queued_batch_is_not_a_latency_tail(slow_ticket: int) -> None:
    # the learner's incident-c2: 12 tickets on 2 slots, warm; one Embed waited 3 s for a CPU (a busy machine).
    # Early or last, it moves neither the verdict (one sample is not a tail) nor "waited" (the median item time).
    record = record_for(
        queued_history(12, cold=0, slow={slow_ticket: 3200.0}), batch=12, parameters={"max_concurrency": 2}
    )
    diagnosis = rca.diagnose(record, analysis.stats(record))
    assert "THROTTLED (queueing at the Map's max_concurrency (throughput-bound))" in diagnosis.classification, (
        diagnosis.ruled_out
    )
    # two starved Embeds in twelve are a tail: then latency, not the queue, is in question
    twice = record_for(
        queued_history(12, cold=0, slow={2: 3200.0, 7: 3200.0}), batch=12, parameters={"max_concurrency": 2}
    )
    assert "far from its p50" in rca.diagnose(twice, analysis.stats(twice)).ruled_out["THROTTLED"]


@pytest.mark.parametrize(("report_mean_ms", "queueing"), [(205.0, True), (700.0, False)])
def test_a_task_time_tail_the_handlers_own_time_does_not_share_is_not_the_functions(
    report_mean_ms: float, queueing: bool
) -> None:
    # two Embed tasks took 3 s in the history; the REPORT lines say whether the handler itself was slow
    # (mean far above the median) or the time went around the call (dispatch on a machine short of CPU)
    embed_logs = model.FunctionLogs(
        "Embed", "/aws/lambda/embed", 12, duration_ms_p50=200.0, duration_ms_mean=report_mean_ms
    )
    record = record_for(
        queued_history(12, cold=0, slow={2: 3200.0, 7: 3200.0}),
        batch=12,
        parameters={"max_concurrency": 2},
        logs=model.Logs(functions=(embed_logs,)),
    )
    diagnosis = rca.diagnose(record, analysis.stats(record))
    verdict = "THROTTLED (queueing at the Map's max_concurrency (throughput-bound))"
    assert (verdict in diagnosis.classification) is queueing, (diagnosis.classification, diagnosis.ruled_out)


@pytest.mark.parametrize(("cpu_stalled", "queueing"), [(0.9, True), (0.1, False), (None, False)])
def test_a_tail_on_a_machine_whose_cpus_were_contended_is_the_machines_not_the_functions(
    cpu_stalled: float | None, queueing: bool
) -> None:
    # CI's incident-c2: two Embeds 3 s, the handler's own REPORT time slowed too (it sleeps, then waits to run),
    # while the suite's other workers kept runnable tasks waiting for the 2 CPUs most of the run
    embed_logs = model.FunctionLogs("Embed", "/aws/lambda/embed", 12, duration_ms_p50=200.0, duration_ms_mean=700.0)
    record = replace(
        record_for(
            queued_history(12, cold=0, slow={2: 3200.0, 7: 3200.0}),
            batch=12,
            parameters={"max_concurrency": 2},
            logs=model.Logs(functions=(embed_logs,)),
        ),
        emulator_cpu={"server_cores": 0.3, "cpus": 2, "cpu_stalled": cpu_stalled, "machine_busy": 1.0},
    )
    diagnosis = rca.diagnose(record, analysis.stats(record))
    verdict = "THROTTLED (queueing at the Map's max_concurrency (throughput-bound))"
    assert (verdict in diagnosis.classification) is queueing, (diagnosis.classification, diagnosis.ruled_out)
    cited = " ".join(e.text for f in diagnosis.findings for e in f.evidence)
    contended = [n for n in diagnosis.notes if n.startswith("HOST-CONTENDED")]
    if queueing:
        assert "its tail is the machine's, not the function's: some runnable task waited for a CPU 90% of the run" in (
            cited
        )
        assert contended and contended[0].endswith("its timings are not AWS's")
    else:
        assert "far from its p50" in diagnosis.ruled_out["THROTTLED"] and not contended
