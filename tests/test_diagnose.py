"""Scenarios, RCA, Logs Insights and the portfolio - on a real emulator, plus RCA edge cases."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_support import CHROMIUM, rendered
from emulator_support import Emulator, deploy
from emulator_support import lab as emulator_lab

from scaleorfail import scenarios
from scaleorfail.evidence import analysis, rca
from scaleorfail.load import runner
from scaleorfail.record import model
from scaleorfail.usecases.diagnose import diagnose_run
from scaleorfail.usecases.harvest import harvest_runs
from scaleorfail.usecases.scenario import account_limit

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with emulator_lab(tmp_path_factory.mktemp("diagnose")) as emulator:
        deploy(emulator)
        yield emulator


def leaf(names: list[str]) -> set[str]:
    short = {
        "THROTTLED (queueing at the Map's max_concurrency (throughput-bound))": "QUEUEING",
        "THROTTLED (hard limit (429))": "THROTTLED-429",
        "EXHAUSTED (out of memory)": "EXHAUSTED",
        "TIMED OUT (dependency)": "TIMED OUT",
        "BAD INPUT (failed the execution)": "BAD INPUT",
        "BAD INPUT (quarantined)": "BAD INPUT",
    }
    return {short.get(n, n) for n in names}


def play(emulator: Emulator, spec: scenarios.RunSpec, seed: str, limit: int | None = None) -> rca.Diagnosis:
    """Deploy the spec's variables, run it, harvest it, diagnose it (what `sof scenario` + `sof rca` do)."""
    deploy(emulator, infer_seed=seed, **spec.variables)
    tickets, size = scenarios.ticket_file(spec.batch, spec.tickets)
    with account_limit(emulator.target, limit) if limit else nullcontext():
        run_dir = runner.burst("local", size, spec.max_concurrency, f"{spec.label}-s{seed}", ticket_file=tickets)
        harvest_runs([str(run_dir)], quiet=True)
    return diagnose_run(run_dir, quiet=True)


def oom(label: str, model_mb: int, memory_mb: int) -> scenarios.RunSpec:
    # a minute to die in: on a busy machine touching the model's pages can outlast Embed's 6 s timeout
    variables = {"model_memory_mb": model_mb, "embed_memory_mb": memory_mb, "embed_timeout_seconds": 60}
    return scenarios.RunSpec(label, 4, 2, {**variables, **scenarios.NO_RETRY})


def slow(label: str, latency_ms: int, timeout_ms: int) -> scenarios.RunSpec:
    variables = {"dependency_latency_ms": latency_ms, "dependency_timeout_ms": timeout_ms, **scenarios.SHORT_RETRY}
    return scenarios.RunSpec(label, 2, 2, variables)


# (expected leaf, run, account concurrency): every scenario with parameter variations; seeds alternate.
# A queueing run has 20+ tickets per Map slot: its c cold starts (each a process start, slower on a busy
# machine) stay above Embed's p95, which then reads the warm latency the classifier judges.
CASES: list[tuple[str, scenarios.RunSpec, int | None]] = [
    ("QUEUEING", scenarios.RunSpec("queueing-c2", 60, 2), None),
    ("QUEUEING", scenarios.RunSpec("queueing-c1", 40, 1), None),
    ("THROTTLED-429", scenarios.RunSpec("thr-noretry", 30, 20, scenarios.NO_RETRY), 10),
    ("THROTTLED-429", scenarios.RunSpec("thr-retry", 30, 15), 10),
    ("EXHAUSTED", oom("oom-200", 200, 128), None),
    ("EXHAUSTED", oom("oom-400", 400, 256), None),
    ("TIMED OUT", slow("dep-600", 600, 200), None),
    ("TIMED OUT", slow("dep-300", 300, 100), None),
    ("BAD INPUT", scenarios.RunSpec("bad-oversized", 1, 2, batch="oversized"), None),
    ("BAD INPUT", scenarios.RunSpec("bad-mixed", 6, 3, {"bad_input_policy": "quarantine"}, batch="mixed"), None),
    ("HEALTHY", scenarios.RunSpec("healthy", 6, 6), None),
]


@pytest.fixture(scope="module")
def played(lab: Emulator) -> Iterator[list[rca.Diagnosis]]:
    """Every case played once (seeds alternate): the matrix judges their diagnoses, the Insights queries read
    their log lines (throttles, out-of-memory deaths, cold starts)."""
    yield [play(lab, spec, str(1 + index % 2), limit) for index, (_, spec, limit) in enumerate(CASES)]
    deploy(lab)


