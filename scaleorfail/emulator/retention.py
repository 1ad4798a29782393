"""What the emulator keeps of finished work, and what it lets go (pure logic, no moto).

AWS keeps an execution's history for 90 days; an emulator that kept everything would
grow without bound (a 10,000-ticket execution is ~200,000 history events). So:

- a finished execution's history is packed (pickled and zlib-compressed) the moment it
  ends, and its interpreter state is dropped - :func:`pack` / :func:`unpack`;
- finished executions are kept in the order they finished, within a count and a byte
  budget (packed history + input + output); past either, the oldest are evicted -
  :class:`Ledger`; the newest one is always kept;
- evicted ARNs are remembered (up to :data:`TOMBSTONES`), so that asking for one says
  *evicted* instead of *never existed* - :class:`Tombstones`;
- CloudWatch Logs events and metric data points are trimmed, oldest first, to a count -
  :func:`cutoff`.
"""

from __future__ import annotations

import pickle
import threading
import zlib
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any

TOMBSTONES = 200_000
COMPRESSION_LEVEL = 1  # fast: packing runs on the execution's own thread as it ends
TRIM_TO = 0.9  # a trim leaves this fraction of the budget, so that it does not run at every write


def pack(events: list[Any]) -> bytes:
    """A history as compact bytes (the events' own types survive: datetimes, enums)."""
    return zlib.compress(pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL), COMPRESSION_LEVEL)


def unpack(blob: bytes) -> list[Any]:
    """The events of a packed history (trusted input: only this process packs them)."""
    events = pickle.loads(zlib.decompress(blob))  # bytes this process produced itself
    assert isinstance(events, list)
    return events


class Ledger:
    """Finished items, oldest first, within a count and a byte budget."""

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count = max(1, max_count)
        self.max_bytes = max(1, max_bytes)
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, key: str, size: int) -> list[str]:
        """Record a finished item; returns the keys to evict (oldest first) to stay within budget."""
        evicted: list[str] = []
        with self._lock:
            if key in self._sizes:
                self._bytes -= self._sizes.pop(key)
            self._sizes[key] = size
            self._bytes += size
            while len(self._sizes) > 1 and (len(self._sizes) > self.max_count or self._bytes > self.max_bytes):
                old, old_size = self._sizes.popitem(last=False)
                self._bytes -= old_size
                evicted.append(old)
        return evicted

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"count": len(self._sizes), "bytes": self._bytes}


class Tombstones:
    """The most recent evicted keys (bounded), to tell 'evicted' from 'never existed'."""

    def __init__(self, limit: int = TOMBSTONES) -> None:
        self._order: deque[str] = deque()
        self._keys: set[str] = set()
        self._limit = limit
        self._lock = threading.Lock()
        self.total = 0

    def add(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self.total += 1
                if key in self._keys:
                    continue
                self._order.append(key)
                self._keys.add(key)
                while len(self._order) > self._limit:
                    self._keys.discard(self._order.popleft())

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._keys


def cutoff(timestamps: Iterable[int], budget: int) -> int | None:
    """The timestamp below which records go so that about TRIM_TO x budget newest remain.

    None when the records already fit the budget. Records at the cut-off moment itself
    stay (so a few more than the target may remain).
    """
    ordered = sorted(timestamps)
    if len(ordered) <= budget:
        return None
    keep = max(1, int(budget * TRIM_TO))
    return ordered[len(ordered) - keep]
