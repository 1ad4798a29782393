"""The load harness's pure parts: profiles, batches, options, manifest and journal."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from argparse import Namespace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleorfail.errors import UserError
from scaleorfail.load import options, profiles
from scaleorfail.load.batches import TicketPool, execution_input
from scaleorfail.record.manifest import Finished, Manifest, Recorder, Started, load
from scaleorfail.record.model import FailedStart

DATA = Path(__file__).resolve().parent.parent / "data"


# -- profiles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.5, 1, 10, 50, 200])
def test_steady_starts_exactly_rate_times_duration(rate: float) -> None:
    profile = profiles.build("steady", rate, 20)
    times = profile.start_times()
    assert len(times) == profile.total() == round(rate * 20)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
    assert gaps == {round(1 / rate, 9)}
    assert times[0] == 0.0 and times[-1] < 20


def test_ramp_spike_and_step_follow_their_rate_curves() -> None:
    ramp = profiles.build("ramp", 10, 20)
    assert ramp.total() == 100  # area of the triangle
    assert profiles.achieved_rate(ramp.start_times(), (0, 10)) < profiles.achieved_rate(ramp.start_times(), (10, 20))
    spike = profiles.build("spike", 9, 30, baseline_rate=1)
    times = spike.start_times()
    assert spike.total() == 10 + 90 + 10
    assert profiles.achieved_rate(times, (10, 20)) == pytest.approx(9, rel=0.02)
    assert profiles.achieved_rate(times, (0, 10)) == pytest.approx(1, rel=0.1)
    step = profiles.build("step", 8, 40, steps=4)
    assert [round(profiles.achieved_rate(step.start_times(), (i * 10, i * 10 + 10))) for i in range(4)] == [2, 4, 6, 8]


def test_single_batch_is_one_start_at_once() -> None:
    profile = profiles.build("single-batch", 1, None)
    assert profile.total() == 1 and profile.start_times() == [0.0] and profile.duration == 0


@given(
    rate=st.floats(min_value=0.1, max_value=300),
    duration=st.floats(min_value=1, max_value=60),
    workers=st.integers(min_value=1, max_value=8),
    name=st.sampled_from(["burst", "steady", "ramp", "spike", "step"]),
)
@settings(max_examples=80, deadline=None)
def test_workers_share_every_start_exactly_once(rate: float, duration: float, workers: int, name: str) -> None:
    profile = profiles.build(name, rate, duration)
    times = profile.start_times()
    assert len(times) == profile.total()
    assert times == sorted(times) and all(0 <= t <= duration for t in times)
    shares = [profiles.my_starts(times, index, workers) for index in range(workers)]
    assert sorted(seq for share in shares for seq, _ in share) == list(range(len(times)))
    assert abs(profile.cumulative(duration) - len(times)) < 1.0


# -- batches ---------------------------------------------------------------------------------------


def test_batches_cycle_through_the_dataset_with_unique_ids() -> None:
    pool = TicketPool(DATA / "tickets.jsonl")
    batch = pool.batch(0, 600)
    ids = [t["ticket_id"] for t in batch]
    assert len(set(ids)) == 600 and ids[0] == "T-0001"
    assert set(batch[0]) == {"ticket_id", "text"}  # the human label stays out of the input
    assert ids[len(pool.tickets)] == "T-0001.1"
    second = pool.batch(1, 10)
    assert [t["ticket_id"] for t in second] == [f"T-{i:04d}" for i in range(11, 21)]
    assert json.loads(execution_input(second, 2)) == {"tickets": second, "max_concurrency": 2}
    assert "max_concurrency" not in json.loads(execution_input(second, None))


def test_the_workshop_batch_fits_the_256_kb_input_limit() -> None:
    pool = TicketPool(DATA / "tickets.jsonl")
    assert pool.largest_input_bytes(500, 2) < 256 * 1024
    assert pool.largest_input_bytes(3000, 2) > 256 * 1024
    assert len(execution_input(pool.batch(0, 500), 2)) <= pool.largest_input_bytes(500, 2)


# -- options ------------------------------------------------------------------------------------------


def namespace(**overrides: Any) -> Namespace:
    base = {
        "profile": "burst",
        "target": "local",
        "state_machine_arn": None,
        "region": None,
        "rate": 5.0,
        "duration": 10.0,
        "batch_size": 10,
        "max_concurrency": 2,
        "baseline_rate": None,
        "steps": 4,
        "tickets": None,
        "run_label": "c2",
        "run_dir": None,
        "run_id": "",
        "track_completion": "on",
        "drain_timeout": 60.0,
        "poll_interval": 1.0,
    }
    base.update(overrides)
    return Namespace(**base)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rate": -1.0}, "--rate must be a positive number"),
        ({"rate": 0.0}, "--rate must be a positive number"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"max_concurrency": 10_001}, "--max-concurrency must be between 0 and 10,000"),
        ({"max_concurrency": -1}, "--max-concurrency must be between 0 and 10,000"),
        ({"duration": 0.0}, "--duration must be a positive number"),
        ({"profile": "tsunami"}, "unknown load profile 'tsunami'"),
        ({"run_id": "bad id!"}, "--run-id"),
        ({"steps": 0}, "--steps must be at least 1"),
    ],
)
def test_invalid_options_get_one_clear_message(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as info:
        options.validate(namespace(**overrides))
    assert message in info.value.cause and info.value.fix


def test_valid_options_resolve_to_settings() -> None:
    resolved = options.validate(namespace(max_concurrency=0))
    assert resolved.profile.total() == 50 and resolved.max_concurrency == 0
    # a new run id: when it started (UTC), its label, and 4 random hex digits that keep two runs apart
    found = re.fullmatch(r"(\d{8}T\d{6})-(.+)-([0-9a-f]{4})", resolved.run_id)
    assert found and found.group(2) == "c2", resolved.run_id
    started = datetime.strptime(found.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - started).total_seconds()) < 120
    assert options.RUN_ID.fullmatch(resolved.run_id)  # a valid --run-id itself
    assert options.validate(namespace(run_id="mine")).run_id == "mine"  # an explicit one is kept
    assert resolved.parameters()["executions_planned"] == 50


def test_warning_when_the_knob_exceeds_the_account_concurrency() -> None:
    resolved = options.validate(namespace(max_concurrency=20))
    warning = options.concurrency_warning(resolved, 10)
    assert warning is not None and "exceeds" in warning and "TooManyRequestsException" in warning
    assert options.concurrency_warning(resolved, 1000) is None
    assert options.concurrency_warning(options.validate(namespace(max_concurrency=0)), 10) is not None


# -- manifest ---------------------------------------------------------------------------------------


def manifest() -> Manifest:
    return Manifest(
        run_id="r1",
        label="c2",
        target="local",
        profile="burst",
        parameters={"rate": 1},
        stack_outputs={"state_machine_arn": "arn:x"},
        endpoint_url="http://127.0.0.1:4566",
        region="us-east-1",
        started_at="2026-11-26T00:00:00+00:00",
    )


def test_the_manifest_round_trips_with_a_versioned_schema(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, manifest())
    recorder.started(
        [Started("r1-0-0", "arn:e0", "t", 10, 0, 0, 12.5), Started("r1-0-1", "arn:e1", "t", 10, 0, 1, 9.0)]
    )
    recorder.failed([FailedStart("r1-0-2", "t", "ThrottlingException", "Rate exceeded", 10, 0, 2)])
    recorder.finished([Finished("r1-0-0", "SUCCEEDED", "t", 1500.0)])
    path = recorder.close("complete")
    data = json.loads(path.read_text())
    assert data["schema"] == "scale-or-fail/run-manifest" and data["version"] == 1
    assert data["summary"] == {
        "started": 2,
        "failed_starts": 1,
        "throttled_starts": 1,  # the failed start was refused by StartExecution's quota
        "unconfirmed_starts": 0,
        "finished": 1,
        "tickets": 20,
        "by_status": {"SUCCEEDED": 1},
    }
    loaded = load(tmp_path)
    assert [e.name for e in loaded.executions] == ["r1-0-0", "r1-0-1"] and loaded.status == "complete"


def test_a_crash_between_writes_loses_nothing(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, manifest())
    recorder.started([Started("r1-0-0", "arn:e0", "t", 10, 0, 0, 1.0)])
    recorder.write()
    recorder.started([Started("r1-0-1", "arn:e1", "t", 10, 0, 1, 1.0)])  # journal only: then "crash"
    with (tmp_path / "journal.jsonl").open("a") as journal:
        journal.write('{"kind": "started", "name": "r1-0-')  # a line cut short
    assert load(tmp_path).status == "running"  # this harness (the test process) is alive: not crashed
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    data = json.loads((tmp_path / "manifest.json").read_text())
    data["harness"]["pid"] = dead.pid  # the harness that wrote it is gone
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    loaded = load(tmp_path)
    assert [e.name for e in loaded.executions] == ["r1-0-0", "r1-0-1"]
    assert loaded.status == "crashed" and "recovered from the journal" in loaded.notes[-1]
    assert any(note.startswith("journal.jsonl line ") and "not JSON" in note for note in loaded.notes)


def test_calls_in_flight_at_the_end_become_unconfirmed_starts(tmp_path: Path) -> None:
    from scaleorfail.record.manifest import Starting

    recorder = Recorder(tmp_path, manifest())
    recorder.starting(Starting("r1-0-0", "t", 10, 0, 0))
    recorder.starting(Starting("r1-0-1", "t", 10, 0, 1))
    recorder.started([Started("r1-0-0", "arn:e0", "t", 10, 0, 0, 1.0)])
    recorder.close("interrupted")
    loaded = load(tmp_path)
    assert [u.name for u in loaded.unconfirmed] == ["r1-0-1"] and loaded.status == "interrupted"


def test_other_files_are_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": "something/else"}))
    with pytest.raises(UserError, match="not a scale-or-fail run manifest"):
        load(tmp_path)
    with pytest.raises(UserError, match="no run manifest"):
        load(tmp_path / "nowhere")


def test_sof_load_options_lists_the_harness_options(capsys: pytest.CaptureFixture[str]) -> None:
    from scaleorfail.cli import main

    assert main(["load-options"]) == 0
    text = capsys.readouterr().out
    for option in ("--target", "--batch-size", "--max-concurrency", "--rate", "--run-label"):
        assert option in text
    assert all(name in text for name in profiles.NAMES)


def test_aws_stack_outputs_come_from_terraform_when_its_state_is_newer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    from scaleorfail import target

    project = tmp_path / "checkout"
    for folder in ("terraform", "lambda_src", "data"):
        (project / folder).mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    stub = tmp_path / "bin" / "terraform"
    stub.parent.mkdir()
    outputs = {"state_machine_arn": {"value": "arn:aws:states:eu-west-1:1:stateMachine:x", "type": "string"}}
    stub.write_text(f"#!/bin/sh\necho '{json.dumps(outputs)}'\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("SOF_PROJECT_DIR", str(project))
    monkeypatch.setenv("SOF_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(UserError, match="no stack outputs for target aws"):
        target.load_outputs("aws")  # nothing applied yet
    (project / "terraform" / "terraform.tfstate").write_text("{}")
    assert target.load_outputs("aws")["state_machine_arn"].endswith(":x")
    outputs["state_machine_arn"]["value"] = "arn:aws:states:eu-west-1:1:stateMachine:y"
    stub.write_text(f"#!/bin/sh\necho '{json.dumps(outputs)}'\n")
    assert target.load_outputs("aws")["state_machine_arn"].endswith(":x")  # state unchanged: stored outputs
    later = time.time() + 5
    os.utime(project / "terraform" / "terraform.tfstate", (later, later))
    assert target.load_outputs("aws")["state_machine_arn"].endswith(":y")  # re-applied: read again
