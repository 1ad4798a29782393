"""Step Functions: the Map Runs of Distributed Map states, and their child executions.

A :class:`MapRun` is what DescribeMapRun, ListMapRuns, UpdateMapRun and ListExecutions(mapRunArn)
read: its settings (max concurrency and tolerated failure, which UpdateMapRun changes while it
runs), its item and execution counts as its children start and end, and the children themselves.
The registry (:data:`RUNS`, :data:`CHILDREN`) is where those API calls - and DescribeExecution,
GetExecutionHistory and StopExecution of a child - find them; :mod:`.distributed` runs them.

Counts follow the API reference: an item or a child is ``pending`` until its execution starts,
``failed`` / ``timedOut`` / ``aborted`` / ``succeeded`` when it ended so, and ``resultsWritten`` once
a ResultWriter wrote its result. Nothing here touches moto's internals beyond reading a child
``Execution``'s ``exec_status``, ``output``, ``error`` and ``cause``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
COUNT_FIELDS = {"SUCCEEDED": "succeeded", "FAILED": "failed", "TIMED_OUT": "timedOut", "ABORTED": "aborted"}
PAGE_DEFAULT, PAGE_MAX = 100, 1000  # ListExecutions: maxResults 0 is the default page
UNLIMITED = 10_000  # MaxConcurrency 0: as many child executions at once as a Map Run allows
THRESHOLD_ERROR = "States.ExceedToleratedFailureThreshold"
THRESHOLD_CAUSE = "The specified tolerated failure threshold was exceeded"


@dataclass
class Child:
    """One child workflow execution of a Map Run (a batch of `items` items)."""

    index: int
    items: int
    execution: Any  # the moto parser Execution (distributed.ChildExecution)
    status: str = "RUNNING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    written: bool = False

    @property
    def arn(self) -> str:
        return str(self.execution.exec_arn)


def _counts() -> dict[str, int]:
    return dict.fromkeys(
        (
            "pending",
            "running",
            "succeeded",
            "failed",
            "timedOut",
            "aborted",
            "total",
            "resultsWritten",
            "failuresNotRedrivable",
            "pendingRedrive",
        ),
        0,
    )


@dataclass
class MapRun:
    arn: str
    execution_arn: str  # the parent execution
    state_machine_arn: str  # the child workflows' state machine: <parent>/<label>
    execution_type: str
    max_concurrency: int
    tolerated_count: int
    tolerated_percentage: float
    count_set: bool  # a ToleratedFailureCount applies (declared, or set by UpdateMapRun)
    percentage_set: bool
    start_date: datetime = field(default_factory=lambda: datetime.now(UTC))
    stop_date: datetime | None = None
    status: str = "RUNNING"
    items_total: int = 0
    executions_total: int = 0
    children: list[Child] = field(default_factory=list)
    by_arn: dict[str, Child] = field(default_factory=dict)
    item_counts: dict[str, int] = field(default_factory=_counts)
    execution_counts: dict[str, int] = field(default_factory=_counts)
    lock: threading.Condition = field(default_factory=threading.Condition)

    # -- settings ---------------------------------------------------------------------------

    @property
    def slots(self) -> int:
        return UNLIMITED if self.max_concurrency <= 0 else min(self.max_concurrency, UNLIMITED)

    def update(self, max_concurrency: int | None, count: int | None, percentage: float | None) -> None:
        """UpdateMapRun: the new settings apply to the children started from now on."""
        with self.lock:
            if max_concurrency is not None:
                self.max_concurrency = int(max_concurrency)
            if count is not None:
                self.tolerated_count, self.count_set = int(count), True
            if percentage is not None:
                self.tolerated_percentage, self.percentage_set = float(percentage), True
            self.lock.notify_all()

    def exceeded(self) -> bool:
        """More items failed (or timed out) than the Map Run tolerates (call with the lock held)."""
        failed = self.item_counts["failed"] + self.item_counts["timedOut"]
        if failed == 0:
            return False
        checks = []
        if self.count_set:
            checks.append(failed > self.tolerated_count)
        if self.percentage_set:
            checks.append(failed * 100.0 > self.tolerated_percentage * max(self.items_total, 1))
        return any(checks) if checks else True

    # -- counts -----------------------------------------------------------------------------

    def planned(self, items: int, executions: int) -> None:
        with self.lock:
            self.items_total, self.executions_total = items, executions
            for counts, total in ((self.item_counts, items), (self.execution_counts, executions)):
                counts["total"] = counts["pending"] = total

    def started(self, child: Child) -> None:
        """Call with the lock held."""
        self.children.append(child)
        self.by_arn[child.arn] = child
        for counts, weight in ((self.item_counts, child.items), (self.execution_counts, 1)):
            counts["pending"] -= weight
            counts["running"] += weight

    def ended(
        self, child: Child, status: str, output: Any = None, error: str | None = None, cause: str | None = None
    ) -> bool:
        """A child's end (its first report only); True when this call counted it."""
        with self.lock:
            if child.status != "RUNNING":
                return False
            child.status, child.output, child.error, child.cause = status, output, error, cause
            key = COUNT_FIELDS.get(status, "failed")
            for counts, weight in ((self.item_counts, child.items), (self.execution_counts, 1)):
                counts["running"] -= weight
                counts[key] += weight
            self.lock.notify_all()
            return True

    def results_written(self, children: list[Child]) -> None:
        with self.lock:
            for child in children:
                if not child.written:
                    child.written = True
                    self.item_counts["resultsWritten"] += child.items
                    self.execution_counts["resultsWritten"] += 1

    def finish(self, status: str) -> None:
        with self.lock:
            if self.status == "RUNNING":
                self.status, self.stop_date = status, datetime.now(UTC)
            self.lock.notify_all()

    # -- API shapes -------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {
                "mapRunArn": self.arn,
                "executionArn": self.execution_arn,
                "status": self.status,
                "startDate": self.start_date,
                "maxConcurrency": self.max_concurrency,
                "toleratedFailurePercentage": self.tolerated_percentage,
                "toleratedFailureCount": self.tolerated_count,
                "itemCounts": dict(self.item_counts),
                "executionCounts": dict(self.execution_counts),
                "redriveCount": 0,
            }
            if self.stop_date is not None:
                out["stopDate"] = self.stop_date
            return out

    def list_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "executionArn": self.execution_arn,
            "mapRunArn": self.arn,
            "stateMachineArn": self.state_machine_arn,
            "startDate": self.start_date,
        }
        if self.stop_date is not None:
            item["stopDate"] = self.stop_date
        return item

    def child_items(self, status: str | None = None) -> list[dict[str, Any]]:
        """ListExecutions(mapRunArn): the children, newest first (running by start, others by stop)."""
        with self.lock:
            children = list(self.children)
        out = []
        for child in children:
            execution = child.execution
            current = str(getattr(execution.exec_status, "value", execution.exec_status))
            if status is not None and current != status:
                continue
            item: dict[str, Any] = {
                "executionArn": child.arn,
                "stateMachineArn": self.state_machine_arn,
                "name": execution.name,
                "status": current,
                "startDate": execution.start_date,
                "mapRunArn": self.arn,
                "itemCount": child.items,
                "redriveCount": 0,
            }
            if current != "RUNNING" and execution.stop_date is not None:
                item["stopDate"] = execution.stop_date
            out.append(item)
        out.sort(key=lambda i: i.get("stopDate") or i["startDate"], reverse=True)
        return out


