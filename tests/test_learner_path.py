"""The README's workshop, activity by activity, as a learner runs it - on the emulator, small batches.

One test, in the README's order, through the README's own commands (the scripts/ and make
targets of its Activities table): each step is checked for what the learner reads on the
screen and what it leaves behind, and a step whose prerequisite is missing must stop with
one line and a non-zero exit instead of carrying on. The emulator is the one `make deploy`
starts (on PORT, with the ideal timing profile: this is about the path, not the latency).
Activity 9 (`make scenario SCENARIO=endpoint`) is covered by tests/test_sagemaker.py and
`make sweep` by the sweep tests; they would double this test's time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import waiting
from emulator_support import free_port

ROOT = Path(__file__).resolve().parent.parent
SOF = Path(sys.executable).with_name("sof")
TICKETS = 12  # per burst: 6 rounds at max_concurrency 2


class Learner:
    """Runs the README's commands from the repository root, in an isolated runs/ and .sof/."""

    def __init__(self, home: Path) -> None:
        self.runs = home / "runs"
        self.state = home / "state"
        self.env = {
            **os.environ,
            "SOF_RUNS_DIR": str(self.runs),
            "SOF_STATE_DIR": str(self.state),
            "SOF_TIMING": "ideal",
            "PORT": str(free_port()),
            "N": str(TICKETS),
        }
        for name in ("LABEL", "RUN", "RUNS", "TARGET", "MAX_CONCURRENCY", "MAKEFLAGS", "MFLAGS"):
            self.env.pop(name, None)

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """One of the README's commands, run to its end (as long as it keeps working: tests/waiting.py)."""
        return waiting.run(list(command), cwd=ROOT, env=self.env)

    def ok(self, *command: str) -> str:
        done = self.run(*command)
        assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stdout + done.stderr
        return done.stdout + done.stderr

    def manifests(self) -> dict[str, dict[str, object]]:
        """label -> manifest of the latest run with it."""
        found: dict[str, dict[str, object]] = {}
        for path in sorted(self.runs.glob("*/manifest.json")):
            data = json.loads(path.read_text())
            found[str(data["label"])] = data
        return found


def row(table: str, label: str) -> bool:
    """The comparison table has a row for this run (its first column is the label)."""
    return re.search(rf"^\|? ?{re.escape(label)}\s", table, re.MULTILINE) is not None


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def test_the_readme_activities_in_order(tmp_path: Path) -> None:
    learner = Learner(tmp_path)
    try:
        walk(learner)
    finally:
        learner.run(str(SOF), "local", "down")


def walk(learner: Learner) -> None:
    # Activity 4 before 3: the wall it compares against is missing - one line, non-zero, nothing started.
    early = learner.run("scripts/04-scale-up.sh")
    assert early.returncode != 0
    assert (
        last_line(early.stderr)
        == "error: no run labelled burst-c2 (the wall of Activity 3: run scripts/03-burst.sh first)"
    )
    assert not list(learner.runs.glob("*/manifest.json"))
    no_run = learner.run("make", "--no-print-directory", "rca", "RUN=bad-input")
    assert no_run.returncode != 0 and "no run 'bad-input': no run id, directory or label" in no_run.stderr

    # 1 - deploy: the emulator comes up on PORT, the stack outputs are printed.
    out = learner.ok("scripts/01-deploy.sh")
    assert f"emulator up at http://127.0.0.1:{learner.env['PORT']}" in out
    assert '"state_machine_arn"' in out

    # 2 - happy path: SUCCEEDED and per-step durations.
    out = learner.ok("scripts/02-invoke-one.sh")
    assert "status:    SUCCEEDED" in out
    for step in ("Preprocess", "Embed", "Postprocess"):
        assert re.search(rf"^{step}\s+3\s", out, re.MULTILINE), out

    # 3 - the wall: a burst labelled burst-c2, with progress while it runs, then its comparison row.
    out = learner.ok("scripts/03-burst.sh")
    assert re.search(rf"progress \d+:\d\d: {TICKETS}/{TICKETS} tickets done, 0 running, 0 queued", out), out
    assert row(out, "burst-c2"), out
    wall = learner.manifests()["burst-c2"]
    assert wall["status"] == "complete"
    assert re.fullmatch(r"\d{8}T\d{6}-burst-c2-[0-9a-f]{4}", str(wall["run_id"]))

    # 4 - scale up: bursts at 5 and 10 with the wall's ticket count, and the report of all three.
    out = learner.ok("scripts/04-scale-up.sh")
    for label in ("burst-c2", "burst-c5", "burst-c10"):
        assert row(out, label), out
    report = re.search(r"^report: (\S+report\.html)", out, re.MULTILINE)
    assert report and Path(report.group(1)).stat().st_size > 10_000
    assert learner.manifests()["burst-c10"]["summary"]["tickets"] == TICKETS

    # 5 - Logs Insights: each query answers with rows from the runs above.
    out = learner.ok("scripts/05-logs-insights.sh")
    counts = dict(re.findall(r"^# (.+?): (\d+) rows", out, re.MULTILINE))
    assert len(counts) == 5, out
    assert all(int(n) > 0 for n in counts.values()), counts

    # 6 - bad input: FAILED in Preprocess with PayloadTooLarge, kept as the run bad-input, classified by the RCA.
    out = learner.ok("scripts/06-bad-input.sh")
    assert "status:    FAILED" in out and "failed in: Preprocess" in out and "PayloadTooLarge" in out
    assert "BAD INPUT" in out
    bad_dir = learner.runs / str(learner.manifests()["bad-input"]["run_id"])
    assert "PayloadTooLarge" in (bad_dir / "rca.md").read_text()

    # 7 - throttling: the incident run classified, the fix run, the before/after table.
    out = learner.ok("scripts/07-throttling.sh")
    assert "THROTTLED" in out
    for label in ("incident-c2", "verify-c10"):
        assert row(out, label), out
    incident = learner.runs / str(learner.manifests()["incident-c2"]["run_id"])
    assert (incident / "rca.md").exists()

    # 8 - the portfolio, then cleanup: the emulator is gone afterwards.
    out = learner.ok("make", "--no-print-directory", "portfolio")
    assert "portfolio: " in out and (learner.runs / "portfolio" / "portfolio.html").exists()
    assert "[x]" in out
    learner.ok("scripts/08-cleanup.sh")
    status = learner.run(str(SOF), "local", "status")
    assert status.returncode == 3 and "not running" in status.stdout


def test_make_demo_takes_port(tmp_path: Path) -> None:
    """PORT= reaches `sof demo`: with an emulator already on another port it says so instead of using it."""
    learner = Learner(tmp_path)
    other = free_port()
    learner.ok(str(SOF), "local", "up", "--port", str(other))
    try:
        done = learner.run("make", "--no-print-directory", "demo", "DEMO_N=2")
    finally:
        learner.run(str(SOF), "local", "down")
    assert done.returncode == 2
    assert f"error: an emulator is already running at http://127.0.0.1:{other}, not on port {learner.env['PORT']}" in (
        done.stderr
    )
    assert not list(learner.runs.glob("*/manifest.json"))
