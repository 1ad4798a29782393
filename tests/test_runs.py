"""Run selection: a run id, a directory or a label (its latest run) wherever a run is asked for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaleorfail import runs
from scaleorfail.errors import UserError
from scaleorfail.harvest import collect
from scaleorfail.load.options import LABEL_MAX, RUN_ID, check_label, new_run_id

ROOT = Path(__file__).resolve().parent.parent
SOF = Path(sys.executable).with_name("sof")


def make_run(root: Path, run_id: str, label: str, started_at: str, tickets: int = 500, knob: int = 2) -> Path:
    folder = root / run_id
    folder.mkdir(parents=True)
    manifest = {
        "schema": "scale-or-fail/run-manifest",
        "version": 1,
        "run_id": run_id,
        "label": label,
        "target": "local",
        "profile": "single-batch",
        "parameters": {"max_concurrency": knob},
        "started_at": started_at,
        "status": "complete",
        "executions": [{"name": f"{run_id}-0-0", "batch_size": tickets}],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "runs"
    make_run(base, "20261201T100000-burst-c2-aaaa", "burst-c2", "2026-12-01T10:00:00.000+00:00", tickets=200)
    make_run(base, "20261201T110000-burst-c10-bbbb", "burst-c10", "2026-12-01T11:00:00.000+00:00", knob=10)
    make_run(base, "20261201T120000-burst-c2-cccc", "burst-c2", "2026-12-01T12:00:00.000+00:00")
    # a run made before labels were kept whole: its id is cut, its manifest's label is not
    make_run(base, "20261130T090000-sandbox-verify-c-dddd", "sandbox-verify-c10", "2026-11-30T09:00:00.000+00:00")
    (base / "compare").mkdir()  # an output folder, not a run
    return base


def test_a_label_names_its_latest_run(root: Path) -> None:
    assert runs.resolve("burst-c2", root).name == "20261201T120000-burst-c2-cccc"
    assert runs.resolve("sandbox-verify-c10", root).name == "20261130T090000-sandbox-verify-c-dddd"
    assert [info.run_id for info in runs.with_label("burst-c2", root)] == [
        "20261201T100000-burst-c2-aaaa",
        "20261201T120000-burst-c2-cccc",
    ]


def test_a_run_id_or_a_path_wins_over_a_label(root: Path) -> None:
    assert runs.resolve("20261201T100000-burst-c2-aaaa", root).name == "20261201T100000-burst-c2-aaaa"
    older = root / "20261201T100000-burst-c2-aaaa"
    assert runs.resolve(str(older), root) == older
    assert runs.resolve(str(older / "manifest.json"), root) == older
    make_run(root, "burst-c10", "something-else", "2026-12-01T13:00:00.000+00:00")  # an id equal to a label
    assert runs.resolve("burst-c10", root).name == "burst-c10"


def test_every_run_oldest_first_when_none_is_named(root: Path) -> None:
    assert [p.name for p in runs.select([], root)] == [
        "20261130T090000-sandbox-verify-c-dddd",
        "20261201T100000-burst-c2-aaaa",
        "20261201T110000-burst-c10-bbbb",
        "20261201T120000-burst-c2-cccc",
    ]
    chosen = runs.select(["burst-c2", "burst-c10", "20261201T100000-burst-c2-aaaa"], root)
    assert [p.name[-4:] for p in chosen] == ["cccc", "bbbb", "aaaa"]


def test_the_old_entry_point_selects_the_same_way(root: Path) -> None:
    assert collect.run_dirs(["burst-c2"], root) == runs.select(["burst-c2"], root)


def test_a_missing_run_is_one_error_naming_the_labels_there(root: Path) -> None:
    with pytest.raises(UserError) as info:
        runs.select(["burst-c2", "wall-c2"], root)
    assert info.value.cause == f"no run 'wall-c2': no run id, directory or label of that name under {root}"
    assert "burst-c10, burst-c2, sandbox-verify-c10" in info.value.fix
    with pytest.raises(UserError) as empty:
        runs.select([], root / "nothing")
    assert "run a load first" in empty.value.fix


def test_an_unreadable_manifest_is_listed_but_names_no_label(root: Path) -> None:
    broken = root / "20261201T130000-broken-eeee"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    listed = {info.run_id: info for info in runs.listing(root)}
    assert listed["20261201T130000-broken-eeee"].status == "unreadable"
    assert runs.resolve("burst-c2", root).name.endswith("cccc")
    info = listed["20261201T120000-burst-c2-cccc"]
    assert (info.tickets, info.max_concurrency, info.executions) == (500, 2, 1)


def test_labels_are_kept_whole_in_run_ids() -> None:
    longest = "x" * LABEL_MAX
    run_id = new_run_id(longest)
    assert f"-{longest}-" in run_id and RUN_ID.match(run_id)
    assert "-sandbox-verify-c10-" in new_run_id("sandbox-verify-c10")
    assert "-steady-r0.5-" in new_run_id("steady-r0.5")  # make load's default label at RATE=0.5
    for bad in ("x" * (LABEL_MAX + 1), "wall c2", "c2/next", "ünï", ".", "..", "-", "_", "-c2", "c2."):
        with pytest.raises(UserError):
            check_label(bad)


def sof(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOF_RUNS_DIR": str(root)}
    return subprocess.run([str(SOF), *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False)


def test_sof_runs_lists_runs_and_answers_scripts(root: Path) -> None:
    listing = sof(root, "runs")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "id", "label"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.startswith("2026")}
    assert rows["20261201T120000-burst-c2-cccc"][:2] == ["burst-c2", "complete"]
    assert rows["20261130T090000-sandbox-verify-c-dddd"][0] == "sandbox-verify-c10"
    assert "4 runs in" in listing.stdout
    path = sof(root, "runs", "--show", "path", "burst-c2")
    assert path.stdout.strip() == str(root / "20261201T120000-burst-c2-cccc")
    assert sof(root, "runs", "--show", "tickets", "burst-c2", "burst-c10").stdout.split() == ["500", "500"]
    missing = sof(root, "runs", "wall-c2")
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no run 'wall-c2': no run id") and "Traceback" not in missing.stderr


def test_sof_runs_shows_a_killed_harness_run_as_crashed(root: Path) -> None:
    """A run whose harness was SIGKILLed keeps `running` in its manifest; `sof runs` must say crashed."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = make_run(root, "20261201T130000-killed-ffff", "killed", "2026-12-01T13:00:00.000+00:00")
    manifest = json.loads((folder / "manifest.json").read_text())
    import socket

    manifest.update(status="running", harness={"pid": dead.pid, "host": socket.gethostname(),
                                               "heartbeat_at": "2026-12-01T13:00:02.000+00:00"})  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert {i.run_id: i.status for i in runs.listing(root)}["20261201T130000-killed-ffff"] == "crashed"
    listing = sof(root, "runs")
    row = next(line for line in listing.stdout.splitlines() if line.startswith("20261201T130000-killed"))
    assert row.split()[1:3] == ["killed", "crashed"], row
    # a live harness's run still says running
    from scaleorfail.record.manifest import now_iso

    manifest["harness"] = {"pid": os.getpid(), "host": socket.gethostname(), "heartbeat_at": now_iso()}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert {i.run_id: i.status for i in runs.listing(root)}["20261201T130000-killed-ffff"] == "running"
