"""Run the Locust harness as a child process (what `sof sweep`, `sof demo` and `sof bad-input` do).

Quiet runs keep Locust's own output to themselves but pass the harness's progress lines
(and warnings) through, so a long burst is never silent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scaleorfail import paths, terminal
from scaleorfail.errors import UserError
from scaleorfail.load.options import new_run_id

SHOWN_PREFIXES = ("progress ", "warning:")
INDENT = "  "
TAIL_LINES = 3


def burst(
    target: str,
    tickets: int,
    max_concurrency: int | None,
    label: str,
    run_dir: Path | None = None,
    quiet: bool = True,
    ticket_file: Path | None = None,
) -> Path:
    """One single-batch execution of `tickets` at `max_concurrency` (None: the stack's); returns its run directory."""
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
        "--run-label",
        label,
        "--run-id",
        run_id,
        "--run-dir",
        str(runs),
        "--loglevel",
        "WARNING",
    ]
    if max_concurrency is not None:
        command += ["--max-concurrency", str(max_concurrency)]
    if ticket_file is not None:
        command += ["--tickets", str(ticket_file)]
    if quiet:
        command.append("--only-summary")
    code, tail = _run(command, quiet)
    if code != 0:
        raise UserError(f"the load run {label} failed (exit {code}): {' / '.join(tail)}", "see the output above")
    return runs / run_id


def _run(command: list[str], quiet: bool) -> tuple[int, list[str]]:
    """Run the harness; quiet: only its progress lines and warnings reach stderr. Returns (exit code, last lines)."""
    if not quiet:
        return subprocess.run(command, check=False).returncode, []
    tail: list[str] = []
    shown = False  # the last line was shown: its wrapped continuation lines (indented) are shown too
    env = {**os.environ, "COLUMNS": str(terminal.width() - len(INDENT))}  # indented here, it still fits
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) as process:
        assert process.stderr is not None
        for line in process.stderr:
            text = line.rstrip()
            shown = text.startswith(SHOWN_PREFIXES) or (shown and text.startswith("  "))
            if shown:
                print(f"{INDENT}{text}", file=sys.stderr, flush=True)
            elif text:
                tail = [*tail, text][-TAIL_LINES:]
    return process.returncode, tail
