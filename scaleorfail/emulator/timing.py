"""The timing model's stateful pieces: paced sleeps, an execution's history writer, token buckets.

**Paced sleeps** (:class:`Pacer`). Modelled time is spent sleeping, and it is a target, not an
addition: what the emulator itself takes on a thread between two modelled waits (moto's
interpreter, a sleep that ends late because the thread waits for a CPU) is made up by that
thread's next modelled sleeps, up to a cap. So a path of modelled waits keeps to its modelled
total on a busy machine, and the simulation in bench/timing_sim.py (which has no such work)
is what the emulator does whenever the work fits in the modelled time. Real work AWS does
too - a handler's run, a Retry's interval - is not made up: :meth:`Pacer.mark` after it.
A cold start is a floor in the same way: the real process start counts towards the modelled
init and placement.

**The history writer** (:class:`HistoryWriter`). A Standard workflow persists every history
event before the execution moves on, and an inline Map's iterations all append to their
parent execution's one history. Writes of one execution are serialised (one writer per
execution, as Amazon SWF - the engine design Step Functions Standard shares - allows one open
decision per execution), and the events that arrive while a write is in flight are carried
together by the next one (group commit). A write of k events costs ``base + k * per_event``.
So at low concurrency every event pays ``base + per_event`` of latency; as iterations
multiply, writes carry more events each and the writer becomes the execution's serial
bottleneck - throughput rises with diminishing returns towards ``1 / (per_event *
events_per_item)``, the contention the Universal Scalability Law's sigma measures. A write
that ends late shortens the next one; an event whose waiting thread wakes late counts that
against its thread's next modelled sleep; a write that carries only its leader's own event
is that thread's own latency, so the thread's lag may shorten it.

**Token buckets** (:class:`TokenBucket`). AWS's quotas on rates (Step Functions' StartExecution
and StateTransition, Lambda's scaling rate) are token buckets: a bucket of `capacity` tokens
refilled continuously at `rate` per second. docs/emulator.md gives every number and source.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

LAG_CAP_S = 0.050  # lateness carried at most (a thread that fell further behind stays behind)

Sleep = Callable[[float], None]
Clock = Callable[[], float]


class Pacer:
    """Modelled sleeps that keep to their modelled total: each thread makes up its own delays.

    A thread's *lag* is how far it is behind its modelled time: the emulator's own work since
    its last mark, the lateness of its sleeps and wake-ups. ``sleep`` takes the lag off the
    modelled time; ``settle`` banks the work since the mark before a modelled wait that is not
    a sleep (the history writer); ``mark`` starts counting afresh after time that is not the
    emulator's to make up (a modelled wait, a handler's run, a Retry's interval).
    """

    def __init__(self, sleep: Sleep = time.sleep, clock: Clock = time.perf_counter) -> None:
        self._sleep = sleep
        self._clock = clock
        self._local = threading.local()

    def lag(self) -> float:
        """How late this thread is (seconds), its work since the last mark included."""
        mark = getattr(self._local, "mark", None)
        since = self._clock() - mark if mark is not None else 0.0
        return min(LAG_CAP_S, float(getattr(self._local, "lag", 0.0)) + max(0.0, since))

    def settle(self) -> None:
        """Bank the work since the last mark into the lag; count afresh from now."""
        self._local.lag = self.lag()
        self._local.mark = self._clock()

    def mark(self) -> None:
        """Count afresh from now: the time since the last mark is not the emulator's to make up."""
        self._local.mark = self._clock()

    def forget(self) -> None:
        """This thread starts over as a new one would: no lag, no mark (a pooled thread between jobs)."""
        self._local.__dict__.clear()

    @contextlib.contextmanager
    def apart(self) -> Iterator[None]:
        """Run a block as a new thread would (no lag, no mark), then give this thread back its own lag and mark:
        work run on the caller's thread instead of a thread of its own keeps the timing it had there."""
        saved = dict(self._local.__dict__)
        self._local.__dict__.clear()
        try:
            yield
        finally:
            self._local.__dict__.clear()
            self._local.__dict__.update(saved)

    def consume(self, most: float) -> float:
        """Take up to `most` seconds off this thread's lag (its work since the mark included); returns how much."""
        lag = self.lag()
        taken = min(lag, max(0.0, most))
        self._local.lag = lag - taken
        self._local.mark = self._clock()
        return taken

    def late(self, seconds: float) -> None:
        """This thread was held up this long beyond a modelled wait: its next sleeps make it up."""
        if seconds > 0:
            self._local.lag = min(LAG_CAP_S, float(getattr(self._local, "lag", 0.0)) + seconds)

    def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of modelled time, less what this thread is late by."""
        if seconds <= 0:
            return
        lag = self.lag()
        if lag >= seconds:
            self._local.lag = lag - seconds
        else:
            self._local.lag = min(LAG_CAP_S, timed(self._sleep, self._clock, seconds - lag))
        self._local.mark = self._clock()


def timed(sleep: Sleep, clock: Clock, seconds: float) -> float:
    """Sleep `seconds`; returns how late the sleep ended."""
    began = clock()
    sleep(seconds)
    return max(0.0, clock() - began - seconds)


PACER = Pacer()  # the emulator's: every modelled sleep goes through it


class HistoryWriter:
    """Group commit: ``write()`` returns once a write carrying this event has completed."""

    def __init__(
        self, base_s: float, per_event_s: float, pacer: Pacer = PACER, sleep: Sleep = time.sleep,
        clock: Clock = time.perf_counter,
    ) -> None:  # fmt: skip
        self.base_s = base_s
        self.per_event_s = per_event_s
        self._pacer = pacer
        self._sleep = sleep
        self._clock = clock
        self._cond = threading.Condition()
        self._open = 0  # the batch new events join
        self._sizes: dict[int, int] = {}
        self._committed = -1  # the last batch whose write finished
        self._committed_at = 0.0
        self._writing = False
        self._debt = 0.0  # how late the last write ended: the next one is that much shorter
        self.writes = 0
        self.events = 0

    @property
    def active(self) -> bool:
        return self.base_s > 0 or self.per_event_s > 0

    def write(self) -> None:
        if not self.active:
            return
        self._pacer.settle()  # the emulator's work up to this event is this thread's to make up
        with self._cond:
            ticket = self._open
            self._sizes[ticket] = self._sizes.get(ticket, 0) + 1
            waited = False
            while self._committed < ticket and self._writing:
                waited = True
                self._cond.wait()
            # Woken by a write's end: the time it took to get a CPU again is lateness to make up.
            woke_late = self._clock() - self._committed_at if waited else 0.0
            if self._committed >= ticket:
                self._pacer.mark()  # the wait was modelled time
                self._pacer.late(woke_late)  # by this thread's next modelled sleeps
                return
            # No write in flight and ours is not done: lead the open batch (ours) now.
            self._writing = True
            batch = self._open
            size = self._sizes.pop(batch)
            self._open += 1
            cost = self.base_s + size * self.per_event_s
            debt, self._debt = self._debt + woke_late, 0.0  # the writer's lateness: this write makes it up
            if size == 1:  # a write of this thread's event alone is its own latency: its lag may shorten it
                debt += self._pacer.consume(cost - debt)
        behind = debt - cost  # still late after skipping this write's sleep altogether
        try:
            if behind < 0:
                behind = timed(self._sleep, self._clock, -behind)
        finally:
            self._pacer.mark()
            with self._cond:
                self._debt = min(LAG_CAP_S, behind)
                self._committed = batch
                self._committed_at = self._clock()
                self._writing = False
                self.writes += 1
                self.events += size
                self._cond.notify_all()


class TokenBucket:
    """`capacity` tokens, refilled continuously at `rate` per second (thread-safe).

    ``take()`` refuses when the bucket is empty (a throttled API call); ``reserve()`` always
    takes one and returns how long the caller must wait for it - the bucket may go into debt,
    so callers queue in the order they asked (a throttled state transition waits its turn).
    """

    def __init__(self, capacity: float, rate: float, clock: Clock = time.monotonic) -> None:
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._tokens = capacity
        self._updated = clock()
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return math.isinf(self.capacity) or math.isinf(self.rate)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def take(self) -> bool:
        """One token if there is one (True), else False: the call is throttled."""
        if self.unlimited:
            return True
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def reserve(self) -> float:
        """Take one token now or in turn; returns the seconds to wait for it (0: not throttled)."""
        if self.unlimited:
            return 0.0
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens
