"""The calibrated timing model's one stateful piece: an execution's serialised history writer.

A Standard workflow persists every history event before the execution moves on, and an
inline Map's iterations all append to their parent execution's one history. Writes of one
execution are serialised (one writer per execution, as Amazon SWF - the engine design
Step Functions Standard shares - allows one open decision per execution), and the
events that arrive while a write is in flight are carried together by the next one
(group commit). A write of k events costs ``base + k * per_event``.

So at low concurrency every event pays ``base + per_event`` of latency; as iterations
multiply, writes carry more events each and the writer becomes the execution's serial
bottleneck - throughput rises with diminishing returns towards ``1 / (per_event *
events_per_item)``, the contention the Universal Scalability Law's sigma measures.

The cost is spent sleeping (outside any lock that does real work), so two cores can
still drive 40 iterations. docs/emulator.md derives the parameters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class HistoryWriter:
    """Group commit: ``write()`` returns once a write carrying this event has completed."""

    def __init__(self, base_s: float, per_event_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_s = base_s
        self.per_event_s = per_event_s
        self._sleep = sleep
        self._cond = threading.Condition()
        self._open = 0  # the batch new events join
        self._sizes: dict[int, int] = {}
        self._committed = -1  # the last batch whose write finished
        self._writing = False
        self.writes = 0
        self.events = 0

    @property
    def active(self) -> bool:
        return self.base_s > 0 or self.per_event_s > 0

    def write(self) -> None:
        if not self.active:
            return
        with self._cond:
            ticket = self._open
            self._sizes[ticket] = self._sizes.get(ticket, 0) + 1
            while self._committed < ticket and self._writing:
                self._cond.wait()
            if self._committed >= ticket:
                return
            # No write in flight and ours is not done: lead the open batch (ours) now.
            self._writing = True
            batch = self._open
            size = self._sizes.pop(batch)
            self._open += 1
        try:
            self._sleep(self.base_s + size * self.per_event_s)
        finally:
            with self._cond:
                self._committed = batch
                self._writing = False
                self.writes += 1
                self.events += size
                self._cond.notify_all()
