"""Client-side token buckets at the published Step Functions API quotas.

AWS throttles each Step Functions API with a token bucket per account and Region
(bucket size, refill rate per second). Calling through a bucket of the same shape keeps
a tool inside the quota, so a harvest of thousands of executions never meets
ThrottlingException. The emulator has no quota: its target gets unlimited buckets.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUOTAS_FILE = Path(__file__).with_name("data") / "sfn_api_quotas.json"


class TokenBucket:
    """Blocking token bucket; unlimited when rate is None."""

    def __init__(self, capacity: float | None, rate: float | None) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity or 0.0
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def wait_time(self, now: float) -> float:
        """Seconds until a token is available (and take it when zero)."""
        assert self.capacity is not None and self.rate is not None
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def acquire(self) -> float:
        """Take one token, sleeping as needed; returns the time slept."""
        if self.rate is None:
            return 0.0
        slept = 0.0
        while True:
            with self._lock:
                delay = self.wait_time(time.monotonic())
            if delay <= 0:
                return slept
            time.sleep(delay)
            slept += delay


def published_quotas(region: str) -> dict[str, tuple[float, float]]:
    data = json.loads(QUOTAS_FILE.read_text())
    size = "large" if region in data["large_regions"] else "other"
    return {api: (float(v[size][0]), float(v[size][1])) for api, v in data["apis"].items()}


@dataclass
class ApiLimiter:
    """One bucket per API; counts every call made through it."""

    quotas: dict[str, tuple[float, float]]
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    waited_s: float = 0.0

    @classmethod
    def for_target(cls, target_name: str, region: str) -> ApiLimiter:
        return cls({} if target_name == "local" else published_quotas(region))

    def call(self, api: str, function: Any, **kwargs: Any) -> Any:
        bucket = self.buckets.get(api)
        if bucket is None:
            capacity, rate = self.quotas.get(api, (None, None))
            bucket = self.buckets[api] = TokenBucket(capacity, rate)
        self.waited_s += bucket.acquire()
        self.calls[api] += 1
        return function(**kwargs)
