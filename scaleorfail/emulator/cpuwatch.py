"""The emulator's own CPU, second by second: was the emulator, not the modelled service, the bottleneck?

A sampler thread records, once a second, the server process's CPU seconds (time.process_time:
every thread's), the machine's 1-minute load average, and - where Linux tells them - the machine's
busy CPU seconds (/proc/stat) and the time some runnable task waited for a CPU (the kernel's CPU
pressure, /proc/pressure/cpu). ``GET /_sof/cpu?start=&end=`` (epoch seconds) sums a run's window
from them, and the harvest keeps the answer in the run's record (record/cpu.py judges it:
EMULATOR-BOUND, and a machine whose CPUs were contended). Six hours of samples are kept (about 1 MB).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

INTERVAL_S = 1.0
KEEP_S = 6 * 3600
PEAK_SPAN_S = 5.0  # the busiest stretch of this length within a window (a short saturation an average hides)
PRESSURE = Path("/proc/pressure/cpu")  # Linux 4.20+ with PSI: "some ... total=<microseconds>"
STAT = Path("/proc/stat")  # "cpu  user nice system idle iowait irq softirq steal ..." in clock ticks
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


@dataclass(frozen=True)
class Sample:
    at: float  # epoch seconds
    cpu_s: float  # the server process's CPU seconds so far
    load: float  # the machine's 1-minute load average
    stall_s: float | None = None  # seconds some runnable task waited for a CPU, so far (None: not told)
    busy_s: float | None = None  # the machine's busy CPU seconds (all CPUs), so far (None: not told)


def cpu_stall_s() -> float | None:
    """The kernel's count of the time at least one runnable task waited for a CPU (None: no PSI here)."""
    try:
        some = PRESSURE.read_text().splitlines()[0]
        return int(some.rsplit("total=", 1)[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_s() -> float | None:
    """The machine's busy CPU seconds, summed over its CPUs: all but idle and I/O wait (None: no /proc/stat)."""
    try:
        ticks = [int(x) for x in STAT.read_text().split("\n", 1)[0].split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) * TICK_S
    except (OSError, IndexError, ValueError):
        return None


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
    cpu_stalled: float | None = None  # share of the window some runnable task waited for a CPU (PSI "some")
    machine_busy: float | None = None  # share of all the machine's CPUs busy over the window

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
        now = Sample(time.time(), time.process_time(), os.getloadavg()[0], cpu_stall_s(), machine_busy_s())
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
    cpus = os.cpu_count() or 1
    first_s, last_s = inside[0], inside[-1]
    stalled = None if first_s.stall_s is None or last_s.stall_s is None else (last_s.stall_s - first_s.stall_s) / wall
    busy = None if first_s.busy_s is None or last_s.busy_s is None else (last_s.busy_s - first_s.busy_s) / wall / cpus
    return WindowCpu(
        start=start,
        end=end,
        samples=len(inside),
        server_cores=round(cores, 3),
        server_cores_peak=round(max(peak, cores), 3),
        load_before=round(first_s.load, 2),
        cpus=cpus,
        cpu_stalled=None if stalled is None else round(min(1.0, max(0.0, stalled)), 3),
        machine_busy=None if busy is None else round(min(1.0, max(0.0, busy)), 3),
    )
