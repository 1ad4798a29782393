"""Where the lab console runs, and the console address of a thing the CLI just made.

`sof console` writes `.sof/console.json` (its URL, pid and target) while it serves and
removes it when it stops. Commands that make something a learner wants to look at
(`make burst`'s execution, `sof rca`'s run) print one line with its console page - only
while a console for the same target is running. This module imports nothing of the
console itself, so the load harness and the commands can use it cheaply.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from scaleorfail import paths
from scaleorfail.emulator.identity import alive

STATE_FILE = "console.json"


def state_path() -> Path:
    return paths.state_dir() / STATE_FILE


def write_state(url: str, target: str, read_only: bool, pid: int | None = None) -> Path:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"url": url, "target": target, "read_only": read_only, "pid": pid or os.getpid()}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(path)
    return path


def clear_state(pid: int | None = None) -> None:
    """Remove the state file if it is this process's (another console may have replaced it)."""
    current = read_state()
    if current is not None and int(current.get("pid") or 0) == (pid or os.getpid()):
        state_path().unlink(missing_ok=True)


def read_state() -> dict[str, Any] | None:
    try:
        data = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def running(target: str | None = None) -> str | None:
    """The URL of the running console (for this target, when given), or None."""
    state = read_state()
    if state is None:
        return None
    pid = int(state.get("pid") or 0)
    if pid <= 0 or not alive(pid):
        return None
    if target is not None and state.get("target") != target:
        return None
    return str(state["url"]).rstrip("/")


def execution_path(arn: str) -> str:
    return "/states/executions/" + quote(arn, safe=":")


def run_path(run_id: str) -> str:
    return "/runs/" + quote(run_id, safe="")


def line(path: str, target: str | None = None) -> str | None:
    """`console: <url>` for a page, when a console is running (else None: print nothing)."""
    base = running(target)
    return None if base is None else f"console: {base}{path}"
