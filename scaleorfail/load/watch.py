"""Is the target still there? The load harness asks the emulator every second.

The emulator keeps executions in memory: when it dies or restarts, every execution of
the run is gone, and waiting for them (up to the drain timeout) would only hide that.
The coordinator probes the emulator's health endpoint; two refused connections in a row
(nothing listens any more), a different instance id (restarted) or a refused token
(another emulator on the port) end the run at once. A slow answer is not a death: the
emulator saturates under overload, so only a long silence counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scaleorfail.emulator import control

REFUSED_LIMIT = 2  # consecutive refused probes
SILENCE_LIMIT_S = 60.0  # no answer at all for this long
PROBE_TIMEOUT_S = 2.0

Probe = Callable[..., tuple[str, dict[str, Any] | None]]


@dataclass(frozen=True)
class Lost:
    kind: str  # emulator_gone | emulator_restarted
    message: str


class TargetWatch:
    def __init__(self, url: str, token: str | None, instance: str | None, probe: Probe = control.probe) -> None:
        self.url = url
        self.token = token
        self.instance = instance
        self.probe = probe
        self.refused = 0
        self.silent_since: float | None = None

    def check(self, now: float | None = None) -> Lost | None:
        moment = time.monotonic() if now is None else now
        state, info = self.probe(self.url, timeout=PROBE_TIMEOUT_S, token=self.token)
        if state == "ok":
            self.refused, self.silent_since = 0, None
            seen = str((info or {}).get("instance") or "")
            if self.instance and seen and seen != self.instance:
                return Lost(
                    "emulator_restarted",
                    f"the emulator at {self.url} was restarted (instance {self.instance} -> {seen}): "
                    "the run's executions were lost with the old instance",
                )
            return None
        if state == "denied":
            return Lost(
                "emulator_restarted",
                f"another emulator now answers at {self.url} (it refuses this run's access token): "
                "the run's executions were lost with the old one",
            )
        if state == "refused":
            self.refused += 1
            if self.refused >= REFUSED_LIMIT:
                return Lost(
                    "emulator_gone",
                    f"the emulator at {self.url} went away (connection refused): "
                    "the run's executions were lost with it",
                )
            return None
        self.refused = 0
        if self.silent_since is None:
            self.silent_since = moment
        if moment - self.silent_since >= SILENCE_LIMIT_S:
            return Lost(
                "emulator_gone",
                f"the emulator at {self.url} has not answered for {moment - self.silent_since:.0f} s",
            )
        return None
