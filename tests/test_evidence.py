"""Evidence frozen with the run: neighbouring runs do not leak into a report, and a restart loses nothing.

The three cases of issue 13, reproduced on the emulator: a c=2 run beside a c=5 one (CloudWatch's
Embed ConcurrentExecutions maximum of those minutes is the neighbour's), two throttled runs side
by side (CloudWatch's Throttles of those minutes count both), and a bad-input run's report after
an emulator restart (its log evidence must still be there).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator_support import Emulator, deploy, running_emulator

from scaleorfail import scenarios
from scaleorfail.emulator import control
from scaleorfail.evidence import analysis, rca
from scaleorfail.load import runner
from scaleorfail.record.model import HarvestRecord
from scaleorfail.usecases.diagnose import diagnose_run
from scaleorfail.usecases.harvest import harvest_runs
from scaleorfail.usecases.scenario import account_limit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    root = tmp_path_factory.mktemp("evidence")
    os.environ["SOF_RUNS_DIR"] = str(root / "runs")
    try:
        with running_emulator(root / "state") as emulator:
            deploy(emulator, simulated_infer_ms=200)
            yield emulator
    finally:
        os.environ.pop("SOF_RUNS_DIR", None)


def side_by_side(first: tuple[int, int, str], second: tuple[int, int, str]) -> tuple[Path, Path]:
    """Two bursts started together (tickets, max_concurrency, label): their executions overlap in time."""
    made: dict[str, Path] = {}
    errors: list[BaseException] = []

    def burst(tickets: int, c: int, label: str) -> None:
        try:
            made[label] = runner.burst("local", tickets, c, label)
        except BaseException as error:  # re-raised below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=burst, args=spec) for spec in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # each burst ends on its own (its harness's drain); a hang is the suite's timeout
    assert not errors, errors
    return made[first[2]], made[second[2]]


def harvested(run_dir: Path) -> HarvestRecord:
    (record,) = harvest_runs([str(run_dir)], quiet=True)
    return record


def cited(diagnosis: rca.Diagnosis) -> list[rca.Evidence]:
    return [e for f in diagnosis.findings for e in f.evidence]


def test_a_c2_report_does_not_cite_a_neighbours_concurrency(lab: Emulator) -> None:
    # 60 tickets on 2 slots: the run's few cold starts stay above Embed's p95 (see test_diagnose.CASES)
    neighbour, run_dir = side_by_side((60, 5, "neighbour-c5"), (60, 2, "queue-c2"))
    record = harvested(run_dir)
    assert analysis.peak_tasks(record, "Embed") == 2
    cloudwatch = record.metrics.value("embed", "ConcurrentExecutions_Maximum")
    assert cloudwatch is not None and cloudwatch > 2  # the neighbour's concurrency is in the same minutes
    assert record.metrics.shared and any(name.startswith(neighbour.name) for name in record.metrics.shared_with)
    diagnosis = diagnose_run(run_dir, record=record)
    assert "THROTTLED (queueing at the Map's max_concurrency (throughput-bound))" in diagnosis.classification, (
        diagnosis.ruled_out
    )
    lines = [e.text for e in cited(diagnosis)]
    assert not any(f"ConcurrentExecutions max = {cloudwatch:.0f} (plateau" in line for line in lines), lines
    plateau = next(e for e in cited(diagnosis) if "Embed invocations ran at once" in e.text)
    assert plateau.source == "history" and "at most 2 Embed invocations" in plateau.text
    assert "(plateau at the knob)" in plateau.text and "not cited as the run's" in plateau.text
    assert "other execution(s) of the state machine ran in the same minutes" in plateau.text
    assert any("CloudWatch metrics:" in note for note in diagnosis.notes)


def test_a_throttled_report_counts_its_own_throttles(lab: Emulator) -> None:
    with account_limit(lab.target, 10):
        first, second = side_by_side((30, 20, "throttled-a"), (30, 20, "throttled-b"))
    records = [harvested(first), harvested(second)]
    own = [analysis.stats(r).throttles for r in records]
    assert all(own)  # both were throttled
    for record, mine in zip(records, own, strict=True):
        diagnosis = diagnose_run(Path(), record=record)
        assert "THROTTLED (hard limit (429))" in diagnosis.classification
        lines = [e.text for e in cited(diagnosis)]
        assert f"{mine} task attempt(s) refused with Lambda.TooManyRequestsException (HTTP 429)" in lines
        counted = record.metrics.value("account", "Throttles_Sum") or 0
        if counted > mine:  # CloudWatch's minutes hold the other run's 429s too: never cited as this run's
            metric = next(e for e in cited(diagnosis) if e.source == "metric" and "Throttles" in e.text)
            assert "not this run's alone" in metric.text or "more than the histories'" in metric.text
        logged = next(e for e in cited(diagnosis) if "TaskFailed" in e.text)
        assert f"{record.logs.task_failures['Lambda.TooManyRequestsException']} TaskFailed" in logged.text
        assert record.logs.execution_scope is not None and record.logs.execution_scope.by == "execution ARN"
    # side by side, CloudWatch's minutes hold both runs' 429s: more than at least one run's own
    assert any((r.metrics.value("account", "Throttles_Sum") or 0) > mine for r, mine in zip(records, own, strict=True))


def test_a_bad_input_report_keeps_its_log_evidence_after_an_emulator_restart(lab: Emulator) -> None:
    tickets, size = scenarios.ticket_file("oversized", 1)
    assert tickets is not None
    try:
        run_dir = runner.burst("local", size, 2, "bad-restart", ticket_file=tickets)
    finally:
        tickets.unlink(missing_ok=True)
    before = diagnose_run(run_dir, quiet=True)
    record = harvested(run_dir)
    assert record.logs.lambda_scope is not None and "by request id" in record.logs.lambda_scope.by
    # the handler's line names its invocation, and the record ties it to the attempt the history holds
    (row,) = [row for row in record.logs.rows if row.message.startswith("{")]
    line = json.loads(row.message)
    attempts = [a for e in record.executions for i in e.items for v in i.visits for a in v.attempts]
    (failed,) = [a for a in attempts if a.error == "PayloadTooLarge"]
    assert line["function_request_id"] == row.request_id == failed.request_id
    assert line["error"] == "PayloadTooLarge" and line["function_name"].endswith("preprocess")
    control.down(lab.state_dir)  # the emulator keeps everything in memory: its logs go with it
    control.up(lab.settings, lab.state_dir, lab.state_dir / "emulator.log")
    assert control.running(lab.state_dir) is not None
    after = diagnose_run(run_dir, quiet=True)
    assert after.classification == before.classification == ["BAD INPUT (failed the execution)"]
    logged = [e for e in cited(after) if e.source == "log"]
    assert len(logged) == 1 and "match PayloadTooLarge" in logged[0].text
    assert "FilterLogEvents /aws/lambda/" in logged[0].how and "kept by Preprocess by request id" in logged[0].how
    assert rca.to_markdown(after) == rca.to_markdown(before)
