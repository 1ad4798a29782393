"""Is process N (still) the emulator we started? A pid alone is not enough: pids are reused.

The emulator's state file records its pid, the process's start time (as the kernel
reports it) and its instance id; a process is taken to be that emulator only when the
pid is alive, its start time matches and its command line runs the emulator's server
module. Anything else is a stale record, and nothing is signalled.
"""

from __future__ import annotations

import os

import psutil

SERVER_MODULE = "scaleorfail.emulator.server"
START_TOLERANCE_S = 1.0


def process_start(pid: int | None = None) -> float | None:
    """The start time of a process (epoch seconds), None when there is no such process."""
    try:
        return float(psutil.Process(os.getpid() if pid is None else pid).create_time())
    except (psutil.Error, OSError):
        return None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return False


def why_not_emulator(pid: int, started: float | None) -> str | None:
    """None when pid is the emulator started at `started`; else what it is instead."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return f"pid {pid} is gone"
        command = process.cmdline()
        begun = float(process.create_time())
    except psutil.NoSuchProcess:
        return f"pid {pid} is gone"
    except psutil.AccessDenied:
        return f"pid {pid} belongs to another user"
    except (psutil.Error, OSError):
        return f"pid {pid} is gone"
    if started is not None and abs(begun - started) > START_TOLERANCE_S:
        return f"pid {pid} is now another process (started later than the emulator)"
    if SERVER_MODULE not in command:
        return f"pid {pid} is now another program ({' '.join(command)[:80] or 'unknown'})"
    return None
