"""Waiting in tests: deadlines that follow progress, not a fixed wall clock.

A test waits for something it can observe: an execution's end, an alarm's history, a
process's exit. On a busy machine all of it is slower, so a fixed deadline would make the
verdict depend on the load. Here a wait gives up only after ``quiet_s`` seconds in which
nothing moved: neither what the test observes (``observe``: a history that grows, a journal
that gets lines) nor the CPU time of the processes doing the work (``pids``, with their
descendants; at least ``MIN_CPU_S`` of it, so timers and pollers do not count as work).
While either moves, the deadline moves with it. A hang - nothing observed, no CPU spent -
still fails, ``quiet_s`` after the last sign of life; the suite's per-test timeout
(pyproject.toml) is only the last guard against a busy loop.

Watch the CPU of processes the wait does not poll itself: a subprocess (its own CPU is its
work), not the emulator a ``check`` calls (each call costs the emulator CPU, so a stuck
execution polled every 0.1 s would look busy). For the emulator, observe what it does: the
execution's history (:func:`history_length`), a metric, an alarm's history.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil

QUIET_S = 60.0  # how long nothing may move before a wait gives up
MIN_CPU_S = 0.2  # CPU seconds in a quiet window that count as work

Pids = Iterable[int] | Callable[[], Iterable[int]]


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time (user + system) of these processes, their living descendants and the children they reaped."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            times = root.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            descendants = root.children(recursive=True)
        except psutil.Error:
            continue
        for process in descendants:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
    return total


class Watch:
    """Has anything moved since the last look: the observed value, or the processes' CPU time?"""

    def __init__(self, observe: Callable[[], Any] | None = None, pids: Pids = ()) -> None:
        self.observe = observe
        self.pids = pids
        self.seen = self._observed()
        self.cpu = self._cpu()

    def _observed(self) -> Any:
        return self.observe() if self.observe else None

    def _cpu(self) -> float:
        return cpu_seconds(self.pids() if callable(self.pids) else self.pids)

    def moved(self) -> bool:
        seen, cpu = self._observed(), self._cpu()
        moved = seen != self.seen or cpu - self.cpu >= MIN_CPU_S
        if moved:
            self.seen, self.cpu = seen, cpu
        return moved


def wait_for(
    check: Callable[[], Any],
    what: str = "the condition",
    *,
    observe: Callable[[], Any] | None = None,
    pids: Pids = (),
    quiet_s: float = QUIET_S,
    interval: float = 0.1,
) -> Any:
    """The first truthy value of check(); an AssertionError once nothing has moved for quiet_s."""
    watch = Watch(observe, pids)
    deadline = time.monotonic() + quiet_s
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            if not watch.moved():
                raise AssertionError(f"{what} did not happen: nothing moved for {quiet_s:g} s (last: {last!r})")
            deadline = time.monotonic() + quiet_s
        time.sleep(interval)


def finish(
    process: subprocess.Popen[str],
    *,
    observe: Callable[[], Any] | None = None,
    pids: Pids = (),
    quiet_s: float = QUIET_S,
    input: str | None = None,
) -> tuple[str, str]:
    """Popen.communicate(), waiting while the process (or pids) works or observe() changes.

    When nothing moved for quiet_s the process (and its session, when it leads one) is killed
    and the test fails, with the end of what it wrote."""
    watch = Watch(observe, lambda: [process.pid, *(pids() if callable(pids) else pids)])
    while True:
        try:
            stdout, stderr = process.communicate(input, timeout=quiet_s)
            return stdout or "", stderr or ""
        except subprocess.TimeoutExpired:
            input = None  # sent with the first call; communicate() goes on with what it holds
            if watch.moved():
                continue
            _kill(process)
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"{process.args!r} made no progress for {quiet_s:g} s and was killed; "
                f"its last output: {(stderr or stdout or '')[-1500:]}"
            ) from None


def run(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Any = None,
    input: str | None = None,
    observe: Callable[[], Any] | None = None,
    pids: Pids = (),
    quiet_s: float = QUIET_S,
) -> subprocess.CompletedProcess[str]:
    """subprocess.run(capture_output=True, text=True), with a deadline that follows the command's progress."""
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    stdout, stderr = finish(process, observe=observe, pids=pids, quiet_s=quiet_s, input=input)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _kill(process: subprocess.Popen[str]) -> None:
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass


def history_length(sfn: Any, arn: str) -> int:
    """How many events an execution's history holds (what a running execution adds to)."""
    count, token = 0, None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        count += len(page["events"])
        token = page.get("nextToken")
        if not token:
            return count


def running(pid: int) -> bool:
    """The process exists and has not ended (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
