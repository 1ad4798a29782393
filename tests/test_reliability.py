"""Clear errors and the pure logic behind reliability: damaged manifests and harvests, one bad run among
good ones, AWS deploys without credentials or Terraform, the emulator watch, retention, packages, tokens."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_harvest_units import record_for, two_item_history

from scaleorfail.emulator import auth, packages, retention
from scaleorfail.errors import UserError
from scaleorfail.harvest import collect
from scaleorfail.load.watch import SILENCE_LIMIT_S, TargetWatch
from scaleorfail.record import codec
from scaleorfail.record.manifest import Manifest, claim_run_dir, load

ROOT = Path(__file__).resolve().parent.parent


def sof(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaleorfail.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )


def manifest_json(run_id: str = "r") -> dict[str, Any]:
    manifest = Manifest(
        run_id=run_id,
        label="c1",
        target="local",
        profile="single-batch",
        parameters={"max_concurrency": 1},
        stack_outputs={"state_machine_arn": "arn:aws:states:us-east-1:1:stateMachine:m"},
        endpoint_url=None,
        region="us-east-1",
        started_at="2026-11-26T12:00:00+00:00",
        status="complete",
    )
    return manifest.to_json()


# -- damaged manifests, journals and harvests -------------------------------------------------------


def test_unknown_manifest_fields_are_ignored_and_damaged_ones_named(tmp_path: Path) -> None:
    data = manifest_json()
    data["from_a_newer_version"] = {"x": 1}
    data["executions"] = [{"name": "r-0-0", "arn": "a", "started_at": "t", "batch_size": 2, "worker": 0, "seq": 0,
                           "latency_ms": 1.5, "extra": True}]  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    assert [e.name for e in load(tmp_path).executions] == ["r-0-0"]

    data["executions"][0]["batch_size"] = "two"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"executions\[0\] is damaged: Started.batch_size is str"):
        load(tmp_path)
    del data["run_id"]
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="has no 'run_id' field"):
        load(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a JSON object"):
        load(tmp_path)


def test_bad_journal_lines_are_skipped_and_each_is_reported(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(manifest_json()))
    good = {"kind": "started", "name": "r-0-0", "arn": "a", "started_at": "t", "batch_size": 2, "worker": 0,
            "seq": 0, "latency_ms": 1.0}  # fmt: skip
    lines = [json.dumps(good), '{"kind": "started", "name": 7}', '["not", "a", "record"]', '{"kind": "x"}', '{"kin']
    (tmp_path / "journal.jsonl").write_text("\n".join(lines) + "\n")
    manifest = load(tmp_path)
    assert [e.name for e in manifest.executions] == ["r-0-0"]
    damaged = [note for note in manifest.notes if note.startswith("journal.jsonl line ")]
    assert [note.split(":")[0] for note in damaged] == [f"journal.jsonl line {n}" for n in (2, 3, 4, 5)]
    assert "not JSON" in damaged[-1] and "unknown record kind 'x'" in damaged[2]
    # `sof harvest` says each one (the run's records on those lines are not in its evidence) and exits 1
    record = codec.to_jsonable(record_for(two_item_history()))
    collect.harvest_path(tmp_path).write_text(json.dumps({**record, "final": True}))  # no target needed
    done = subprocess.run(
        [sys.executable, "-m", "scaleorfail.cli", "harvest", str(tmp_path)], capture_output=True, text=True,
        env={**os.environ, "SOF_RUNS_DIR": str(tmp_path.parent)}, check=False, timeout=120,
    )  # fmt: skip
    said = [line for line in done.stderr.splitlines() if "damaged journal: journal.jsonl line" in line]
    assert len(said) == 4 and done.returncode == 1 and "Traceback" not in done.stderr, done.stderr


def test_a_damaged_harvest_record_is_not_served_from_the_cache(tmp_path: Path) -> None:
    record = codec.to_jsonable(record_for(two_item_history()))
    collect.harvest_path(tmp_path).write_text(json.dumps({**record, "final": True}))
    assert collect.read_cached(tmp_path) is not None
    collect.harvest_path(tmp_path).write_text(json.dumps({**record, "final": False}))
    assert collect.read_cached(tmp_path) is None and collect.read_any(tmp_path) is not None  # partial
    collect.harvest_path(tmp_path).write_text(json.dumps({**record, "executions": {"not": "a list"}}))
    assert collect.read_any(tmp_path) is None
    collect.harvest_path(tmp_path).write_text(json.dumps({**record, "reconciliation": {"missing": []}}))
    assert collect.read_any(tmp_path) is None
    collect.harvest_path(tmp_path).write_text('{"schema": ')
    assert collect.read_any(tmp_path) is None


def test_one_bad_run_does_not_stop_the_comparison_of_the_others(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    good = runs / "good"
    good.mkdir(parents=True)
    (good / "manifest.json").write_text(json.dumps(manifest_json("good")))
    record = codec.to_jsonable(dataclasses.replace(record_for(two_item_history()), run_id="good"))
    (good / "harvest.json").write_text(json.dumps(record))
    broken = runs / "broken-manifest"
    broken.mkdir()
    data = manifest_json("broken-manifest")
    data["executions"] = [{"name": 1}]
    (broken / "manifest.json").write_text(json.dumps(data))
    odd = runs / "odd-harvest"
    shutil.copytree(good, odd)
    (odd / "harvest.json").write_text(json.dumps({**record, "run_id": "odd-harvest", "executions": [{"name": "x"}]}))
    done = sof("compare", "--all", "--output", str(tmp_path / "out"), env={"SOF_RUNS_DIR": str(runs)})
    assert done.returncode == 1
    assert "c1" in done.stdout and "written:" in done.stdout  # the good run is compared
    assert "broken-manifest: skipped:" in done.stderr and "executions[0] is damaged" in done.stderr
    assert "odd-harvest: skipped: its harvest record is damaged or of another version" in done.stderr
    assert "2 run(s) skipped" in done.stderr and "Traceback" not in done.stderr


def test_an_existing_run_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    run = tmp_path / "r1"
    claim_run_dir(run, overwrite=False)
    (run / "manifest.json").write_text("{}")
    (run / "harvest.json").write_text("{}")
    with pytest.raises(UserError, match="run r1 already exists") as refused:
        claim_run_dir(run, overwrite=False)
    assert "--overwrite" in refused.value.fix
    claim_run_dir(run, overwrite=True)
    assert list(run.iterdir()) == []  # the old evidence is gone, not merged into the new run
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write the run directory"):
        claim_run_dir(blocker / "r2", overwrite=False)


# -- sof deploy / destroy --target aws ----------------------------------------------------------------


def fake_checkout(tmp_path: Path, terraform_script: str | None) -> dict[str, str]:
    project = tmp_path / "checkout"
    (project / "terraform").mkdir(parents=True)
    shutil.copytree(ROOT / "lambda_src", project / "lambda_src", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "pyproject.toml").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if terraform_script is not None:
        tool = bin_dir / "terraform"
        tool.write_text(terraform_script)
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return {
        "SOF_PROJECT_DIR": str(project),
        "SOF_STATE_DIR": str(tmp_path / "state"),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
        "AWS_PROFILE": "",
    }


TERRAFORM = """#!/bin/sh
case "$1 $2" in
  "version -json") echo '{"terraform_version": "1.9.5"}' ;;
  *" init") echo '╷' >&2; echo '│ Error: Failed to query available provider packages' >&2; echo '│ ' >&2;
        echo '│ Could not retrieve the list of available versions for provider hashicorp/aws' >&2; echo '╵' >&2;
        exit 1 ;;
  *) exit 1 ;;
