"""The Locust harness, run headless against a real emulator."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import waiting
from emulator_support import Emulator, deploy, free_port, running_emulator

from scaleorfail.record.manifest import load

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("load"), profile="sandbox") as running:
        deploy(running)
        yield running


def locust(
    emulator: Emulator, run_dir: Path, *args: str, timeout: float = waiting.QUIET_S
) -> subprocess.CompletedProcess[str]:
    """The harness, run to its end; it fails only when neither it nor the emulator worked for `timeout` s."""
    env = {**os.environ, "SOF_STATE_DIR": str(emulator.state_dir), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--run-dir", str(run_dir), *args]
    return waiting.run(command, env=env, cwd=ROOT, pids=lambda: emulator.pids, quiet_s=timeout)


def executions_in_emulator(emulator: Emulator, prefix: str) -> dict[str, str]:
    sfn = emulator.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    found = {}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        for item in page["executions"]:
            if item["name"].startswith(prefix + "-"):
                found[item["name"]] = item["status"]
    return found


def stats(run_dir: Path) -> dict[str, dict[str, str]]:
    import csv

    with (run_dir / "locust_stats.csv").open() as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


PROFILES = [
    ("single-batch", ["--batch-size", "5"], 1),
    ("burst", ["--rate", "5", "--duration", "2", "--batch-size", "1"], 10),
    ("steady", ["--rate", "4", "--duration", "3", "--batch-size", "1"], 12),
    ("ramp", ["--rate", "6", "--duration", "3", "--batch-size", "1"], 9),
    ("spike", ["--rate", "6", "--baseline-rate", "3", "--duration", "3", "--batch-size", "1"], 12),
    ("step", ["--rate", "6", "--steps", "3", "--duration", "3", "--batch-size", "1"], 12),
]


@pytest.mark.parametrize(("profile", "args", "expected"), PROFILES, ids=[p[0] for p in PROFILES])
def test_each_profile_leaves_a_manifest_matching_the_emulator(
    emulator: Emulator, tmp_path: Path, profile: str, args: list[str], expected: int
) -> None:
    run_id = f"t-{profile}"
    done = locust(emulator, tmp_path, "--profile", profile, "--run-id", run_id, "--max-concurrency", "3", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = load(tmp_path / run_id)
    assert manifest.status == "complete" and manifest.profile == profile
    assert manifest.stack_outputs["state_machine_arn"].endswith("scale-or-fail-pipeline")
    assert manifest.failed_starts == []
    names = {e.name for e in manifest.executions}
    assert len(names) == expected == len(manifest.executions)
    emulated = executions_in_emulator(emulator, run_id)
    assert set(emulated) == names  # exactly the executions the emulator holds for this run
    assert {f.name for f in manifest.finished} == names  # completion tracked to the end
    assert set(emulated.values()) == {"SUCCEEDED"}
    table = stats(tmp_path / run_id)
    assert int(table["StartExecution"]["Request Count"]) == expected
    assert int(table["Execution"]["Request Count"]) == expected and table["Execution"]["Failure Count"] == "0"
    assert (tmp_path / run_id / "locust.html").stat().st_size > 1000
    assert (tmp_path / run_id / "locust_stats_history.csv").exists()


def test_start_rate_is_exact_at_low_rates(emulator: Emulator, tmp_path: Path) -> None:
    done = locust(
        emulator,
        tmp_path,
        "--profile",
        "steady",
        "--rate",
        "8",
        "--duration",
        "5",
        "--batch-size",
        "1",
        "--run-id",
        "t-rate",
        "--track-completion",
        "off",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = load(tmp_path / "t-rate")
    assert sorted(e.seq for e in manifest.executions) == list(range(40))  # C(5 s) at 8/s, each once
    # when each call was made (its answer's moment less its latency), by its place in the schedule
    made = {e.seq: datetime.fromisoformat(e.started_at).timestamp() - e.latency_ms / 1000 for e in manifest.executions}
    # the schedule, not the machine: the Theil-Sen slope (the median over every pair of starts) is 1/8 s per
    # start however a busy machine delays a stretch of them (a stall and its catch-up are a minority of pairs)
    slopes = [(made[j] - made[i]) / (j - i) for i, j in itertools.combinations(sorted(made), 2)]
    assert statistics.median(slopes) == pytest.approx(1 / 8.0, rel=0.05)
    assert manifest.finished == [] and not manifest.completion_tracking


def started_in(run_dir: Path) -> int:
    """Executions the harness has journalled as started so far."""
    lines = [line for journal in run_dir.glob("journal*.jsonl") for line in journal.read_text().splitlines()]
    return sum(1 for line in lines if '"kind": "started"' in line)


@pytest.mark.parametrize("sigint", ["default", "inherited ignored"])
def test_an_interrupted_run_still_leaves_a_valid_manifest(emulator: Emulator, tmp_path: Path, sigint: str) -> None:
    """Ctrl+C (SIGINT) ends a run with its manifest written - also a run started as a script's background
    job, which inherits SIGINT ignored (bash ignores it for asynchronous commands without job control)."""
    env = {**os.environ, "SOF_STATE_DIR": str(emulator.state_dir)}
    ignored = sigint != "default"
    run_id = "t-int-ign" if ignored else "t-int"  # one emulator: names of their own
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--run-dir",
        str(tmp_path),
        "--profile",
        "steady",
        "--rate",
        "5",
        "--duration",
        "60",
        "--batch-size",
        "1",
        "--run-id",
        run_id,
    ]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignored else None,  # noqa: PLW1509
    )
    # interrupt it mid-run, once it has started a few executions
    waiting.wait_for(
        lambda: started_in(tmp_path / run_id) >= 5 or process.poll() is not None, "5 starts", pids=[process.pid]
    )
    assert process.poll() is None, "the run ended before it started 5 executions"
    process.send_signal(signal.SIGINT)
    _, stderr = waiting.finish(process)
    manifest = load(tmp_path / run_id)
    assert manifest.status == "interrupted", stderr[-2000:]
    assert 5 <= len(manifest.executions) < 300
    started = {e.name for e in manifest.executions}
    unconfirmed = {u.name for u in manifest.unconfirmed}
    emulated = set(executions_in_emulator(emulator, run_id))
    assert started <= emulated  # everything recorded as started exists
    assert emulated <= started | unconfirmed  # and nothing that exists is missing from the manifest


def test_a_distributed_run_is_one_coherent_run(emulator: Emulator, tmp_path: Path) -> None:
    env = {**os.environ, "SOF_STATE_DIR": str(emulator.state_dir)}
    port = free_port()
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    master = subprocess.Popen(
        [
            *base,
            "--headless",
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            "2",
            "--run-dir",
            str(tmp_path),
            "--run-id",
            "t-dist",
            "--profile",
            "steady",
            "--rate",
            "6",
            "-t",  # Locust's own run time is the profile's duration, on the workers too
            "4s",
            "--batch-size",
            "1",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers = [
        subprocess.Popen(
            [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        _, stderr = waiting.finish(master, pids=[w.pid for w in workers])
    finally:
        for worker in workers:
            waiting.wait_for(lambda w=worker: w.poll() is not None, "the worker's exit", pids=[worker.pid])
    manifest = load(tmp_path / "t-dist")
    assert manifest.status == "complete", stderr[-3000:]
    assert manifest.workers == 2
    assert manifest.parameters["duration"] == 4.0
    assert len(manifest.executions) == 24
    assert {e.worker for e in manifest.executions} == {0, 1}
    assert sorted(e.seq for e in manifest.executions) == list(range(24))
    assert set(executions_in_emulator(emulator, "t-dist")) == {e.name for e in manifest.executions}
    assert len(manifest.finished) == 24


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "burst", "--rate", "-1"], "--rate must be a positive number"),
        (["--profile", "burst", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["--profile", "burst", "--max-concurrency", "41"], "--max-concurrency 41 is above 40, the inline Map's limit"),
        (["--profile", "tidal"], "unknown load profile 'tidal'"),
        (["--profile", "single-batch", "--batch-size", "5000"], "over the 256 KB"),
        (["--profile", "steady", "-u", "5"], "-u/--users do not apply"),
        (["--profile", "steady", "-r", "2"], "-r/--spawn-rate do not apply"),
        (["--profile", "single-batch", "-t", "10s"], "-t/--run-time does not apply to --profile single-batch"),
        (["--profile", "steady", "-t", "5s", "--duration", "10"], "-t/--run-time (5 s) and --duration (10 s) disagree"),
        (["--profile", "burst", "--run-label", "wall c2"], "--run-label 'wall c2' may only hold"),
        (["--profile", "burst", "--run-label", "x" * 44], "(at most 43 characters)"),
    ],
)
def test_invalid_options_stop_with_one_clear_line(
    emulator: Emulator, tmp_path: Path, args: list[str], message: str
) -> None:
    done = locust(emulator, tmp_path, *args)
    assert done.returncode == 2
    flat = " ".join(done.stderr.split())  # wrapped to the terminal
    assert message in flat and "Traceback" not in done.stderr and flat.count("error:") == 1
    assert not list(tmp_path.glob("*/manifest.json"))  # refused before any run began
    if "-u" in args or "-r" in args:  # the hint names the options that do shape the load
        assert "--profile, --rate, --duration (or -t), --batch-size" in flat


def test_locust_run_time_is_the_profile_duration(emulator: Emulator, tmp_path: Path) -> None:
    args = ("--profile", "steady", "--rate", "3", "-t", "2s", "--batch-size", "1", "--run-id", "t-runtime")
    done = locust(emulator, tmp_path, *args, "--progress-interval", "0.5")
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = load(tmp_path / "t-runtime")
    assert manifest.parameters["duration"] == 2.0
    assert len(manifest.executions) == 6  # 3/s for 2 s: not Locust's timer, not the profile's default 60 s
    assert "will be ignored" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("progress ")]
    assert lines and lines[-1].endswith("6/6 executions done, 0 running, 0 not started - all done"), lines


def test_the_web_ui_is_refused_with_one_line(emulator: Emulator, tmp_path: Path) -> None:
    env = {**os.environ, "SOF_STATE_DIR": str(emulator.state_dir)}
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--web-host", "127.0.0.1"]
    command += ["--web-port", str(free_port()), "--run-dir", str(tmp_path), "--profile", "single-batch"]
    done = waiting.run(command, env=env, cwd=ROOT)
    assert done.returncode == 2
    flat = " ".join(done.stderr.split())  # wrapped to the terminal: one error, however many lines it takes
    assert (
        flat.count("error:") == 1
        and (
            "error: the scale-or-fail harness runs headless only: its profile starts once per process, and the web "
            "UI's users / spawn rate / Start do not apply to it"
        )
        in flat
    )
    assert "add --headless" in flat and not list(tmp_path.iterdir())


PROGRESS = re.compile(r"^progress (\d+):(\d\d): (\d+)/(\d+) tickets done, (\d+) running, (\d+) queued(.*)$")


def test_a_long_burst_shows_its_progress_while_it_runs(emulator: Emulator, tmp_path: Path) -> None:
    tickets = 160
    args = ("--profile", "single-batch", "--batch-size", str(tickets), "--max-concurrency", "1")
    done = locust(emulator, tmp_path, *args, "--progress-interval", "0.5", "--only-summary")
    assert done.returncode == 0, done.stderr[-2000:]
    seen = [PROGRESS.match(line) for line in done.stderr.splitlines() if line.startswith("progress ")]
    assert seen and all(seen), done.stderr[-3000:]
    rows = [(int(m[3]), int(m[4]), int(m[5]), int(m[6]), m[7]) for m in seen if m]
    during = [r for r in rows if 0 < r[0] < tickets]
    assert during, rows  # seen part-way, not only at the end
    for finished, total, running, queued, _ in during:
        assert total == tickets and running <= 1 and finished + running + queued == tickets
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # done only grows
    assert any(", ETA " in r[4] and "/s" in r[4] for r in during)
    assert rows[-1][:4] == (tickets, tickets, 0, 0) and rows[-1][4] == " - execution SUCCEEDED"


def test_a_knob_above_the_account_concurrency_warns(emulator: Emulator, tmp_path: Path) -> None:
    done = locust(emulator, tmp_path, "--profile", "single-batch", "--batch-size", "2", "--max-concurrency", "20")
    assert done.returncode == 0
    assert "exceeds the target's Lambda account concurrency (10)" in done.stderr


def test_an_existing_run_id_is_refused_unless_overwrite_is_given(emulator: Emulator, tmp_path: Path) -> None:
    args = ("--profile", "single-batch", "--batch-size", "2", "--run-id", "t-again")
    assert locust(emulator, tmp_path, *args).returncode == 0
    first = load(tmp_path / "t-again").executions[0].name
    refused = locust(emulator, tmp_path, *args)
    assert refused.returncode == 2 and "run t-again already exists" in refused.stderr
    assert "--overwrite" in refused.stderr and "Traceback" not in refused.stderr
    assert load(tmp_path / "t-again").executions[0].name == first  # its evidence untouched
    replaced = locust(emulator, tmp_path, *args, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    manifest = load(tmp_path / "t-again")
    assert len(manifest.executions) == 1 and manifest.status == "complete"
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    unwritable = locust(emulator, blocked, "--profile", "single-batch", "--batch-size", "2")
    assert unwritable.returncode == 2 and "cannot write the run directory" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr


def test_without_a_deployment_it_says_deploy_first(tmp_path: Path) -> None:
    with running_emulator(tmp_path / "empty") as bare:
        done = locust(bare, tmp_path, "--profile", "single-batch")
    assert done.returncode == 2
    assert "deploy first: make deploy TARGET=local" in done.stderr


def test_a_batch_that_can_reach_the_history_limit_is_warned_about(emulator: Emulator, tmp_path: Path) -> None:
    small = locust(emulator, tmp_path, "--profile", "single-batch", "--run-id", "t-hist-5", "--batch-size", "5")
    assert small.returncode == 0 and "history events" not in small.stderr
    # 360 tickets: 6,128 events, but up to 25,568 if the default Retry's every attempt is used - which only
    # throttling does: at c=10 on an account of 1,000 no warning; with Embed reserved below the knob, a warning
    quiet = locust(
        emulator, tmp_path, "--profile", "single-batch", "--run-id", "t-hist-10", "--batch-size", "360",
        "--max-concurrency", "10",
    )  # fmt: skip
    assert quiet.returncode == 0 and "history events" not in quiet.stderr, quiet.stderr[-2000:]
    assert load(tmp_path / "t-hist-10").parameters["timing"]["profile"] == "ideal"  # the timing it saw
    outputs_file = emulator.state_dir / "stack-outputs-local.json"
    saved = outputs_file.read_text()
    document = json.loads(saved)
    document["outputs"]["embed_reserved_concurrency"] = 5
    outputs_file.write_text(json.dumps(document))
    try:
        big = locust(
            emulator, tmp_path, "--profile", "single-batch", "--run-id", "t-hist", "--batch-size", "360",
            "--max-concurrency", "10",
        )  # fmt: skip
    finally:
        outputs_file.write_text(saved)
    assert big.returncode == 0, big.stderr[-2000:]
    assert "25,000" in big.stderr and "States.Runtime" in big.stderr and "351 tickets is safe" in big.stderr
    manifest = load(tmp_path / "t-hist")
    assert any("history events" in note for note in manifest.notes)
    assert manifest.parameters["timing"]["profile"] == "ideal"  # the run records the timing it saw


def test_a_full_disk_under_the_run_dir_stops_the_run_with_one_line_and_an_end_state(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A 128 KB file system fills up a few seconds into the run (a real ENOSPC, not a simulated one)."""
    import json

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(disk)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (CI runs as root): {mounted.stderr.decode()[:200]}")
    try:
        args = ["--profile", "steady", "--rate", "20", "--duration", "30", "--batch-size", "1"]
        done = locust(emulator, disk, *args, "--run-id", "full")
        assert done.returncode == 4, done.stderr[-3000:]
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "No space left on device (errno 28)" in errors[0], done.stderr[-3000:]
        assert "Traceback" not in done.stderr and "OSError" not in done.stderr, done.stderr[-3000:]
        manifest = json.loads((disk / "full" / "manifest.json").read_text())
        assert manifest["status"] == "failed" and manifest["failure"]["kind"] == "storage", manifest["status"]
        assert len(manifest["executions"]) < 600  # stopped early, not after the 30 s
        again = locust(emulator, disk, *args, "--run-id", "next")  # the next run on the full disk
        assert again.returncode == 4 and "Traceback" not in again.stderr, again.stderr[-3000:]
        assert next(line for line in again.stderr.splitlines() if line.startswith("error:")).startswith(
            f"error: cannot write the run's records in {disk / 'next'}: No space left on device"
        )
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
