"""The Distributed Map's pure parts: definitions moto can parse, batches, Map Run counts, the evidence.

What the emulator tests (tests/test_distributed.py) run end to end, checked here piece by piece:
the definition as moto's grammar takes it, ItemBatcher's batches, a Map Run's tolerated failure,
execution log records as history events, child executions as tickets, the harness's options,
the sweep's plan, the RCA leaf ORCHESTRATION-BOUND and the cost of child executions.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from test_harvest_units import HistoryBuilder, record_for

from scaleorfail import history
from scaleorfail.emulator import asl_validation, distributed_asl
from scaleorfail.emulator.moto_ext.stepfunctions import itemio
from scaleorfail.emulator.moto_ext.stepfunctions.mapruns import Child, MapRun
from scaleorfail.errors import UserError
from scaleorfail.evidence import analysis, orchestration, rca
from scaleorfail.harvest import maprun
from scaleorfail.load import batches, history_limit, options
from scaleorfail.record import model
from scaleorfail.usecases import sweep

CHILD = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def distributed(**fields: Any) -> dict[str, Any]:
    execution_type = fields.pop("execution_type", "STANDARD")
    return {
        "Type": "Map",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type}, **CHILD},
        "End": True,
        **fields,
    }


def test_the_definition_moto_parses_keeps_what_the_map_run_needs_beside_it() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    state = distributed(
        execution_type="EXPRESS",
        Label="Tickets",
        ToleratedFailurePercentage=5,
        ItemBatcher={"MaxItemsPerBatch": 10},
        ItemReader={"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"}},
        ResultWriter={"Resource": "arn:aws:states:::s3:putObject", "WriterConfig": {"OutputType": "JSONL"}},
    )
    definition = json.dumps({"StartAt": "Outer", "States": {"Outer": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "M", "States": {"M": state}}]}}})  # fmt: skip
    with pytest.raises(Exception, match=r"ItemBatcher|EXPRESS"):
        AmazonStateLanguageParser.parse(definition)  # moto 5.2.5's grammar alone
    text, configs = distributed_asl.for_moto(definition)
    AmazonStateLanguageParser.parse(text)  # now it parses
    config = configs[("Outer", "M")]
    assert config.execution_type == "EXPRESS" and config.label == "Tickets" and config.input_type == "JSONL"
    assert config.item_batcher == {"MaxItemsPerBatch": 10} and config.result_writer is not None
    assert "ToleratedFailurePercentage" in config.declared
    child = json.loads(config.child_definition())
    assert child == {**CHILD, "TimeoutSeconds": 300}  # an Express child runs at most 5 minutes
    assert distributed_asl.for_moto('{"StartAt": "A"}') == ('{"StartAt": "A"}', {})  # nothing to rewrite


def test_create_state_machine_refuses_what_aws_refuses_in_a_distributed_map() -> None:
    bad = distributed(execution_type="FAST", Label="has space", ToleratedFailurePercentage=120,
                      ItemBatcher={"MaxItemsPerBatch": 0})  # fmt: skip
    found = asl_validation.diagnose(json.dumps({"StartAt": "M", "States": {"M": bad}}))
    text = asl_validation.message(found)
    for field in ("ExecutionType", "Label", "ToleratedFailurePercentage", "MaxItemsPerBatch"):
        assert field in text
    assert (
        asl_validation.diagnose(json.dumps({"StartAt": "M", "States": {"M": distributed(MaxConcurrency=10000)}})) == []
    )


def test_item_batcher_cuts_batches_by_items_and_by_bytes() -> None:
    items = [{"ticket_id": f"T-{i}", "text": "x" * 40} for i in range(10)]
    by_items = itemio.batches(items, {"MaxItemsPerBatch": 4}, {}, {})
    assert [n for _, n in by_items] == [4, 4, 2] and by_items[0][0] == {"Items": items[:4]}
    by_bytes = itemio.batches(items, {"MaxInputBytesPerBatch": 200}, {}, {})
    assert all(len(json.dumps(b, separators=(",", ":"))) <= 200 for b, _ in by_bytes)
    assert sum(n for _, n in by_bytes) == 10 and len(by_bytes) > 3
    with_input = itemio.batches(items[:2], {"MaxItemsPerBatchPath": "$.size", "BatchInput": {"run.$": "$.run"}},
                                {"size": 1, "run": "r"}, {})  # fmt: skip
    assert [b for b, _ in with_input] == [{"BatchInput": {"run": "r"}, "Items": [i]} for i in items[:2]]
    assert itemio.batches(items[:2], None, {}, {}) == [(items[0], 1), (items[1], 1)]


def test_item_reader_bodies_parse_as_aws_reads_them() -> None:
    assert itemio._parse(b'{"a":1}\n\n{"a":2}\n', "JSONL", {}) == [{"a": 1}, {"a": 2}]
    assert itemio._parse(b'[{"a":1}]', "JSON", {}) == [{"a": 1}]
    assert itemio._parse(b"id,text\n1,hi\n", "CSV", {"CSVHeaderLocation": "FIRST_ROW"}) == [{"id": "1", "text": "hi"}]
    with pytest.raises(ValueError):
        itemio._parse(b'{"a":1}', "JSON", {})


def run_with(**settings: Any) -> MapRun:
    run = MapRun("arn:mr", "arn:ex", "arn:sm/L", "STANDARD", 2, 0, 0.0, False, False, **settings)
    run.planned(10, 10)
    return run


class _Execution:
    def __init__(self, arn: str) -> None:
        self.exec_arn = arn


@pytest.mark.parametrize(
    ("count", "percentage", "failures", "exceeded"),
    [
        (None, None, 1, True),  # nothing tolerated: the first failure fails the run
        (2, None, 2, False),
        (2, None, 3, True),
        (None, 20.0, 2, False),  # 2 of 10 items = 20 %: not over
        (None, 20.0, 3, True),
        (5, 10.0, 2, True),  # both given: over either fails it
    ],
)
def test_tolerated_failure_counts_failed_items_against_count_and_percentage(
    count: int | None, percentage: float | None, failures: int, exceeded: bool
) -> None:
    run = run_with()
    run.update(None, count, percentage)
    for index in range(failures):
        child = Child(index, 1, _Execution(f"arn:c{index}"))
        with run.lock:
            run.started(child)
        assert run.ended(child, "FAILED", error="E", cause="c")
        assert not run.ended(child, "SUCCEEDED")  # a child is counted once
    with run.lock:
        assert run.exceeded() is exceeded
    counts = run.describe()["itemCounts"]
    assert counts["failed"] == failures and counts["pending"] == 10 - failures and counts["running"] == 0


def test_execution_log_records_become_the_history_events_they_log() -> None:
    record = {"id": "3", "type": "TaskStateEntered", "details": {"name": "Embed"}, "previous_event_id": "2",
              "event_timestamp": "1700000000123", "execution_arn": "arn:c"}  # fmt: skip
    event = maprun.log_record_event(record)
    assert event == {"id": 3, "type": "TaskStateEntered", "timestamp": 1700000000123.0, "previousEventId": 2,
                     "stateEnteredEventDetails": {"name": "Embed"}}  # fmt: skip
    assert maprun.log_record_event({"type": "X"}) is None


def child_history(start: float, batched: int = 0) -> list[dict[str, Any]]:
    h = HistoryBuilder()
    last = h.add("ExecutionStarted", start, None)
    if not batched:
        last = h.task(last, "Preprocess", start + 1, [(start + 2, start + 3, start + 10, None)])
    else:
        mapped = h.add("MapStateStarted", start + 1, last, mapStateStartedEventDetails={"length": batched})
        for index in range(batched):
            it = h.add("MapIterationStarted", start + 2, mapped, mapIterationStartedEventDetails={"index": index})
            last = h.task(it, "Preprocess", start + 3, [(start + 4, start + 5, start + 9, None)])
            last = h.add("MapIterationSucceeded", start + 10, last, mapIterationSucceededEventDetails={"index": index})
    h.add("ExecutionSucceeded", start + 12, last)
    return h.events


def test_children_become_tickets_in_their_start_order_batches_by_their_iterations() -> None:
    single = [({"name": "b", "status": "SUCCEEDED"}, history.parse(child_history(50))),
              ({"name": "a", "status": "TIMED_OUT"}, history.parse(child_history(0)))]  # fmt: skip
    items = maprun.child_items(single)
    assert [(i.index, i.status) for i in items] == [(0, "FAILED"), (1, "SUCCEEDED")]  # by start, not by list order
    assert [v.step for v in items[1].visits] == ["Preprocess"] and items[1].visits[0].attempts[0].duration_ms == 7
    batched = maprun.child_items([({"name": "a", "status": "SUCCEEDED"}, history.parse(child_history(0, 3)))])
    assert [i.index for i in batched] == [0, 1, 2] and all(i.status == "SUCCEEDED" for i in batched)


def settings(**overrides: Any) -> options.LoadSettings:
    from test_load_units import namespace

    return options.validate(namespace(**overrides))


def test_the_harness_keeps_a_knob_above_40_for_the_distributed_map() -> None:
    high = settings(max_concurrency=100)
    options.map_mode_check(high, "distributed")
    with pytest.raises(UserError) as refused:
        options.map_mode_check(high, "inline")
    assert "map_mode=distributed" in refused.value.fix
    warning = options.concurrency_warning(settings(max_concurrency=0), 1000, "distributed")
    assert warning is not None and "10000" in warning
    assert batches.map_bucket({"map_mode": "distributed", "map_bucket_name": "b"}) == "b"
    assert batches.map_bucket({"map_mode": "inline", "map_bucket_name": None}) is None
    key = batches.batch_key("run-0-1")
    assert key == "batches/run-0-1.jsonl" and json.loads(batches.distributed_input(key, 7)) == {
        "tickets_key": key,
        "max_concurrency": 7,
    }
    assert batches.jsonl([{"a": 1}, {"a": 2}]) == b'{"a":1}\n{"a":2}\n'


def test_a_distributed_definition_has_no_history_budget_to_warn_about() -> None:
    inline = {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": CHILD, "End": True}}}
    assert history_limit.budget(inline) is not None
    assert history_limit.budget({"StartAt": "M", "States": {"M": distributed()}}) is None


def test_the_sweep_plans_both_modes_on_the_same_tickets() -> None:
    assert sweep.parse_concurrency(None, "distributed") == [10, 20, 40, 100, 200]
    assert sweep.parse_concurrency(None, None) == [1, 2, 5, 10, 20, 30, 40]
    with pytest.raises(UserError, match="10,000"):
        sweep.parse_concurrency("41", None)
    assert sweep.plan([10, 40, 100], "both") == [("inline", 10), ("inline", 40), ("distributed", 10),
                                                 ("distributed", 40), ("distributed", 100)]  # fmt: skip
    assert sweep.label("distributed", 10) == "sweep-dist-c10" and sweep.label(None, 10) == "sweep-c10"


# -- the evidence ----------------------------------------------------------------------------------


def busy_inline_history(tickets: int = 200, slots: int = 20) -> list[dict[str, Any]]:
    """An inline Map at 20: each ticket 1.19 s in flight, 0.3 s of it in Lambda - the rest waits on the history."""
    h = HistoryBuilder()
    start = h.add("ExecutionStarted", 0, None)
    mapped = h.add("MapStateEntered", 1, start, stateEnteredEventDetails={"name": "ProcessTickets"})
    map_started = h.add("MapStateStarted", 2, mapped, mapStateStartedEventDetails={"length": tickets})
    last = map_started
    for index in range(tickets):
        at = (index // slots) * 1200 + 3
        it = h.add("MapIterationStarted", at, map_started, mapIterationStartedEventDetails={"index": index})
        step = it
        for offset, name in ((100, "Preprocess"), (450, "Embed"), (800, "Postprocess")):
            step = h.task(step, name, at + offset, [(at + offset + 100, at + offset + 150, at + offset + 250, None)])
        last = h.add("MapIterationSucceeded", at + 1190, step, mapIterationSucceededEventDetails={"index": index})
    h.add("ExecutionSucceeded", (tickets // slots) * 1200 + 10, last)
    return h.events


AWS_TIMING = {"profile": "aws", "history_write_ms": 7.0, "history_event_ms": 2.0}


def test_an_inline_map_whose_history_nears_its_writer_is_orchestration_bound() -> None:
    record = record_for(busy_inline_history(), batch=200, parameters={"max_concurrency": 20}, timing=AWS_TIMING)
    load = orchestration.history_load(record)
    assert load is not None and load.bound and load.outside_share > 0.7 and 0.5 < (load.utilisation or 0) < 1
    diagnosis = rca.diagnose(record, analysis.stats(record))
    finding = next(f for f in diagnosis.findings if f.leaf == "ORCHESTRATION-BOUND")
    cited = " ".join(e.text for e in finding.evidence)
    assert "events/s" in cited and "outside their Lambda tasks" in cited and "writer's capacity" in cited
    assert "map_mode=distributed" in finding.action and "LABEL=dist-c20" in finding.verification


def test_the_orchestration_leaf_is_ruled_out_with_its_reason() -> None:
    ideal = record_for(busy_inline_history(), batch=200, parameters={"max_concurrency": 20},
                       timing={"profile": "ideal", "history_event_ms": 0.0})  # fmt: skip
    diagnosis = rca.diagnose(ideal, analysis.stats(ideal))
    assert "not judged against a writer" in diagnosis.ruled_out["ORCHESTRATION-BOUND"]
    calm = record_for(busy_inline_history(tickets=10, slots=2), batch=10, timing=AWS_TIMING)
    assert "of its writer's capacity" in rca.diagnose(calm, analysis.stats(calm)).ruled_out["ORCHESTRATION-BOUND"]
    (execution,) = ideal.executions
    moved = dataclasses.replace(ideal, executions=(dataclasses.replace(execution, map_mode="distributed"),))
    assert "distributed" in rca.diagnose(moved, analysis.stats(moved)).ruled_out["ORCHESTRATION-BOUND"]


def test_child_executions_are_priced_standard_by_transition_express_by_request_and_time() -> None:
    record = record_for(busy_inline_history(tickets=4, slots=4), batch=4)
    (execution,) = record.executions
    base = analysis.stats(record).cost
    assert base is not None
    standard = model.MapRun("arn:mr", "SUCCEEDED", "STANDARD", 4, children=4, children_read=4,
                            child_state_transitions=12)  # fmt: skip
    express = model.MapRun("arn:mr", "SUCCEEDED", "EXPRESS", 4, children=4, children_read=4,
                           child_state_transitions=12, child_billed_ms=2000.0)  # fmt: skip
    priced = {}
    for run in (standard, express):
        moved = dataclasses.replace(execution, map_mode="distributed", map_runs=(run,))
        cost = analysis.stats(dataclasses.replace(record, executions=(moved,))).cost
        assert cost is not None
        priced[run.execution_type] = cost
    assert priced["STANDARD"].state_transitions == base.state_transitions + 12
    assert priced["EXPRESS"].state_transitions == base.state_transitions
    assert priced["EXPRESS"].express_requests == 4 and priced["EXPRESS"].express_gb_s == round(2.0 * 64 / 1024, 4)
    assert priced["STANDARD"].usd > base.usd and priced["EXPRESS"].usd > base.usd


def test_the_console_shows_a_distributed_maps_counts_from_its_map_run() -> None:
    from scaleorfail.console.executions import map_run_counts
    from scaleorfail.console.model import ExecutionModel

    h = HistoryBuilder()
    start = h.add("ExecutionStarted", 0, None, executionStartedEventDetails={"input": "{}"})
    entered = h.add("MapStateEntered", 1, start, stateEnteredEventDetails={"name": "ProcessTickets"})
    started = h.add("MapStateStarted", 2, entered, mapStateStartedEventDetails={"length": 0})
    h.add("MapRunStarted", 3, started, mapRunStartedEventDetails={"mapRunArn": "arn:mr"})
    model_ = ExecutionModel({"StartAt": "ProcessTickets", "States": {"ProcessTickets": distributed()}})
    model_.add(h.events)
    run = model_.maps["ProcessTickets"]
    assert run.map_run_arn == "arn:mr" and run.counts()["length"] == 0
    run.reported = map_run_counts({"total": 9, "pending": 2, "running": 3, "succeeded": 3, "timedOut": 1})
    assert run.counts() == {"length": 9, "pending": 2, "running": 3, "succeeded": 3, "failed": 1, "aborted": 0}
