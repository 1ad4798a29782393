"""Full garbage collections between runs, not in the middle of one (issue 22: overhead, capacity).

CPython's cyclic collector runs a full (oldest-generation) collection whenever the objects that
survived into it have grown by a quarter. The emulator keeps everything in memory - every
execution's history, every log line, every metric datum - so its heap only grows (430,000 objects
after four 400-ticket runs), and each full collection walks all of it holding the GIL: 200 ms on a
2-CPU machine, about one every 3 s under load (measured with a gc callback). For those 200 ms no
execution, Task or API call moves: four warm 400-ticket runs at max_concurrency 40 took 2.96-3.34 s
with them and 2.80-2.91 s with full collections off, and the emulator's CPU per Lambda task fell
from 1.11 to 0.78 ms (medians of the bench's A/B, docs/benchmarks.md).

So :class:`FullCollections`:

- freezes the heap the emulator starts with (moto, botocore's models: never garbage), so that no
  collection walks it again (``gc.freeze``);
- turns off the automatic full collection (the youngest two generations are collected as before:
  they are small and most garbage dies there);
- runs the full collection itself, on a daemon thread, once the emulator has been quiet (nothing
  running: no execution, no Task, no Lambda invocation or endpoint request) for ``quiet_s`` -
  between a run and the next, where a pause delays nobody;
- and never defers it more than ``most_deferred_s`` while busy, so the cyclic garbage a long busy
  stretch leaves (ended executions' interpreter frames) is still reclaimed: memory stays bounded by
  what that much work leaves, with one pause per stretch instead of one every few seconds.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

QUIET_S = 1.0  # nothing running this long: a full collection delays nobody
MOST_DEFERRED_S = 60.0  # busy this long since the last full collection: collect anyway
LEAST_APART_S = 10.0  # an idle emulator's stray allocations (health checks, samplers) do not walk the heap often
CHECK_S = 0.25
NEVER = 1_000_000_000  # a gen-2 threshold the count never reaches: no automatic full collection
LOG = logging.getLogger("scale-or-fail")


@dataclass
class Stats:
    full_collections: int = 0
    while_busy: int = 0  # of them, forced by MOST_DEFERRED_S
    longest_pause_ms: float = 0.0
    last_pause_ms: float = 0.0
    frozen_at_start: int = 0  # objects the startup heap held, never walked again


class FullCollections:
    """Decides when the full collection runs: quiet moments, or after too long a busy stretch.

    `busy` answers whether anything is running now; `clock` and `collect` are replaceable for tests.
    """

    def __init__(
        self,
        busy: Callable[[], bool],
        quiet_s: float = QUIET_S,
        most_deferred_s: float = MOST_DEFERRED_S,
        clock: Callable[[], float] = time.monotonic,
        collect: Callable[[], object] = lambda: gc.collect(2),
        pending: Callable[[], bool] = lambda: gc.get_count()[2] > 0,
    ) -> None:
        self._busy = busy
        self._quiet_s = quiet_s
        self._most_deferred_s = most_deferred_s
        self._clock = clock
        self._collect = collect
        self._pending = pending  # young collections promoted survivors since the last full one
        self._last_full = clock()
        self._quiet_since: float | None = None
        self._stop = threading.Event()
        self.stats = Stats()

    def install(self) -> FullCollections:
        """Freeze the startup heap, take the full collection over, and start deciding on a daemon thread."""
        gc.collect()
        gc.freeze()
        self.stats.frozen_at_start = gc.get_freeze_count()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, NEVER)
        self._last_full = self._clock()
        threading.Thread(target=self._loop, name="sof-gc", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> bool:
        """One decision; True when a full collection ran."""
        now = self._clock()
        if self._busy():
            self._quiet_since = None
            if now - self._last_full < self._most_deferred_s:
                return False
            forced = True
        else:
            if self._quiet_since is None:
                self._quiet_since = now
            if now - self._quiet_since < self._quiet_s or now - self._last_full < LEAST_APART_S:
                return False
            if not self._pending():
                return False
            forced = False
        began = time.perf_counter()
        self._collect()
        pause_ms = (time.perf_counter() - began) * 1000.0
        self._last_full = self._clock()
        self.stats.full_collections += 1
        self.stats.while_busy += forced
        self.stats.last_pause_ms = round(pause_ms, 1)
        self.stats.longest_pause_ms = max(self.stats.longest_pause_ms, self.stats.last_pause_ms)
        if forced:
            LOG.info("full garbage collection while busy (deferred %.0f s): %.0f ms", self._most_deferred_s, pause_ms)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(CHECK_S):
            try:
                self.tick()
            except Exception:  # the decider must outlive a failed round
                LOG.exception("garbage collection policy: a round failed")
