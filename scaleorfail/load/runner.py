"""Run the Locust harness as a child process (what `sof sweep` and `sof demo` do)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.load.options import new_run_id


def burst(
    target: str,
    tickets: int,
    max_concurrency: int,
    label: str,
    run_dir: Path | None = None,
    quiet: bool = True,
    ticket_file: Path | None = None,
) -> Path:
    """One single-batch execution of `tickets` at `max_concurrency`; returns its run directory."""
    runs = run_dir or paths.runs_dir()
    run_id = new_run_id(label)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(paths.project_root() / "loadtest" / "locustfile.py"),
        "--headless",
        "--target",
        target,
        "--profile",
        "single-batch",
        "--batch-size",
        str(tickets),
        "--max-concurrency",
        str(max_concurrency),
        "--run-label",
        label,
        "--run-id",
        run_id,
        "--run-dir",
        str(runs),
        "--loglevel",
        "WARNING",
    ]
    if ticket_file is not None:
        command += ["--tickets", str(ticket_file)]
    if quiet:
        command.append("--only-summary")
    done = subprocess.run(command, capture_output=quiet, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:] if quiet else []
        raise UserError(
            f"the load run {label} failed (exit {done.returncode}): {' / '.join(tail)}", "see the output above"
        )
    return runs / run_id