esac
"""


def without_empty(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**base, **{k: v for k, v in env.items() if v}}


def run_clean(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaleorfail.cli", *args],
        capture_output=True,
        text=True,
        env=without_empty(env),
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_aws_deploy_without_credentials_says_so_in_one_line(tmp_path: Path) -> None:
    env = fake_checkout(tmp_path, TERRAFORM)
    for verb in ("deploy", "destroy"):
        done = run_clean(verb, "--target", "aws", env=env)
        assert done.returncode == 2, done.stderr
        assert "no AWS credentials found" in done.stderr and "aws configure" in done.stderr
        assert "Traceback" not in done.stderr


def test_terraform_failures_show_terraforms_own_error_text(tmp_path: Path) -> None:
    env = {**fake_checkout(tmp_path, TERRAFORM), "AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "x"}
    deployed = run_clean("deploy", "--target", "aws", env=env)
    assert deployed.returncode == 2
    assert "error: terraform init failed (exit 1): Error: Failed to query available provider packages" in (
        deployed.stderr
    )
    assert "Traceback" not in deployed.stderr and "CalledProcessError" not in deployed.stderr
    destroyed = run_clean("destroy", "--target", "aws", env=env)
    assert destroyed.returncode == 2 and "is not initialised" in destroyed.stderr
    assert "terraform -chdir=terraform init" in destroyed.stderr
    old = TERRAFORM.replace("1.9.5", "1.4.0")
    env_old = {**fake_checkout(tmp_path / "old", old), "AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "x"}
    too_old = run_clean("deploy", "--target", "aws", env=env_old)
    assert too_old.returncode == 2 and "Terraform 1.4.0 is too old" in too_old.stderr
    missing = {**fake_checkout(tmp_path / "none", None), "AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "x"}
    absent = run_clean("deploy", "--target", "aws", env=missing)
    assert absent.returncode == 2 and "terraform is not installed" in absent.stderr


# -- the harness's watch on the emulator -------------------------------------------------------------


class FakeProbe:
    def __init__(self, answers: list[tuple[str, dict[str, Any] | None]]) -> None:
        self.answers = answers

    def __call__(self, url: str, timeout: float, token: str | None) -> tuple[str, dict[str, Any] | None]:
        return self.answers.pop(0)


def test_the_watch_tells_gone_from_restarted_from_slow() -> None:
    ok = ("ok", {"instance": "a"})
    gone = TargetWatch("u", None, "a", FakeProbe([ok, ("refused", None), ok, ("refused", None), ("refused", None)]))
    assert [gone.check() for _ in range(4)] == [None, None, None, None]  # one refusal alone is not enough
    lost = gone.check()
    assert lost is not None and lost.kind == "emulator_gone" and "went away" in lost.message
    restarted = TargetWatch("u", None, "a", FakeProbe([("ok", {"instance": "b"})])).check()
    assert restarted is not None and restarted.kind == "emulator_restarted" and "a -> b" in restarted.message
    denied = TargetWatch("u", "t", "a", FakeProbe([("denied", None)])).check()
    assert denied is not None and denied.kind == "emulator_restarted"
    slow = TargetWatch("u", None, "a", FakeProbe([("silent", None)] * 3))
    assert slow.check(now=0.0) is None and slow.check(now=SILENCE_LIMIT_S - 1) is None  # saturated, not dead
    silent = slow.check(now=SILENCE_LIMIT_S + 1)
    assert silent is not None and silent.kind == "emulator_gone"


# -- retention ------------------------------------------------------------------------------------------


def test_the_ledger_evicts_the_oldest_within_count_and_bytes() -> None:
    ledger = retention.Ledger(max_count=3, max_bytes=100)
    assert ledger.add("a", 10) == [] and ledger.add("b", 10) == [] and ledger.add("c", 10) == []
    assert ledger.add("d", 10) == ["a"]  # count
    assert ledger.add("e", 85) == ["b", "c"]  # count takes b; bytes (10 + 10 + 85 > 100) take c
    assert ledger.add("huge", 1000) == ["d", "e"]  # the newest is always kept, even over budget
    assert ledger.stats() == {"count": 1, "bytes": 1000}


def test_tombstones_are_bounded_and_history_packing_round_trips() -> None:
    stones = retention.Tombstones(limit=2)
    stones.add(["x", "y", "z"])
    assert "x" not in stones and "y" in stones and "z" in stones and stones.total == 3
    events = [{"id": 1, "timestamp": datetime(2026, 1, 1, tzinfo=UTC), "type": "ExecutionStarted"}] * 500
    blob = retention.pack(events)
    assert retention.unpack(blob) == events and len(blob) < len(json.dumps(events, default=str)) / 10
    assert retention.cutoff([5, 1, 3, 2, 4], budget=10) is None
    assert retention.cutoff(range(100), budget=50) == 55  # keeps the newest 45 (90 % of the budget)


# -- deployment packages ---------------------------------------------------------------------------------


def zipped(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()  # type: ignore[return-value]


def test_unsafe_packages_are_refused_with_the_reason() -> None:
    packages.validate(zipped([("handler.py", b"def handler(e, c): return 1"), ("pkg/mod.py", b"")]))
    cases = {
        "leaves the package folder": zipped([("../evil.py", b"")]),
        "absolute path": zipped([("/etc/evil.py", b"")]),
        "symbolic link": zipped([symlink("link.py", "/etc/passwd")]),  # type: ignore[list-item]
        "Could not unzip": b"this is not a zip",
    }
    for reason, code in cases.items():
        with pytest.raises(packages.PackageError, match=reason):
            packages.validate(code)


# -- access tokens ------------------------------------------------------------------------------------------


def test_the_token_is_found_where_aws_clients_put_their_access_key() -> None:
    token = auth.new_token()
    assert auth.TOKEN_PATTERN.match(token)
    sigv4 = {"HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={token}/20261126/us-east-1/states/aws4_request, "
             "SignedHeaders=host, Signature=abc"}  # fmt: skip
    assert auth.allowed(sigv4, token)
    assert auth.allowed({"HTTP_X_SOF_TOKEN": token}, token)
    assert auth.allowed({"QUERY_STRING": f"X-Amz-Credential={token}%2F20261126%2Fus-east-1%2Fs3%2Faws4_request"}, token)
    assert not auth.allowed({"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=test/20261126/x/y/aws4_request"}, token)
    assert not auth.allowed({}, token)
    status, _, body = auth.denied()
    assert status.startswith("403") and json.loads(body)["__type"] == "UnrecognizedClientException"
