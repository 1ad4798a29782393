"""The emulator's own CPU, second by second: was the emulator, not the modelled service, the bottleneck?

A sampler thread records, once a second, the server process's CPU seconds (time.process_time:
every thread's) and the machine's 1-minute load average; ``GET /_sof/cpu?start=&end=`` (epoch
seconds) sums a run's window from them, and the harvest keeps the answer in the run's record
(record/cpu.py judges it: EMULATOR-BOUND). Six hours of samples are kept (about 1 MB).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

INTERVAL_S = 1.0
KEEP_S = 6 * 3600
PEAK_SPAN_S = 5.0  # the busiest stretch of this length within a window (a short saturation an average hides)


@dataclass(frozen=True)
class Sample:
    at: float  # epoch seconds
    cpu_s: float  # the server process's CPU seconds so far
    load: float  # the machine's 1-minute load average


@dataclass(frozen=True)
class WindowCpu:
    """The emulator's CPU over a run's window."""

    start: float
    end: float
    samples: int
    server_cores: float  # CPU seconds of the server process / wall seconds
    server_cores_peak: float  # the busiest PEAK_SPAN_S stretch
    load_before: float  # load average at the window's start (the machine's other work)
    cpus: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class CpuWatch:
    """Samples the process's CPU and the load average every INTERVAL_S in a daemon thread."""

    def __init__(self, interval_s: float = INTERVAL_S, keep_s: float = KEEP_S) -> None:
        self.interval_s = interval_s
        self.samples: deque[Sample] = deque(maxlen=max(2, int(keep_s / interval_s)))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        now = Sample(time.time(), time.process_time(), os.getloadavg()[0])
        with self._lock:
            self.samples.append(now)

    def start(self) -> CpuWatch:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="sof-cpuwatch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def window(self, start: float, end: float) -> WindowCpu | None:
        """The server's CPU between two epoch moments (None: the window is not covered by two samples)."""
        self.sample()  # the latest moment too, for a window that ends now
        with self._lock:
            samples = list(self.samples)
        return summarise(samples, start, end)


def summarise(samples: list[Sample], start: float, end: float) -> WindowCpu | None:
    """A window's CPU from ordered samples: the samples just around it, so a short window is still covered."""
    moments = [s.at for s in samples]
    first = max(0, bisect.bisect_right(moments, start) - 1)
    last = min(len(samples) - 1, bisect.bisect_left(moments, end))
    inside = samples[first : last + 1]
    if len(inside) < 2 or inside[-1].at <= inside[0].at:
        return None
    wall = inside[-1].at - inside[0].at
    cores = (inside[-1].cpu_s - inside[0].cpu_s) / wall
    peak = 0.0
    j = 0
    for i, sample in enumerate(inside):  # the busiest stretch of at least PEAK_SPAN_S (or the whole window)
        while j < len(inside) - 1 and inside[j].at - sample.at < PEAK_SPAN_S:
            j += 1
        if j > i and inside[j].at > sample.at:
            peak = max(peak, (inside[j].cpu_s - sample.cpu_s) / (inside[j].at - sample.at))
    return WindowCpu(
        start=start,
        end=end,
        samples=len(inside),
        server_cores=round(cores, 3),
        server_cores_peak=round(max(peak, cores), 3),
        load_before=round(inside[0].load, 2),
        cpus=os.cpu_count() or 1,
    )
