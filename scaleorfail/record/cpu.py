"""Was a run on the emulator paced by the emulator itself? The verdict on the CPU the harvest recorded.

The emulator's server is one Python process: moto's interpreter, the history writer and every
API call run under one GIL, so it cannot use much more than one core however many the machine
has. A run during which the server kept about a whole core busy measured the emulator's
ceiling, not the modelled service's behaviour: EMULATOR-BOUND. A run that started on a machine
already loaded by other work (the 1-minute load average above BUSY_LOAD per CPU) had its waits
stretched by that work: MACHINE BUSY. Either way its numbers are not AWS's behaviour - the sweep
leaves such a point out of its fit, and compare and the report say so beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EMULATOR_BOUND = 0.85  # of one core, averaged over the run's window: the server was saturated
BUSY_LOAD = 1.5  # load average per CPU when the run started: other work shared the machine
FLAGS = ("EMULATOR-BOUND", "MACHINE BUSY")


@dataclass(frozen=True)
class Flag:
    name: str  # one of FLAGS
    why: str  # a sentence with the numbers


def verdict(window: dict[str, Any] | None) -> Flag | None:
    """The flag a run's recorded emulator CPU earns (None: not measured, or the emulator kept up)."""
    if not window:
        return None
    cores, load, cpus = float(window["server_cores"]), float(window["load_before"]), int(window.get("cpus") or 1)
    if cores >= EMULATOR_BOUND:
        return Flag(
            "EMULATOR-BOUND",
            f"the emulator's server process used {cores:.2f} of a core over the run (one Python process: about 1 "
            "is its ceiling), so the emulator, not the modelled service, set this run's pace",
        )
    if load > BUSY_LOAD * cpus:
        return Flag(
            "MACHINE BUSY",
            f"the machine's load average was {load:.1f} on {cpus} CPU(s) when the run started: other work "
            "stretched the emulator's waits",
        )
    return None
