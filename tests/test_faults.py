"""Fault injection: kill the emulator, a Locust worker or the harness at chosen moments, overload the
emulator - and check that the manifest and the harvest account for every execution, and that each
failure is said in one line. The reliability table of docs/reliability.md is generated from these tests
(tests/fault_table.py; the last test keeps it in sync): `make test` runs a module on one worker
(tests/scheduling.py), so every row is there.

No verdict here depends on how fast the machine is: a wait lasts while the harness or the
emulator makes progress (tests/waiting.py), and a fault's handling is told apart from the
fallback it replaces by what the harness says and records, not by how long it took.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import waiting
from emulator_support import Emulator, deploy, finished, running_emulator, tickets
from fault_table import Row, sync

from scaleorfail.emulator import control
from scaleorfail.harvest import collect
from scaleorfail.record.manifest import load
from scaleorfail.record.model import HarvestRecord

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
ROWS: dict[str, Row] = {}
FAULTS = (
    "emulator",
    "restart",
    "harness-kill",
    "harness-term",
    "worker",
    "orphans",
    "overload",
    "early-harvest",
    "retention",
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("faults")) as emulator:
        deploy(emulator)
        yield emulator


def environment(emulator: Emulator, runs: Path) -> dict[str, str]:
    return {**os.environ, "SOF_STATE_DIR": str(emulator.state_dir), "SOF_RUNS_DIR": str(runs), "PYTHONUNBUFFERED": "1"}


def start_locust(emulator: Emulator, runs: Path, run_id: str, *args: str) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--run-dir", str(runs),
        "--run-id", run_id, "--batch-size", "1", "--loglevel", "WARNING", "--only-summary", *args,
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        env=environment(emulator, runs),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def sof(emulator: Emulator, runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `sof` command; it may take as long as it (or the emulator) keeps working."""
    return waiting.run(
        [sys.executable, "-m", "scaleorfail.cli", *args],
        env=environment(emulator, runs),
        cwd=ROOT,
        pids=lambda: emulator.pids,
    )


def started_names(run_dir: Path) -> set[str]:
    """Executions journalled as started so far (every journal of the run)."""
    names: set[str] = set()
    for journal in run_dir.glob("journal*.jsonl"):
        for line in journal.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("kind") == "started":
                names.add(record["name"])
    return names


def wait_until(check: Callable[[], Any], process: subprocess.Popen[str], what: str) -> Any:
    """check() is true; it fails once the harness has neither started executions nor worked for a while."""
    return waiting.wait_for(check, what, pids=[process.pid])


def starts(process: subprocess.Popen[str], run_dir: Path, count: int) -> set[str]:
    """Wait until the run has journalled `count` starts."""
    return set(
        wait_until(
            lambda: len(names := started_names(run_dir)) >= count and names, process, f"{count} executions started"
        )
    )


def in_emulator(emulator: Emulator, prefix: str) -> list[str]:
    """Names of the run's executions the emulator holds (every occurrence: duplicates would show)."""
    sfn = emulator.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    names = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        names += [item["name"] for item in page["executions"] if item["name"].startswith(prefix + "-")]
    return names


def accounted(record: HarvestRecord) -> set[str]:
    return {e.name for e in record.executions} | {m.name for m in record.reconciliation.missing}


def record_row(key: str, fault: str, when: str, outcome: str) -> None:
    ROWS[key] = Row(FAULTS.index(key), fault, when, outcome)


