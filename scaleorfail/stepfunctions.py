"""Paged Step Functions reads shared by the load harness, the harvester and the activities.

Callers pass their own request function (``client.get_execution_history``, or one wrapped
in their rate limiter), so each read goes through the caller's quota.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from scaleorfail.pipeline import TERMINAL_STATUSES

TERMINAL = TERMINAL_STATUSES


def aware(moment: datetime) -> datetime:
    """A timestamp in UTC (boto3 returns aware ones; be safe with naive ones)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def history_pages(call: Callable[..., dict[str, Any]], execution_arn: str) -> tuple[list[dict[str, Any]], int]:
    """Every event of an execution (1,000 a page) and the number of pages read."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = call(**kwargs)
        pages += 1
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events, pages


def executions_since(
    call: Callable[..., dict[str, Any]], state_machine_arn: str, status: str, since: datetime
) -> Iterator[dict[str, Any]]:
    """ListExecutions filtered by status: the executions started since `since`, newest first.

    Paging stops at the first page that reaches older executions; `startDate` and
    `stopDate` come back in UTC. Stop iterating as soon as you have what you need.
    """
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "statusFilter": status, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = call(**kwargs)
        older = False
        for item in page.get("executions", []):
            started = aware(item["startDate"])
            if started < since:
                older = True
                continue
            stopped = item.get("stopDate")
            yield {**item, "startDate": started, "stopDate": aware(stopped) if stopped else None}
        token = page.get("nextToken")
        if not token or older:
            return
