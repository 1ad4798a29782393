"""The RCA tree on AWS-shaped histories: deaths AWS reports as Lambda.Unknown or Runtime.ExitError."""

from __future__ import annotations

import pytest
from test_harvest_units import HistoryBuilder, record_for

from scaleorfail.evidence import analysis, rca

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