# -- the registry ----------------------------------------------------------------------------

RUNS: dict[str, MapRun] = {}
CHILDREN: dict[str, Any] = {}  # child execution ARN -> its moto Execution
BY_EXECUTION: dict[str, list[str]] = {}  # parent execution ARN -> its Map Runs' ARNs, in start order
_registry = threading.Lock()


def register(run: MapRun) -> None:
    with _registry:
        RUNS[run.arn] = run
        BY_EXECUTION.setdefault(run.execution_arn, []).append(run.arn)


def add_child(execution: Any) -> None:
    with _registry:
        CHILDREN[str(execution.exec_arn)] = execution


def child(arn: str) -> Any:
    return CHILDREN.get(arn)


def of_execution(execution_arn: str) -> list[MapRun]:
    with _registry:
        return [RUNS[a] for a in BY_EXECUTION.get(execution_arn, []) if a in RUNS]


def forget(arns: set[str]) -> None:
    """Retention evicted these executions: children leave their Map Run, a parent takes its Map Runs along."""
    with _registry:
        for arn in arns:
            execution = CHILDREN.pop(arn, None)
            if execution is not None:
                machine = execution.state_machine
                machine.executions = [e for e in machine.executions if e.exec_arn != arn]
                run = RUNS.get(getattr(execution, "map_run_arn", ""))
                if run is not None:
                    with run.lock:
                        run.children = [c for c in run.children if c.arn != arn]
                        run.by_arn.pop(arn, None)
            for run_arn in BY_EXECUTION.pop(arn, []):
                RUNS.pop(run_arn, None)
