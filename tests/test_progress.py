"""Progress lines: counting a growing history incrementally, the pace and ETA, the line a learner reads."""

from __future__ import annotations

from typing import Any

import pytest

from scaleorfail.load import progress


class GrowingHistory:
    """GetExecutionHistory of an execution whose history grows between calls, paged as the emulator pages it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []

    def append(self, *kinds: str) -> None:
        for kind in kinds:
            self.events.append({"id": len(self.events) + 1, "type": kind})

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        assert kwargs["reverseOrder"] is True and kwargs["includeExecutionData"] is False
        events = list(reversed(self.events))
        start = int(kwargs.get("nextToken") or 0)
        size = int(kwargs["maxResults"])
        page: dict[str, Any] = {"events": events[start : start + size]}
        if start + size < len(events):
            page["nextToken"] = str(start + size)
        return page


def tickets(history: GrowingHistory, started: int, done: int, failed: int = 0) -> None:
    history.append(*["MapIterationStarted", "TaskScheduled", "TaskStarted"] * started)
    history.append(*["TaskSucceeded", "MapIterationSucceeded"] * done)
    history.append(*["TaskFailed", "MapIterationFailed"] * failed)


def test_a_growing_history_is_counted_once_reading_only_what_is_new() -> None:
    history = GrowingHistory()
    history.append("ExecutionStarted", "MapStateEntered")
    counter = progress.HistoryCounter(history, "arn:execution", page_size=10)
    tickets(history, started=4, done=0)  # 14 events: two pages the first time
    counts = counter.update()
    assert (counts.started, counts.ended, counts.failed) == (4, 0, 0)
    assert len(history.calls) == 2
    tickets(history, started=1, done=2)  # 7 new events: one page, stopping at the last id seen
    counts = counter.update()
    assert (counts.started, counts.ended) == (5, 2)
    assert len(history.calls) == 3
    counter.update()  # nothing new: one call, nothing counted twice
    assert (counter.counts.started, counter.counts.ended) == (5, 2) and len(history.calls) == 4
    tickets(history, started=0, done=2, failed=1)
    history.append("MapStateExited", "ExecutionFailed")
    counts = counter.update()
    assert (counts.started, counts.ended, counts.failed, counts.execution_end) == (5, 5, 1, "ExecutionFailed")


def test_events_repeated_across_pages_of_a_growing_history_are_counted_once() -> None:
    history = GrowingHistory()
    tickets(history, started=10, done=0)  # 30 events

    grown = False

    def call(**kwargs: Any) -> dict[str, Any]:
        nonlocal grown
        page = history(**kwargs)
        if not grown:  # between the first and the second page, 3 events arrive: offsets shift, pages overlap
            grown = True
            tickets(history, started=1, done=0)
        return page

    counts = progress.HistoryCounter(call, "arn:execution", page_size=8).update()
    assert counts.started == 10  # the 11th arrived after the first page: the next look counts it


def test_the_pace_is_recent_and_the_eta_follows_it() -> None:
    pace = progress.Pace(window_s=10.0)
    assert pace.rate() is None and pace.eta(100) is None
    for second in range(0, 31, 5):  # slow at first (cold starts), then 2 tickets/s
        pace.add(float(second), 0 if second < 10 else 2 * (second - 10))
    assert pace.rate() == pytest.approx(2.0)
    assert pace.eta(40) == pytest.approx(20.0)


def test_a_single_batch_line_tells_done_running_queued_elapsed_and_eta() -> None:
    pace = progress.Pace()
    progress.batch_snapshot(progress.MapCounts(started=2, ended=0), 500, 2.0, pace)
    counts = progress.MapCounts(started=42, ended=40)
    line = progress.render(progress.batch_snapshot(counts, 500, 12.0, pace))
    assert line == "progress 0:12: 40/500 tickets done, 2 running, 458 queued - 4.0/s, ETA 1:55"
    first = progress.render(progress.batch_snapshot(progress.MapCounts(started=2), 500, 1.0, progress.Pace()))
    assert first == "progress 0:01: 0/500 tickets done, 2 running, 498 queued, ETA -"


def test_a_failed_execution_ends_the_progress_with_its_status() -> None:
    counts = progress.MapCounts(started=3, ended=1, failed=1, execution_end="ExecutionFailed")
    snapshot = progress.batch_snapshot(counts, 10, 4.0, progress.Pace())
    assert snapshot.complete
    assert progress.render(snapshot) == (
        "progress 0:04: 1/10 tickets done (1 failed), 0 running, 0 queued - execution FAILED"
    )


def test_a_batch_whose_last_ticket_is_done_is_not_over_until_its_execution_ends() -> None:
    # the Map state and the execution still have events to write after the last iteration's end: the
    # progress goes on (ETA 0:00) so that its last word is the execution's status, not "all done"
    pace = progress.Pace()
    last_ticket = progress.batch_snapshot(progress.MapCounts(started=10, ended=10), 10, 4.0, pace)
    assert not last_ticket.complete
    assert progress.render(last_ticket) == "progress 0:04: 10/10 tickets done, 0 running, 0 queued, ETA 0:00"
    counts = progress.MapCounts(started=10, ended=10, execution_end="ExecutionSucceeded")
    over = progress.batch_snapshot(counts, 10, 5.0, pace)
    assert over.complete and progress.render(over).endswith("- execution SUCCEEDED")


def test_a_stream_line_counts_executions_and_says_when_all_are_done() -> None:
    pace = progress.Pace()
    progress.stream_snapshot(60, 10, 0, 5, 5.0, pace)
    middle = progress.stream_snapshot(60, 20, 1, 14, 10.0, pace)
    assert (
        progress.render(middle)
        == "progress 0:10: 15/60 executions done (1 failed), 6 running, 39 not started - 2.0/s, ETA 0:22"
    )
    end = progress.stream_snapshot(60, 59, 1, 59, 31.0, pace)
    assert end.complete and progress.render(end).endswith("- all done")


def test_the_reporter_waits_for_the_start_then_stops_after_the_last_word() -> None:
    history = GrowingHistory()
    state = {"counts": (0, 0, 0), "arn": None, "now": 100.0}
    reporter = progress.Reporter(
        single=True,
        tickets=2,
        planned=1,
        t0=100.0,
        counts=lambda: state["counts"],
        first_arn=lambda: state["arn"],
        history_call=lambda: history,
        now=lambda: state["now"],
    )
    assert reporter.line() is None and not reporter.finished  # not started yet
    state.update(counts=(1, 0, 0), arn="arn:execution", now=103.0)
    tickets(history, started=2, done=1)
    assert reporter.line() == "progress 0:03: 1/2 tickets done, 1 running, 0 queued, ETA -"
    tickets(history, started=0, done=1)
    history.append("ExecutionSucceeded")
    state["now"] = 105.0
    assert reporter.line() == "progress 0:05: 2/2 tickets done, 0 running, 0 queued - execution SUCCEEDED"
    assert reporter.finished and reporter.line() is None


def test_a_run_whose_only_start_failed_has_nothing_to_report() -> None:
    reporter = progress.Reporter(
        single=True,
        tickets=5,
        planned=1,
        t0=0.0,
        counts=lambda: (0, 1, 0),
        first_arn=lambda: None,
        history_call=GrowingHistory,
        now=lambda: 3.0,
    )
    assert reporter.line() is None and reporter.finished


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0:00"), (59.6, "1:00"), (3599, "59:59"), (3725, "1:02:05")])
def test_clock(seconds: float, text: str) -> None:
    assert progress.clock(seconds) == text


def test_a_stream_whose_starts_fall_below_90_percent_of_the_asked_rate_says_so_and_who() -> None:
    """Asked for 180 starts/s, 42/s made it while StartExecution took 5.2 s: the line says the target is slow."""
    state = {"now": 10.0, "counts": (420, 0, 300)}
    reporter = progress.Reporter(
        single=False,
        tickets=10,
        planned=10_800,
        t0=0.0,
        counts=lambda: state["counts"],
        first_arn=lambda: None,
        history_call=lambda: None,
        now=lambda: state["now"],
        expected=lambda t: 180.0 * t,
        start_latency_ms=lambda: 5_200.0,
    )
    line = reporter.line() or ""
    assert "STARTS BEHIND: started 42.0/s of the 180/s asked (23%); the target: StartExecution took p50 5.2 s" in line
    state.update(counts=(1_750, 0, 1_700))  # on pace (175/s of 180/s): nothing to flag
    assert "BEHIND" not in (reporter.line() or "")
    quick = progress.Reporter(
        single=False, tickets=10, planned=10_800, t0=0.0, counts=lambda: (420, 0, 0), first_arn=lambda: None,
        history_call=lambda: None, now=lambda: 10.0, expected=lambda t: 180.0 * t, start_latency_ms=lambda: 40.0,
    )  # fmt: skip
    assert "the harness: StartExecution answered in p50 40 ms" in (quick.line() or "")
