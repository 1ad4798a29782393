"""The console's AWS side: one set of boto3 clients and one client-side quota for every open page.

Every call goes through :class:`Api`: the Step Functions APIs through token buckets at the
published quotas (scaleorfail.ratelimit; unlimited on the emulator), shared by all pages
and all browser tabs, since they share this one server. A live page's history read
does not wait for a token: when the bucket is empty the page is served from the cache
and reads again on its next tick (:meth:`Api.try_call`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scaleorfail.ratelimit import ApiLimiter, TokenBucket
from scaleorfail.target import Target


class ApiError(Exception):
    """An AWS error as the console shows it: AWS's code and message, and the HTTP status to answer with."""

    def __init__(self, code: str, message: str, status: int = 502) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class ReadOnlyError(ApiError):
    def __init__(self, action: str) -> None:
        super().__init__(
            "ReadOnlyConsole",
            f"{action} is not allowed: this console is read-only (the AWS target, or sof console --read-only)",
            403,
        )


NOT_FOUND_CODES = (
    "ExecutionDoesNotExist",
    "StateMachineDoesNotExist",
    "ResourceNotFoundException",
    "ResourceNotFound",
    "DashboardNotFoundError",
    "DashboardNotFound",
)


def api_error(error: Exception) -> ApiError:
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code") or "Error")
        status = 404 if code in NOT_FOUND_CODES else 400 if code.endswith(("Exception", "Input", "Error")) else 502
        return ApiError(code, str(info.get("Message") or error), status)
    if isinstance(error, BotoCoreError):
        return ApiError(type(error).__name__, str(error), 502)
    return ApiError(type(error).__name__, str(error), 500)


@dataclass
class Api:
    """The console's clients for one target, its quota, and what it has called."""

    target: Target
    read_only: bool
    limiter: ApiLimiter = field(init=False)
    calls: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # live reads left for the next tick (no token)
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.limiter = ApiLimiter.for_target(self.target.name, self.target.region)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.target.client(service, max_attempts=2, read_timeout=20.0)
            return self._clients[service]

    def _bucket(self, api: str) -> TokenBucket:
        with self._lock:
            bucket = self.limiter.buckets.get(api)
            if bucket is None:
                capacity, rate = self.limiter.quotas.get(api, (None, None))
                bucket = self.limiter.buckets[api] = TokenBucket(capacity, rate)
            return bucket

    def call(self, service: str, api: str, **kwargs: Any) -> Any:
        """Call an API, waiting for the quota's token when there is one; AWS errors become ApiError."""
        self._bucket(api).acquire()
        return self._invoke(service, api, kwargs)

    def try_call(self, service: str, api: str, **kwargs: Any) -> Any | None:
        """Call an API only if its quota has a token now; None (and counted as skipped) when not."""
        bucket = self._bucket(api)
        if bucket.rate is not None:
            with bucket._lock:
                wait = bucket.wait_time(time.monotonic())
            if wait > 0:
                self.skipped[api] += 1
                return None
        return self._invoke(service, api, kwargs)

    def change(self, service: str, api: str, **kwargs: Any) -> Any:
        """A call that changes the account: refused when read-only."""
        if self.read_only:
            raise ReadOnlyError(api)
        return self.call(service, api, **kwargs)

    def _invoke(self, service: str, api: str, kwargs: dict[str, Any]) -> Any:
        method = getattr(self.client(service), _snake(api))
        self.calls[api] += 1
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as error:
            raise api_error(error) from None


def _snake(api: str) -> str:
    out = []
    for i, char in enumerate(api):
        if char.isupper() and i and not api[i - 1].isupper():
            out.append("_")
        out.append(char.lower())
    return "".join(out)
