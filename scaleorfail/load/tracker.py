"""Completion tracking: which started executions have finished, read in bulk.

Statuses come from ListExecutions pages filtered by terminal status (newest first, so a
poll stops paging once it reaches executions older than the run) - never one
DescribeExecution per execution, which the AWS quotas (15/s) would throttle.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scaleorfail.load.starter import error_code
from scaleorfail.ratelimit import ApiLimiter
from scaleorfail.stepfunctions import TERMINAL, executions_since


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
        call = functools.partial(self.limiter.call, "ListExecutions", self.client.list_executions)
        for item in executions_since(call, self.state_machine_arn, status, self.since):
            if item["name"] in self.pending and item["stopDate"]:
                found.append(
                    Completion(item["name"], item["executionArn"], status, item["startDate"], item["stopDate"])
                )
                if len(found) >= len(self.pending):
                    break
        return found