def test_every_scenario_is_classified_correctly_confusion_matrix(
    played: list[rca.Diagnosis], capsys: pytest.CaptureFixture[str]
) -> None:
    matrix: Counter[tuple[str, str]] = Counter()
    wrong = []
    for (expected, spec, _), diagnosis in zip(CASES, played, strict=True):
        predicted = leaf(diagnosis.classification)
        matrix[(expected, " + ".join(sorted(predicted)))] += 1
        if predicted != {expected}:
            wrong.append((spec.label, expected, predicted, diagnosis.notes))
        for finding in diagnosis.findings:
            assert finding.evidence, f"{spec.label}: {finding.leaf} without evidence"
            assert finding.hypothesis.startswith("Hypothesis") and finding.action and finding.verification
    labels = sorted({e for e, _ in matrix} | {p for _, p in matrix})
    with capsys.disabled():
        print("\nRCA confusion matrix (rows: scenario, columns: classification)")
        print("".ljust(16) + "".join(label[:14].ljust(16) for label in labels))
        for row in labels:
            print(row[:14].ljust(16) + "".join(str(matrix[(row, col)]).ljust(16) for col in labels))
    assert wrong == []


def test_a_mixed_run_reports_both_causes(lab: Emulator) -> None:
    spec = scenarios.RunSpec("mixed", 30, 20, {"bad_input_policy": "quarantine"}, batch="mixed")
    diagnosis = play(lab, spec, "3", limit=10)
    deploy(lab)
    assert leaf(diagnosis.classification) == {"THROTTLED-429", "BAD INPUT"}
    assert {f.bone for f in diagnosis.findings} == {1, 4}
    text = rca.to_markdown(diagnosis)
    assert "**Hypothesis** (to be verified, not evidence)" in text and "Ruled out" in text
    assert "EXHAUSTED: 0 out-of-memory deaths (Runtime.OutOfMemory" in text


def test_the_report_cites_where_each_piece_of_evidence_comes_from(lab: Emulator) -> None:
    diagnosis = play(lab, scenarios.RunSpec("cite-queueing", 60, 2), "4")
    (finding,) = diagnosis.findings
    assert all(e.how for e in finding.evidence)
    shared = any("CloudWatch metrics:" in note for note in diagnosis.notes)  # earlier runs in the same minutes
    plateau = next(e for e in finding.evidence if ("Embed" in e.text and "at once" in e.text) or "Concurrent" in e.text)
    if shared:  # the plateau comes from the histories, and the line says why CloudWatch's is not cited
        assert plateau.source == "history" and "not cited as the run's" in plateau.text
    else:
        assert plateau.source == "metric" and plateau.how.startswith("GetMetricData")
    assert {e.source for e in finding.evidence} >= {"history"}
    assert "max_concurrency 10" in finding.action
    assert "MAX_CONCURRENCY=10" in finding.verification and "sof compare" in finding.verification


# -- RCA edge cases on synthetic harvests --------------------------------------------------------------


T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def synthetic(executions: list[model.Execution], c: int = 2, **fields: Any) -> model.HarvestRecord:
    return model.HarvestRecord(
        run_id="synthetic",
        label="synthetic",
        target="local",
        profile="single-batch",
        parameters={"max_concurrency": c},
        region="us-east-1",
        window=model.Window(T0, T0 + timedelta(seconds=1)),
        executions=tuple(executions),
        reconciliation=model.Reconciliation(len(executions), {}, (), 0, True),
        metrics=model.Metrics(60, T0, T0 + timedelta(minutes=1), False, None, {}),
        **fields,
    )


def item(index: int, start: float, end: float, errors: list[str | None]) -> model.Item:
    attempts = tuple(
        model.Attempt(start + 1 + i * 10, start + 2 + i * 10, start + 9 + i * 10, e) for i, e in enumerate(errors)
    )
    return model.Item(
        index,
        start,
        end,
        "SUCCEEDED" if errors[-1] is None else "FAILED",
        (model.Visit("Embed", start, end if errors[-1] is None else None, attempts),),
    )


def execution(items: list[model.Item], status: str = "SUCCEEDED", error: str | None = None) -> model.Execution:
    return model.Execution(
        "synthetic-0-0",
        "arn:synthetic",
        status,
        0.0,
        1000.0,
        len(items),
        history_read=True,
        error=error,
        map_started=0.0,
        items=tuple(items),
    )


def diagnose(record: model.HarvestRecord) -> rca.Diagnosis:
    return rca.diagnose(record, analysis.stats(record))


def test_no_data_is_insufficient_not_healthy() -> None:
    diagnosis = diagnose(synthetic([]))
    assert diagnosis.classification == ["INSUFFICIENT DATA"] and not diagnosis.findings
    assert all("not judged" in why for why in diagnosis.ruled_out.values())


def test_all_failed_with_an_error_outside_the_tree_is_unclassified() -> None:
    failing = execution([item(0, 0, 10, ["Lambda.Unknown"])], "FAILED", "Lambda.Unknown")
    diagnosis = diagnose(synthetic([failing]))
    assert diagnosis.classification == ["UNCLASSIFIED"]
    assert any("Lambda.Unknown" in n for n in diagnosis.notes)


def test_a_tiny_run_is_not_called_queueing() -> None:
    diagnosis = diagnose(synthetic([execution([item(0, 0, 10, [None]), item(1, 500, 510, [None])])]))
    assert diagnosis.classification == ["HEALTHY"]
    assert "too few tickets" in diagnosis.ruled_out["THROTTLED"] or "small" in diagnosis.ruled_out["THROTTLED"]