def test_the_emulator_killed_mid_run_ends_the_run_at_once_and_harvest_says_why(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with running_emulator(tmp_path / "state") as emulator:
        deploy(emulator)
        process = start_locust(emulator, runs, "f-emu", "--profile", "steady", "--rate", "5", "--duration", "60")
        starts(process, runs / "f-emu", 5)
        server = control.read_state(emulator.state_dir)
        assert server is not None
        os.kill(server.pid, signal.SIGKILL)
        _, stderr = waiting.finish(process)
        assert process.returncode == 3, stderr[-2000:]
        assert "went away" in stderr and "Traceback" not in stderr
        manifest = load(runs / "f-emu")
        assert manifest.status == "failed" and manifest.failure and manifest.failure["kind"] == "emulator_gone"
        # noticed by its probe (refused connections), not by a minute of silence or the 900 s drain timeout
        assert "went away (connection refused)" in manifest.failure["message"]
        started = {e.name for e in manifest.executions}
        assert started >= started_names(runs / "f-emu") and len(started) >= 5
        record_row(
            "emulator",
            "emulator SIGKILLed",
            "5+ executions into a 60 s run",
            f"harness noticed at its next health probes (refused, 1 s apart; not the 900 s drain) and exited "
            f"{process.returncode} with one line; manifest "
            f"`{manifest.status}` (`{manifest.failure['kind']}`), every start recorded",
        )

        # Restarted (a new instance): the run's executions are gone, and harvest says so.
        control.down(emulator.state_dir)
        control.up(emulator.settings, emulator.state_dir, emulator.state_dir / "emulator.log")
        harvested = sof(emulator, runs, "harvest", "f-emu")
        assert harvested.returncode == 1, harvested.stderr
        assert "the emulator was restarted after this run" in harvested.stderr
        assert "Traceback" not in harvested.stderr
        record = collect.read_cached(runs / "f-emu")
        assert record is not None and record.final
        assert {m.name for m in record.reconciliation.missing} == started
        invoked = sof(emulator, runs, "invoke-one")
        assert invoked.returncode == 2 and "restarted since the pipeline was deployed" in invoked.stderr
        assert "Traceback" not in invoked.stderr
        record_row(
            "restart",
            "emulator restarted after a run",
            "before `sof harvest` / `sof invoke-one`",
            f"harvest exits {harvested.returncode}: every execution reported lost ('the emulator was restarted after "
            f"this run'); invoke-one exits {invoked.returncode}: 'deploy again'; no traceback",
        )


def test_a_harness_killed_with_sigkill_leaves_a_crashed_run_that_harvests_whole(
    shared: Emulator, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    process = start_locust(shared, runs, "f-kill", "--profile", "steady", "--rate", "8", "--duration", "30")
    starts(process, runs / "f-kill", 8)
    os.killpg(process.pid, signal.SIGKILL)
    waiting.finish(process)
    manifest = load(runs / "f-kill")
    assert manifest.status == "crashed"
    assert any("without" in note for note in manifest.notes)  # ended without a final write / end state
    emulated = in_emulator(shared, "f-kill")
    record = collect.harvest(runs / "f-kill", collect.Options(quiet=True, wait_s=60))
    assert record.final and record.reconciliation.balanced
    assert record.reconciliation.missing == ()
    assert accounted(record) == set(emulated)  # every execution the emulator ran, none invented
    record_row(
        "harness-kill",
        "harness SIGKILLed",
        "8+ executions into a 30 s run",
        f"manifest read back as `{manifest.status}` (dead harness pid), journal merged; harvest accounts for "
        "every execution the emulator holds, unconfirmed starts resolved",
    )


def test_a_harness_stopped_with_sigterm_writes_its_end_state_and_reports(shared: Emulator, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    process = start_locust(shared, runs, "f-term", "--profile", "steady", "--rate", "8", "--duration", "30")
    starts(process, runs / "f-term", 8)
    process.send_signal(signal.SIGTERM)
    _, stderr = waiting.finish(process)
    manifest = load(runs / "f-term")
    assert manifest.status == "interrupted", stderr[-2000:]
    run_dir = runs / "f-term"
    assert (run_dir / "locust.html").stat().st_size > 1000
    assert (run_dir / "locust_stats.csv").read_text().count("StartExecution") >= 1
    record = collect.harvest(run_dir, collect.Options(quiet=True, wait_s=60))
    emulated = in_emulator(shared, "f-term")
    assert record.reconciliation.balanced and accounted(record) == set(emulated)
    record_row(
        "harness-term",
        "harness SIGTERMed",
        "8+ executions into a 30 s run",
        f"handled like Ctrl+C: manifest `{manifest.status}`, Locust HTML and CSV written; harvest accounts for "
        "every execution",
    )


def children(process: subprocess.Popen[str], count: int) -> list[psutil.Process]:
    return list(
        wait_until(
            lambda: (found := psutil.Process(process.pid).children()) and len(found) >= count and found,
            process,
            f"{count} Locust worker processes",
        )
    )


def test_a_load_worker_killed_mid_run_is_accounted_for(shared: Emulator, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    process = start_locust(
        shared, runs, "f-worker", "--processes", "2", "--profile", "steady", "--rate", "6", "--duration", "8"
    )
    workers = children(process, 2)
    starts(process, runs / "f-worker", 6)
    workers[0].kill()
    _, stderr = waiting.finish(process)
    manifest = load(runs / "f-worker")
    assert manifest.status == "complete", stderr[-2000:]
    assert any("went missing" in note for note in manifest.notes)
    started = {e.name for e in manifest.executions}
    assert {f.name for f in manifest.finished} == started  # the coordinator tracked the lost worker's executions
    emulated = in_emulator(shared, "f-worker")
    assert set(emulated) <= started | {u.name for u in manifest.unconfirmed}
    record = collect.harvest(runs / "f-worker", collect.Options(quiet=True, wait_s=60))
    assert record.reconciliation.balanced and accounted(record) == set(emulated)
    record_row(
        "worker",
        "one of 2 Locust workers SIGKILLed (`--processes 2`)",
        "6+ executions into an 8 s run",
        f"coordinator takes in its journal, tracks its executions to the end; manifest `{manifest.status}` with a "
        "note; harvest accounts for every execution",
    )


def test_orphaned_workers_stop_within_seconds_when_the_coordinator_dies(shared: Emulator, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    process = start_locust(
        shared, runs, "f-orphan", "--processes", "2", "--profile", "steady", "--rate", "6", "--duration", "60"
    )
    workers = children(process, 2)
    starts(process, runs / "f-orphan", 6)
    process.kill()  # the coordinator only: its workers are orphaned (and still write to its stderr pipe)
    _, stderr = waiting.finish(process, pids=[w.pid for w in workers])  # the pipe closes when both have exited
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    # each noticed its parent's death itself (not Locust's 60 s heartbeat, not the 10 s silence check) ...
    noticed = [line for line in stderr.splitlines() if f"its coordinator (pid {process.pid}) is gone" in line]
    assert len(noticed) == 2, stderr[-2000:]
    # ... and started nothing after it noticed (a start already in flight may land within a second)
    last_notice = max(logged_at(line) for line in noticed)
    sfn = shared.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    late = [
        e["name"]
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
        for e in page["executions"]
        if e["name"].startswith("f-orphan-") and (e["startDate"] - last_notice).total_seconds() > 1
    ]
    assert late == []
    manifest = load(runs / "f-orphan")
    assert manifest.status == "crashed"
    record_row(
        "orphans",
        "coordinator SIGKILLed, its 2 workers orphaned",
        "6+ executions into a 60 s run",
        "both workers notice (parent gone, checked every 0.5 s; not Locust's 60 s heartbeat) and exit, no start "
        "after that; manifest `crashed`",
    )


def logged_at(line: str) -> datetime:
    """The time of a Locust log line: `[2026-12-07 01:02:03,456] host/ERROR/...` (local time)."""
    stamp = line[line.index("[") + 1 : line.index("]")]
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)


def test_overload_at_150_starts_per_second_loses_and_duplicates_nothing(shared: Emulator, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    process = start_locust(shared, runs, "f-load", "--profile", "steady", "--rate", "150", "--duration", "3")
    _, stderr = waiting.finish(process)
    assert process.returncode == 0, stderr[-2000:]
    manifest = load(runs / "f-load")
    assert manifest.status == "complete"
    started = {e.name for e in manifest.executions}
    failed = {f.name for f in manifest.failed_starts}
    assert len(started) + len(failed) + len(manifest.unconfirmed) == 450 and not started & failed
    emulated = in_emulator(shared, "f-load")
    assert len(emulated) == len(set(emulated))  # no execution twice
    record = collect.harvest(runs / "f-load", collect.Options(quiet=True, wait_s=120))
    recon = record.reconciliation
    assert recon.balanced and recon.missing == () and record.final
    assert accounted(record) == set(emulated)  # lost: none; every started (or ambiguous) one found
    assert set(emulated) - started <= failed | {u.name for u in manifest.unconfirmed}
    # ... and the emulator recovers: it answers and runs a new execution.
    sfn = shared.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    after = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"tickets": tickets(2)}))["executionArn"]
    assert finished(sfn, after)["status"] == "SUCCEEDED"
    record_row(
        "overload",
        "150 StartExecution/s for 3 s (450 starts)",
        "against one emulator on 2 CPUs",
        "every start recorded as started or failed (with its error); 0 lost, 0 duplicated (harvest finds every "
        "started or ambiguous one); the emulator then runs a new execution",
    )


def test_harvest_during_a_run_caches_nothing_that_is_not_over(shared: Emulator, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # a run that goes on until the test stops it: the early harvest sees it running however slow the machine is
    process = start_locust(shared, runs, "f-early", "--profile", "steady", "--rate", "3", "--duration", "600")
    starts(process, runs / "f-early", 3)
    early = sof(shared, runs, "harvest", "f-early", "--wait", "0")
    assert early.returncode == 1 and "partial" in early.stderr and "read again" in early.stderr, early.stderr
    assert "the load run is still going" in early.stderr
    partial = collect.read_any(runs / "f-early")
    assert partial is not None and not partial.final and partial.pending
    assert collect.read_cached(runs / "f-early") is None  # not served as a cached answer
    process.send_signal(signal.SIGINT)  # Ctrl+C: the run ends, its executions finish
    _, stderr = waiting.finish(process)
    assert process.returncode == 0, stderr[-2000:]
    final = sof(shared, runs, "harvest", "f-early")
    assert final.returncode == 0, final.stderr
    record = collect.read_cached(runs / "f-early")
    assert record is not None and record.final and record.reconciliation.balanced
    emulated = in_emulator(shared, "f-early")  # a start in flight at Ctrl+C is journalled as unconfirmed, and found
    assert record.reconciliation.harvested_by_status == {"SUCCEEDED": len(emulated)} and len(emulated) >= 3
    assert accounted(record) == set(emulated)
    record_row(
        "early-harvest",
        "`sof harvest --wait 0` while the run goes on",
        "3+ executions into a run, stopped (Ctrl+C) after that harvest",
        f"exit {early.returncode}, 'partial ... read again on the next harvest', nothing cached as final; the next "
        "harvest after the run: every started execution SUCCEEDED, final",
    )


def test_executions_evicted_by_the_retention_are_reported_as_evicted(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with running_emulator(tmp_path / "state", retain_executions=3) as emulator:
        deploy(emulator)
        # Completion tracking off: the harness cannot see an execution evicted before its next poll (it would
        # wait the 900 s drain for it); the harvest below waits for the executions and finds the evicted ones.
        process = start_locust(
            emulator,
            runs,
            "f-evict",
            "--profile",
            "steady",
            "--rate",
            "5",
            "--duration",
            "1",
            "--track-completion",
            "off",
        )
        _, stderr = waiting.finish(process)
        assert process.returncode == 0, stderr[-2000:]
        harvested = sof(emulator, runs, "harvest", "f-evict")
        assert harvested.returncode == 1 and "evicted by the emulator's retention" in harvested.stderr
        record = collect.read_cached(runs / "f-evict")
        assert record is not None
        kept = record.reconciliation.harvested_by_status.get("SUCCEEDED", 0)
        missing = record.reconciliation.missing
        assert kept == 3 and len(missing) == 2 and record.reconciliation.balanced
        health = control.health(emulator.url) or {}
        assert health["retention"]["evicted_executions"] >= 2
        record_row(
            "retention",
            "more finished executions than the retention (`SOF_RETAIN_EXECUTIONS=3`, 5 run)",
            "after the run, before the harvest",
            f"the newest {kept} harvested; the {len(missing)} oldest reported 'evicted by the emulator's retention' "
            f"(exit {harvested.returncode}), not 'never existed'",
        )


def test_the_readme_reliability_table_matches_these_results() -> None:
    if set(ROWS) != set(FAULTS):
        pytest.skip(f"only {len(ROWS)} of {len(FAULTS)} fault tests ran")
    problem = sync(
        ROOT / "docs" / "reliability.md", list(ROWS.values()), update=bool(os.environ.get("SOF_UPDATE_README"))
    )
    assert problem is None, problem
