"""Harvest, compare, report and the demo, against a real emulator."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import waiting
from browser_support import CHROMIUM, CHROMIUM_FLAGS, needs_chromium, png_size, rendered
from emulator_support import Emulator, deploy, free_port, running_emulator

from scaleorfail.emulator.cpuwatch import cpu_stall_s
from scaleorfail.evidence import analysis, compare, report
from scaleorfail.harvest import collect
from scaleorfail.load import runner
from scaleorfail.usecases.harvest import harvest_runs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, list[Path]]]:
    """An emulator with two real load runs: 12 tickets at max_concurrency 2 and at 6."""
    root = tmp_path_factory.mktemp("harvest")
    os.environ["SOF_RUNS_DIR"] = str(root / "runs")
    try:
        with running_emulator(root / "state") as emulator:
            deploy(emulator, simulated_infer_ms=60)
            runs = [runner.burst("local", 12, c, f"h-c{c}") for c in (2, 6)]
            yield emulator, runs
    finally:
        os.environ.pop("SOF_RUNS_DIR", None)


def test_harvest_reads_every_execution_and_reconciles(lab: tuple[Emulator, list[Path]]) -> None:
    _, runs = lab
    record = collect.harvest(runs[0], collect.Options(quiet=True))
    assert record.schema == "scale-or-fail/harvest" and record.version == 3
    assert record.timing["profile"] == "ideal" and record.timing["history_event_ms"] == 0.0
    (execution,) = record.executions
    # the Map's own close is the Map's: every ticket's last visit ends at its own Postprocess exit
    assert [s.step for s in execution.states] == ["ApplyDefaults", "ProcessTickets"]
    assert all(s.exited is not None for s in execution.states)
    assert all((i.visits[-1].exited or 0) <= (i.end or 0) for i in execution.items)
    assert execution.status == "SUCCEEDED" and len(execution.items) == 12
    assert all(len(i.visits) == 3 for i in execution.items)
    # every attempt names its Lambda invocation, as AWS's lambda:invoke result does
    assert all(a.request_id for i in execution.items for v in i.visits for a in v.attempts)
    recon = record.reconciliation
    assert recon.balanced and recon.harvested_by_status == {"SUCCEEDED": 1} and recon.missing == ()
    calls = record.api_calls
    assert calls["GetExecutionHistory"] == 1  # 12 tickets: one page of history
    assert calls["GetMetricData"] == 1
    assert "DescribeExecution" not in calls  # statuses come in bulk, not one call per execution
    assert record.functions["embed"].memory_mb == 256
    # CloudWatch is minute-grained: the other run of this module may share the minute (and is named if so)
    assert (record.metrics.value("embed", "Invocations_Sum") or 0) >= 12
    assert record.metrics.shared == bool(record.metrics.shared_with)
    # the log evidence is this run's: its 36 invocations' REPORT lines, by request id
    logs = record.logs
    assert logs.problems == () and logs.lambda_scope is not None and "by request id" in logs.lambda_scope.by
    assert sum(f.invocations for f in logs.functions) == 36
    assert record.account.lambda_concurrency == 1000
    (query,) = logs.insights
    assert query.key == "duration-by-step" and {row["step"] for row in query.rows} == {
        "preprocess",
        "embed",
        "postprocess",
    }
    assert all(int(row["invocations"]) == 12 for row in query.rows)  # this run's window only
    # the emulator's own CPU over the run's window: what record/cpu.py judges EMULATOR-BOUND by
    cpu = record.emulator_cpu
    assert cpu["samples"] >= 2 and cpu["cpus"] >= 1 and 0 < cpu["server_cores"] < 4, cpu
    assert cpu["start"] == record.window.start.timestamp() and cpu["server_cores_peak"] >= cpu["server_cores"]
    # and the machine's: how long runnable tasks waited for a CPU (HOST-CONTENDED), where Linux tells it
    told = cpu_stall_s() is not None
    assert (cpu["cpu_stalled"] is not None) is told and (not told or 0 <= cpu["cpu_stalled"] <= 1), cpu
    assert cpu["machine_busy"] is None or 0 <= cpu["machine_busy"] <= 1, cpu
    emulator, _ = lab
    with pytest.raises(urllib.error.HTTPError) as refused:  # a malformed window is the client's mistake: 400
        urllib.request.urlopen(f"{emulator.url}/_sof/cpu?start=soon&end=later", timeout=10)
    assert refused.value.code == 400


def test_full_garbage_collections_wait_for_the_quiet_after_the_runs(lab: tuple[Emulator, list[Path]]) -> None:
    # emulator/gcpolicy.py: a full collection walks the whole heap holding the GIL; the runs ended, so
    # the emulator is quiet and one has run, none of them forced in the middle of work
    emulator, _ = lab

    def gc_stats() -> dict[str, float]:
        with urllib.request.urlopen(f"{emulator.url}/_sof/health", timeout=10) as answer:
            return dict(json.loads(answer.read())["gc"])

    found = waiting.wait_for(
        lambda: (stats := gc_stats())["full_collections"] >= 1 and stats,
        "a full collection in the quiet after the runs",
        quiet_s=60,  # LEAST_APART_S (10 s) after the emulator started at the latest, then QUIET_S
        interval=0.5,
    )
    assert found["while_busy"] == 0 and found["frozen_at_start"] > 10_000 and found["longest_pause_ms"] > 0, found


def test_the_cache_makes_harvest_instant_and_idempotent(
    lab: tuple[Emulator, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, runs = lab
    first = collect.harvest(runs[1], collect.Options(quiet=True))
    stamp = collect.harvest_path(runs[1]).stat().st_mtime_ns

    def no_api(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached harvest must not call the API")

    monkeypatch.setattr(collect.Collector, "collect", no_api)
    assert collect.harvest(runs[1], collect.Options(quiet=True)) == first
    assert collect.harvest_path(runs[1]).stat().st_mtime_ns == stamp
    monkeypatch.undo()
    refreshed = collect.harvest(runs[1], collect.Options(quiet=True, refresh=True))
    assert refreshed.executions == first.executions


def test_missing_and_unconfirmed_executions_are_accounted_for(lab: tuple[Emulator, list[Path]], tmp_path: Path) -> None:
    _, runs = lab
    copy = tmp_path / "edited"
    shutil.copytree(runs[0], copy)
    (copy / "harvest.json").unlink(missing_ok=True)
    for journal in copy.glob("journal*.jsonl"):
        journal.unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    real = manifest["executions"].pop()
    manifest["unconfirmed"] = [
        {"name": real["name"], "at": real["started_at"], "batch_size": 12, "worker": 0, "seq": 0},
        {"name": "never-started", "at": real["started_at"], "batch_size": 12, "worker": 0, "seq": 1},
    ]
    manifest["executions"].append({**real, "name": "ghost-0-9", "arn": real["arn"] + "-ghost", "seq": 9})
    (copy / "manifest.json").write_text(json.dumps(manifest))
    record = collect.harvest(copy, collect.Options(quiet=True, wait_s=2))
    recon = record.reconciliation
    assert recon.unconfirmed_found == (real["name"],)
    assert recon.unconfirmed_absent == ("never-started",)
    assert [m.name for m in recon.missing] == ["ghost-0-9"]
    assert "not found" in recon.missing[0].reason
    assert recon.balanced  # 1 started + 1 found = 1 harvested + 1 missing


def test_cloudwatch_metrics_read_too_soon_on_aws_are_provisional_not_final(
    lab: tuple[Emulator, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The AWS path: the harvest's boto3 clients reach the emulator through AWS_ENDPOINT_URL."""
    emulator, runs = lab
    copy = tmp_path / "on-aws"
    shutil.copytree(runs[0], copy)
    (copy / "harvest.json").unlink(missing_ok=True)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["target"] = "aws"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    for name, value in {
        "AWS_ENDPOINT_URL": emulator.url,
        "AWS_ACCESS_KEY_ID": emulator.target.access_key or "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    first = collect.harvest(copy, collect.Options(quiet=True, wait_s=2))
    assert first.metrics.provisional and not first.final
    assert any("CloudWatch metrics provisional until" in p for p in first.pending)
    assert collect.read_cached(copy) is None  # never served as the final answer
    monkeypatch.setattr(collect, "METRICS_SETTLE_S", -600.0)  # ... the run's minutes, and the delay, have passed
    second = collect.harvest(copy, collect.Options(quiet=True, wait_s=2))
    assert second.final and not second.metrics.provisional, second.pending
    assert second.reused_executions == 1  # the finished execution was kept, only the metrics read again
    assert collect.read_cached(copy) == second


def test_compare_and_report_write_every_artefact(lab: tuple[Emulator, list[Path]], tmp_path: Path) -> None:
    _, runs = lab
    records = harvest_runs([str(r) for r in runs], quiet=True)
    stats = [analysis.stats(r) for r in records]
    baseline = compare.with_baseline(stats)
    assert baseline is not None and baseline.max_concurrency == 2
    faster = stats[1]
    # speed-up is the throughput ratio to the baseline (how large it is depends on the machine: bench/)
    assert faster.speedup is not None and faster.throughput and baseline.throughput
    assert abs(faster.speedup - faster.throughput / baseline.throughput) < 0.01
    assert faster.peak_concurrency <= 6 and stats[0].peak_concurrency <= 2
    written = compare.write(stats, baseline, tmp_path / "compare")
    assert written["csv"].read_text().count("\n") == 3
    assert json.loads(written["json"].read_text())["baseline"] == baseline.run_id
    paths = report.build(stats, records, baseline, None, tmp_path / "report")
    for name in ("throughput", "latency", "timeline", "throttles"):
        width, height = png_size(paths[name])
        assert width >= 600 and height >= 300 and paths[name].stat().st_size > 10_000
    page = paths["html"].read_text()
    assert page.count("<img") == 4 and "data:image/png;base64," in page and "<table>" in page
    assert "h-c6" in paths["md"].read_text()


@needs_chromium
def test_the_html_report_renders_in_headless_chromium(lab: tuple[Emulator, list[Path]], tmp_path: Path) -> None:
    _, runs = lab
    records = harvest_runs([str(r) for r in runs], quiet=True)
    stats = [analysis.stats(r) for r in records]
    paths = report.build(stats, records, compare.with_baseline(stats), None, tmp_path / "report")
    (rows, images, raw), caption = rendered(paths["html"], tmp_path)
    # the comparison's story and its details (header + 2 rows each), where the time goes (header + 3 steps of
    # each run), all 4 plots decoded at full width, no raw Markdown
    assert (rows, images, raw) == (3 + 3 + 1 + 3 * len(stats), 4, 0)
    # the timeline panels share one time axis, as long as the longer run (the c=2 one)
    longest = max(r.wall_s or 0 for r in stats)
    shared = re.search(r"share one time axis, 0-([\d.]+) s", caption)
    assert shared and "2 panel(s)" in caption, caption
    assert longest <= float(shared.group(1)) <= longest + 1.0
    shot = tmp_path / "shot.png"
    shooting = waiting.run(
        [
            CHROMIUM or "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1400,2000",
            f"--screenshot={shot}",
            paths["html"].as_uri(),
        ]
    )
    assert shooting.returncode == 0, shooting.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a rendered page with plots, not a blank one
    assert png_size(shot) == (1400, 2000)


def test_make_demo_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SOF_STATE_DIR": str(tmp_path / "state"),
        "SOF_RUNS_DIR": str(tmp_path / "runs"),
        "SOF_EMULATOR_PORT": str(free_port()),
    }
    done = waiting.run(["make", "-s", "demo", "DEMO_N=16"], cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "demo-c2" in out and "demo-c10" in out and "report:" in out
    assert "emulator timing profile: aws" in out  # the demo runs the calibrated profile
    assert (tmp_path / "runs" / "demo-report" / "report.html").exists()
    lines = [line for line in out.splitlines() if line.startswith("demo-c")]
    assert len(lines) == 2 and all(" 1/0 " in line for line in lines)
    table = out[out.index("\nrun ") + 1 : out.index("  - ")]
    assert max(len(line) for line in table.splitlines()) <= 120  # the terminal table fits 120 columns
    assert not (tmp_path / "state" / "emulator.json").exists()  # the demo stopped the emulator it started
    # the demo's runs were made by the project's own virtualenv through make: their manifests say so
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/manifest.json")]
    assert sorted(m["label"] for m in manifests) == ["demo-c10", "demo-c2"]
    assert all(m["status"] == "complete" for m in manifests)
