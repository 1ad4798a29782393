"""GetExecutionHistory pages: the same events moto's serializer writes, paged as AWS pages them, live."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.core.serialize import XFormedAttributePicker, get_serializer_class
from moto.core.utils import get_service_model, iso_8601_datetime_with_milliseconds
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

from scaleorfail.emulator.moto_ext.stepfunctions import pages


def moto_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What moto's generic response serializer makes of these events (the reference)."""
    operation = get_service_model("stepfunctions").operation_model("GetExecutionHistory")
    serializer = get_serializer_class("stepfunctions", "json")(
        operation_model=operation, value_picker=XFormedAttributePicker()
    )
    return list(json.loads(serializer.serialize({"events": events})["body"])["events"])


def event(event_id: int, kind: HistoryEventType, **details: Any) -> dict[str, Any]:
    stamp = iso_8601_datetime_with_milliseconds(datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC))
    return dict(EventManager._create_history_event(event_id, event_id - 1, kind, stamp, details or None))


SAMPLES = [
    event(
        1,
        HistoryEventType.ExecutionStarted,
        executionStartedEventDetails={
            "input": '{"tickets": ["<script>alert(1)</script>", "caf\u00e9"]}',
            "inputDetails": {"truncated": False},
            "roleArn": "arn:aws:iam::123456789012:role/x",
        },
    ),
    event(2, HistoryEventType.MapStateEntered, stateEnteredEventDetails={"name": "Fan", "input": "{}"}),
    event(3, HistoryEventType.MapStateStarted, mapStateStartedEventDetails={"length": 3}),
    event(4, HistoryEventType.MapIterationStarted, mapIterationStartedEventDetails={"name": "Fan", "index": 0}),
    event(
        5,
        HistoryEventType.TaskScheduled,
        taskScheduledEventDetails={
            "resourceType": "lambda",
            "resource": "invoke",
            "region": "us-east-1",
            "parameters": '{"FunctionName":"f"}',
            "timeoutInSeconds": None,  # a None member is left out
        },
    ),
    event(6, HistoryEventType.TaskStarted, taskStartedEventDetails={"resourceType": "lambda", "resource": "invoke"}),
    event(
        7,
        HistoryEventType.TaskFailed,
        taskFailedEventDetails={
            "resourceType": "lambda",
            "resource": "invoke",
            "error": "Lambda.TooManyRequestsException",
            "cause": "Rate Exceeded.",
        },
    ),
    event(8, HistoryEventType.TaskSucceeded, taskSucceededEventDetails={"output": '{"ok":1}', "outputDetails": {}}),
    event(9, HistoryEventType.ExecutionFailed, executionFailedEventDetails={"error": "States.Runtime", "cause": ""}),
]


def test_each_event_is_written_as_moto_writes_it() -> None:
    unknown = {**SAMPLES[1], "notInTheModel": "dropped"}  # a member the model lacks is not answered
    samples = [*SAMPLES, unknown]
    ours = [json.loads(pages.codec().encode(e)) for e in samples]
    assert ours == moto_events(samples)
    assert ours[0]["timestamp"] == pytest.approx(datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=UTC).timestamp())
    assert ours[0]["type"] == "ExecutionStarted" and ours[1]["stateEnteredEventDetails"]["input"] == "{}"


def test_without_execution_data_the_inputs_and_outputs_are_left_out() -> None:
    bare = [json.loads(pages.codec().encode(e, include_data=False)) for e in SAMPLES]
    assert "input" not in bare[0]["executionStartedEventDetails"]
    assert bare[0]["executionStartedEventDetails"]["roleArn"].endswith(":role/x")
    assert bare[7]["taskSucceededEventDetails"] == {}
    assert bare[6]["taskFailedEventDetails"]["error"] == "Lambda.TooManyRequestsException"


class Execution:
    """Enough of moto's parser Execution for pages.page: a history that grows."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        manager = type("Manager", (), {"_history_event_list": events})()
        self.exec_worker = type("Worker", (), {"env": type("Env", (), {"event_manager": manager})()})()


def read(execution: Execution, **request: Any) -> dict[str, Any]:
    return dict(
        json.loads(
            pages.page(
                execution,
                "arn:x",
                request.get("maxResults"),
                bool(request.get("reverseOrder")),
                request.get("nextToken"),
                request.get("includeExecutionData", True),
            )
        )
    )


def test_a_page_encodes_only_the_events_it_holds_and_each_once() -> None:
    entered = HistoryEventType.PassStateEntered
    history = [event(i, entered, stateEnteredEventDetails={"name": "P"}) for i in range(1, 5001)]
    execution = Execution(history)
    newest = read(execution, maxResults=10, reverseOrder=True)
    assert [e["id"] for e in newest["events"]] == list(range(5000, 4990, -1))
    cache = pages.pages_of(execution)
    assert cache.encoded == 10
    read(execution, maxResults=10, reverseOrder=True)
    assert cache.encoded == 10  # the same page again: nothing encoded again
    first = read(execution)
    assert len(first["events"]) == pages.HISTORY_PAGE_DEFAULT and cache.encoded == 110


def test_a_growing_history_is_paged_without_repeats_or_gaps_both_ways() -> None:
    history = [event(i, HistoryEventType.PassStateEntered, stateEnteredEventDetails={"name": "P"}) for i in range(1, 8)]
    execution = Execution(history)
    forward = read(execution, maxResults=5)
    backward = read(execution, maxResults=5, reverseOrder=True)
    history.extend(event(i, HistoryEventType.PassStateExited, stateExitedEventDetails={"name": "P"}) for i in (8, 9))
    forward_rest = read(execution, maxResults=5, nextToken=forward["nextToken"])
    backward_rest = read(execution, maxResults=5, reverseOrder=True, nextToken=backward["nextToken"])
    assert [e["id"] for e in forward["events"] + forward_rest["events"]] == list(range(1, 10))
    assert [e["id"] for e in backward["events"] + backward_rest["events"]] == list(range(7, 0, -1))
    assert "nextToken" not in forward_rest and "nextToken" not in backward_rest
    with pytest.raises(pages.InvalidPageTokenError):
        read(execution, maxResults=5, nextToken=backward["nextToken"])  # a reverse token read forwards
    with pytest.raises(pages.InvalidPageTokenError):
        pages.page(execution, "arn:other", 5, False, forward["nextToken"], True)


def test_page_sizes_are_aws_s() -> None:
    execution = Execution([event(i, HistoryEventType.PassStateEntered) for i in range(1, 1502)])
    assert len(read(execution)["events"]) == 100  # the default
    assert len(read(execution, maxResults=0)["events"]) == 100  # 0 uses the default
    assert len(read(execution, maxResults=5000)["events"]) == 1000  # at most 1,000
