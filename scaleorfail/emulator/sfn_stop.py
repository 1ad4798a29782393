"""StopExecution as AWS does it: ABORTED at once, whatever state the execution is in.

moto 5.2.5's interpreter stops a program by setting its state to stopped and waking its Wait
states; three things escaped that:

- a stop that arrives before the execution's thread has started its program (right after
  StartExecution) found no running program and was dropped - the execution ran on, its Wait
  included, and ended SUCCEEDED;
- a Retry back-off sleeps with ``time.sleep``, which nothing wakes;
- a Task waiting on its Lambda function kept the execution RUNNING until the function returned.

:func:`stop_until_stopped` repeats the stop until the program is stopped, then reports the
execution ABORTED at once (AWS does not wait for a running task either; the task's thread ends
on its own and writes nothing more). :class:`InterruptibleSleep` stands in for the retrier's
``time`` module: its back-off wait ends when the program stops. A stopped program's threads still run
to their end, and a state whose parts were pruned by the stop fails on what they did not leave (a Choice
pops an empty stack); :class:`AfterStop` keeps those failures, consequences of the stop that change
nothing a client sees, out of the emulator's log. The moto wiring is in
``moto_ext.stepfunctions.api`` (StopExecution) and ``moto_ext.stepfunctions.interpreter``
(``_interruptible_retry``); this module names
moto's objects only by the attributes it reads.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

_program = threading.local()  # the Environment evaluated on this thread: a program's, or a retrier's


@contextlib.contextmanager
def evaluating(env: Any) -> Iterator[None]:
    """`env` is evaluated on this thread inside the block - a program's, or a Retry's waiting out its
    back-off; blocks nest (a Map's iteration runs on its caller's thread, a Retry inside its program)."""
    previous = getattr(_program, "env", None)
    _program.env = env
    try:
        yield
    finally:
        _program.env = previous


def stopped_here() -> bool:
    """Whether the execution of the program evaluated on this thread was stopped (StopExecution)."""
    env = getattr(_program, "env", None)
    if env is None:
        return False
    root = env.event_manager.__dict__.get("_sof_root") or env  # frames share their execution's manager
    return type(getattr(root, "_program_state", None)).__name__ == "ProgramStopped"


class AfterStop(logging.Filter):
    """Drops the interpreter's error lines written on the thread of a stopped execution's program."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or not stopped_here()


class InterruptibleSleep:
    """``time`` for moto's retrier: ``sleep`` waits on the program's state event, so a stop ends it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        env = getattr(_program, "env", None)  # the retrier's (interpreter._interruptible_retry)
        if env is None:
            time.sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while env.is_running():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            env.program_state_event.wait(min(left, 0.5))


def program_stopped(execution: Any) -> bool:
    worker = getattr(execution, "exec_worker", None)
    env = getattr(worker, "env", None)
    state = env.program_state() if env is not None else None
    return type(state).__name__ == "ProgramStopped"


def stop_until_stopped(
    execution: Any,
    moment: datetime,
    error: str | None,
    cause: str | None,
    aborted: Any,
    deadline_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Ask the execution to stop until its program is stopped (a program not yet started ignores a stop),
    then mark it ``aborted`` now. False when it ended otherwise first, or the deadline passed."""
    until = time.monotonic() + deadline_s
    while execution.status == "RUNNING" and time.monotonic() < until:
        with contextlib.suppress(AttributeError):  # its thread has not built the program's environment yet
            execution.stop(stop_date=moment, error=error, cause=cause)
        if program_stopped(execution):
            if execution.status == "RUNNING":
                execution.stop_date = moment
                execution.exec_status = aborted
            return True
        sleep(0.01)
    return False
