"""Completion tracking: which started executions have finished, read in bulk.

Statuses come from ListExecutions pages filtered by terminal status (newest first, so a
poll stops paging once it reaches executions older than the run) - never one
DescribeExecution per execution, which the AWS quotas (15/s) would throttle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scaleorfail.load.starter import error_code
from scaleorfail.ratelimit import ApiLimiter

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@dataclass
class Completion:
    name: str
    arn: str
    status: str
    started: datetime
    stopped: datetime

    @property
    def duration_ms(self) -> float:
        return (self.stopped - self.started).total_seconds() * 1000.0


class CompletionTracker:
    def __init__(self, client: Any, state_machine_arn: str, since: datetime, limiter: ApiLimiter) -> None:
        self.client = client
        self.state_machine_arn = state_machine_arn
        self.since = since - timedelta(seconds=5)  # clock skew between this machine and the service
        self.limiter = limiter
        self.pending: dict[str, str] = {}  # name -> arn
        self.errors: list[str] = []

    def add(self, name: str, arn: str) -> None:
        self.pending[name] = arn

    def poll(self) -> list[Completion]:
        """Completions found since the last poll (each reported once)."""
        found: list[Completion] = []
        for status in TERMINAL:
            if not self.pending:
                break
            try:
                found += self._scan(status)
            except Exception as exc:  # a poll failure must not stop the load
                code, message = error_code(exc)
                self.errors.append(f"ListExecutions {status}: {code}: {message}")
        for completion in found:
            self.pending.pop(completion.name, None)
        return found

    def _scan(self, status: str) -> list[Completion]:
        found = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "stateMachineArn": self.state_machine_arn,
                "statusFilter": status,
                "maxResults": 1000,
            }
            if token:
                kwargs["nextToken"] = token
            page = self.limiter.call("ListExecutions", self.client.list_executions, **kwargs)
            older = False
            for item in page.get("executions", []):
                started = _aware(item["startDate"])
                if started < self.since:
                    older = True
                    continue
                if item["name"] in self.pending and item.get("stopDate"):
                    found.append(
                        Completion(item["name"], item["executionArn"], status, started, _aware(item["stopDate"]))
                    )
            token = page.get("nextToken")
            if not token or older or len(found) >= len(self.pending):
                return found


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
