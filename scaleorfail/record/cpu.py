"""Was a run on the emulator paced by the emulator itself? The verdict on the CPU the harvest recorded.

The emulator's server is one Python process: moto's interpreter, the history writer and every
API call run under one GIL, so it cannot use much more than one core however many the machine
has. A run during which the server kept about a whole core busy measured the emulator's
ceiling, not the modelled service's behaviour: EMULATOR-BOUND. Its numbers are not AWS's
behaviour - the sweep leaves such a point out of its fit, and compare, the report and the RCA say
so beside it. (The machine's load when the run started is recorded too, for the reader; it is
not a verdict: the 1-minute average still holds the emulator's own previous run.)

A machine whose CPUs were contended over the run (the kernel counted runnable tasks waiting for
a CPU much of the time: the test suite's other workers, a build) slows every process on it, the
Lambda handlers' own code included: a handler that sleeps 250 ms wakes late. A latency tail on such
a machine is the machine's, not the modelled function's; the RCA does not take it as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EMULATOR_BOUND = 0.85  # of one core, averaged over the run's window: the server was saturated
CONTENDED = 0.5  # of the run's wall time, some runnable task waited for a CPU (Linux's CPU pressure, "some")


@dataclass(frozen=True)
class Flag:
    name: str  # EMULATOR-BOUND
    why: str  # a sentence with the numbers


def verdict(window: dict[str, Any] | None) -> Flag | None:
    """The flag a run's recorded emulator CPU earns (None: not measured, or the emulator kept up)."""
    if not window:
        return None
    cores = float(window["server_cores"])
    if cores < EMULATOR_BOUND:
        return None
    return Flag(
        "EMULATOR-BOUND",
        f"the emulator's server process used {cores:.2f} of a core over the run (one Python process: about 1 "
        "is its ceiling), so the emulator, not the modelled service, set this run's pace",
    )


def contended(window: dict[str, Any] | None) -> Flag | None:
    """The flag of a run whose machine kept runnable tasks waiting for a CPU (None: not measured, or it did not)."""
    told = window or {}
    stalled, busy = told.get("cpu_stalled"), told.get("machine_busy")
    if stalled is None or float(stalled) < CONTENDED:
        return None
    return Flag(
        "HOST-CONTENDED",
        f"some runnable task waited for a CPU {float(stalled):.0%} of the run"
        + (f" ({float(busy):.0%} of the machine's {told.get('cpus', '?')} CPUs busy)" if busy is not None else "")
        + ", so every process on it, the functions' own code included, ran late at times",
    )


def flags(window: dict[str, Any] | None) -> list[Flag]:
    """Every flag a run's recorded CPU earns: its timings are the emulator's or the machine's, not AWS's."""
    return [flag for flag in (verdict(window), contended(window)) if flag]