def test_every_leaf_is_found_in_a_synthetic_history_with_its_error() -> None:
    for error, expected in (
        ("Lambda.TooManyRequestsException", "THROTTLED-429"),
        ("Runtime.OutOfMemory", "EXHAUSTED"),
        ("DependencyTimeout", "TIMED OUT"),
        ("PayloadTooLarge", "BAD INPUT"),
    ):
        record = synthetic([execution([item(0, 0, 30, [error, None])])])
        assert leaf(diagnose(record).classification) == {expected}, error


# -- Insights, portfolio, commands -------------------------------------------------------------------------


def sof(lab: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOF_STATE_DIR": str(lab.state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "scaleorfail.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )


def test_the_added_insights_queries_return_their_rows(lab: Emulator, played: list[rca.Diagnosis]) -> None:
    # the played cases logged throttles (thr-*: account concurrency 10), out-of-memory deaths at 128 MB (oom-200)
    cold = sof(lab, "insights", "cold-starts", "--since", "30m")
    assert cold.returncode == 0 and "scale-or-fail-embed" in cold.stdout and "avg_init_ms" in cold.stdout
    memory = sof(lab, "insights", "memory-used", "--since", "30m")
    assert "max_used_mb" in memory.stdout and "128" in memory.stdout
    errors = sof(lab, "insights", "errors-by-type", "--since", "30m")
    assert "Runtime.OutOfMemory" in errors.stdout
    throttled = sof(lab, "insights", "throttled-retried", "--since", "30m")
    assert "Lambda.TooManyRequestsException" in throttled.stdout
    custom = sof(lab, "insights", "--query", "filter @type = 'REPORT' | stats count(*) as n", "--since", "30m")
    assert custom.returncode == 0 and "n" in custom.stdout


def test_the_portfolio_collects_every_artefact(lab: Emulator, tmp_path: Path) -> None:
    harvest_runs([str(runner.burst("local", 3, None, "happy-path"))], quiet=True)  # Activity 2's run
    for c in (2, 10):
        run_dir = runner.burst("local", 8, c, f"portfolio-c{c}")
        harvest_runs([str(run_dir)], quiet=True)
    play(lab, scenarios.RunSpec("portfolio-bad", 1, 2, batch="oversized"), "6")
    done = sof(lab, "portfolio", "--output", str(tmp_path / "bundle"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("[x]") == 9 and "[ ]" not in done.stdout
    page = (tmp_path / "bundle" / "portfolio.html").read_text()
    assert page.count("<img") >= 3 and "PayloadTooLarge" in page and "Hypothesis" in page
    assert "<pre>" not in page and page.count("<table>") >= 2  # the comparison and the Insights output
    assert (tmp_path / "bundle" / "execution-graph.png").stat().st_size > 10_000
    if CHROMIUM or os.environ.get("SOF_REQUIRE_CHROMIUM"):
        (rows, images, raw), _ = rendered(tmp_path / "bundle" / "portfolio.html", tmp_path)
        # the wall-and-fix table (header + 2) and the Insights rows (header + 3 steps), rendered; no raw Markdown
        assert rows >= 7 and images >= 3 and raw == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scenario", "tsunami"], "no scenario named 'tsunami'"),
        (["rca", "no-such-run"], "no run 'no-such-run'"),
        (["insights", "no-such-query"], "no query named 'no-such-query'"),
        (["insights"], "give a query name or --query"),
        (["insights", "recent-lines", "--since", "soon"], "is not a duration"),
        (["portfolio", "--wall", "nope"], "no run 'nope'"),
        (["sweep", "--concurrency", "0,2"], "between 1 and 40"),
        (["compare", "--baseline", "nope"], "no run 'nope' to use as the baseline"),
    ],
)
def test_bad_arguments_get_a_clear_error(lab: Emulator, args: list[str], message: str) -> None:
    done = sof(lab, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_memory_at_its_limit_in_the_logs_alone_is_not_exhausted() -> None:
    # an out-of-memory death in the histories decides; REPORT lines at the limit only corroborate it
    at_limit = model.Logs(
        functions=(model.FunctionLogs("Embed", "/aws/lambda/scale-or-fail-embed", 2, 0, None, 128, 128, 1),)
    )
    record = synthetic([execution([item(0, 0, 30, ["DependencyTimeout", None])])], logs=at_limit)
    diagnosis = rca.diagnose(record, analysis.stats(record))
    assert leaf(diagnosis.classification) == {"TIMED OUT"}
    assert "no invocation of this run died of it" in diagnosis.ruled_out["EXHAUSTED"]
    oom = synthetic(
        [execution([item(0, 0, 30, ["Runtime.OutOfMemory"])], "FAILED", "Runtime.OutOfMemory")], logs=at_limit
    )
    found = rca.diagnose(oom, analysis.stats(oom))
    (finding,) = found.findings
    assert finding.leaf == "EXHAUSTED" and {e.source for e in finding.evidence} == {"history", "log"}
