"""The harvest record: everything one run left behind, typed and frozen.

run (HarvestRecord) -> executions (Execution) -> items (Item, one per ticket) -> state
visits (Visit) -> task attempts (Attempt); plus the run's CloudWatch metrics (Metrics), its
log evidence (Logs: rows and aggregates, each with how it was scoped to the run), the
Lambda account settings (AccountSettings) and the reconciliation with the manifest.

Times inside an execution (``Item.start``, ``Visit.entered``, ``Attempt.started`` ...) are
milliseconds since that execution started; ``Execution.start_ms`` / ``stop_ms`` and log
times are epoch milliseconds. Compare, report, rca and portfolio read nothing but this:
every piece of evidence they cite was frozen into the record at harvest, scoped to the run.

Schema ``scale-or-fail/harvest`` version 3 (1: first; 2: the timing profile, vague
Lambda errors qualified by their cause, final/pending, provisional metrics; 3: this typed
model, request ids, log evidence, account settings, metrics shared with other executions).
``start_pace`` (a stream's achieved start rate, :mod:`.pace`), ``Reconciliation.throttled_starts``,
``FunctionLogs.peak_concurrency`` and ``Logs.peak_concurrency`` (concurrency from the functions'
START..END log lines), ``emulator_cpu`` (the emulator's own CPU over the run), and an execution's
``map_mode`` / ``map_runs`` (a Distributed Map's Map Runs, whose child executions are its items) are
optional and were added within version 3: older records read with them empty (an inline Map). A record
of another version is not read: the run is harvested again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scaleorfail.pipeline import QUARANTINE
from scaleorfail.record.pace import StartPace

SCHEMA = "scale-or-fail/harvest"
VERSION = 3


@dataclass(frozen=True)
class Attempt:
    """One task attempt (TaskScheduled -> TaskStarted -> TaskSucceeded/Failed ...) of a state visit."""

    scheduled: float | None
    started: float | None = None
    ended: float | None = None
    error: str | None = None  # None: the attempt succeeded (or has not ended)
    request_id: str | None = None  # the Lambda invocation's RequestId, where the history carries it

    @property
    def duration_ms(self) -> float | None:
        """Task time: started -> ended (the invocation as Step Functions saw it)."""
        return None if self.started is None or self.ended is None else self.ended - self.started

    @property
    def ran(self) -> bool:
        """The attempt started and ended (a refused 429 did too: see the error)."""
        return self.started is not None and self.ended is not None


@dataclass(frozen=True)
class Visit:
    """One visit of a state: entered -> exited (None while it never exited), with its task attempts."""

    step: str
    entered: float | None
    exited: float | None = None
    attempts: tuple[Attempt, ...] = ()

    @property
    def duration_ms(self) -> float | None:
        return None if self.exited is None or self.entered is None else self.exited - self.entered

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)


@dataclass(frozen=True)
class Item:
    """One ticket: its Map iteration, from MapIterationStarted to its end event."""

    index: int
    start: float | None
    end: float | None
    status: str  # SUCCEEDED | FAILED | ABORTED | RUNNING
    visits: tuple[Visit, ...] = ()

    @property
    def duration_ms(self) -> float | None:
        return None if self.end is None or self.start is None else self.end - self.start

    @property
    def quarantined(self) -> bool:
        """Set aside as bad input (bad_input_policy = quarantine): the batch went on without it."""
        return any(visit.step == QUARANTINE for visit in self.visits)


@dataclass(frozen=True)
class Missing:
    name: str
    reason: str


@dataclass(frozen=True)
class MapRun:
    """A Distributed Map's Map Run (DescribeMapRun) and how its child executions were read.

    Its items are the execution's ``items``, read from the children's histories (STANDARD) or
    from the state machine's execution log (EXPRESS, which have no history to get)."""

    arn: str
    status: str
    execution_type: str  # STANDARD | EXPRESS (of the children)
    max_concurrency: int
    tolerated_failure_percentage: float = 0.0
    tolerated_failure_count: int = 0
    item_counts: dict[str, int] = field(default_factory=dict)
    execution_counts: dict[str, int] = field(default_factory=dict)
    start_ms: float | None = None  # epoch ms
    stop_ms: float | None = None
    children: int = 0  # child executions ListExecutions(mapRunArn) listed
    children_read: int = 0  # whose history (or execution log) was read into items
    source: str = "GetExecutionHistory"  # where the children's events came from
    child_events: int = 0  # history events of all the children together
    child_state_transitions: int = 0
    child_billed_ms: float = 0.0  # the children's durations, each rounded up to 100 ms (EXPRESS billing)
    missing: tuple[Missing, ...] = ()  # children listed but not read, with why


@dataclass(frozen=True)
class Execution:
    name: str
    arn: str
    status: str
    start_ms: float  # epoch ms
    stop_ms: float | None  # epoch ms; None while running
    batch_size: int
    history_pages: int = 0
    history_read: bool = False  # False: only its status is known (items empty)
    error: str | None = None
    cause: str | None = None  # capped at 2,000 characters
    events: int = 0
    state_transitions: int = 0
    map_started: float | None = None  # ms since the execution started
    map_length: int | None = None
    states: tuple[Visit, ...] = ()  # the visits outside the Map iterations (ApplyDefaults, ProcessTickets ...)
    items: tuple[Item, ...] = ()
    map_mode: str = "inline"  # distributed: the items are the Map Runs' child executions (map_runs)
    map_runs: tuple[MapRun, ...] = ()

    @property
    def duration_ms(self) -> float | None:
        return None if self.stop_ms is None else self.stop_ms - self.start_ms


@dataclass(frozen=True)
class Function:
    name: str
    memory_mb: int | None = None
    timeout_s: int | None = None


@dataclass(frozen=True)
class EmbedBackend:
    backend: str = "lambda"  # lambda | sagemaker
    endpoint: str | None = None
    config: str | None = None
    variant: str | None = None
    max_concurrency: int | None = None
    memory_mb: int | None = None


THROTTLED_START = "ThrottlingException"  # StartExecution over its quota (AWS's token bucket): refused, not started


@dataclass(frozen=True)
class FailedStart:
    name: str
    at: str
    error: str
    message: str
    batch_size: int
    worker: int
    seq: int

    @property
    def throttled(self) -> bool:
        """Refused by StartExecution's quota (a token bucket per account and Region), not by the input."""
        return self.error == THROTTLED_START


@dataclass(frozen=True)
class Reconciliation:
    """The harvest against the manifest: every start accounted for, or named as missing with the reason."""

    manifest_started: int
    harvested_by_status: dict[str, int]
    missing: tuple[Missing, ...]
    failed_starts: int
    balanced: bool
    unconfirmed_found: tuple[str, ...] = ()
    unconfirmed_absent: tuple[str, ...] = ()
    failed_starts_found: tuple[str, ...] = ()
    throttled_starts: int = 0  # of the failed starts, refused by StartExecution's quota (ThrottlingException)


@dataclass(frozen=True)
class Window:
    """First execution start -> last execution stop of the run."""

    start: datetime
    stop: datetime


@dataclass(frozen=True)
class Metrics:
    """CloudWatch metrics of the run's whole-minute window, one period: every statistic is run-level.

    CloudWatch data are minute-grained and per function / per state machine, not per run:
    ``shared_with`` lists the other executions of the state machine that ran in these minutes
    (their numbers are in these values too), and ``shared_total`` counts them all.
    """

    period_s: int
    start: datetime
    stop: datetime
    provisional: bool
    settled_at: datetime | None
    values: dict[str, dict[str, float | None]]  # scope (embed, account, states, endpoint ...) -> Metric_Stat
    shared_with: tuple[str, ...] = ()
    shared_total: int = 0
    listed_since: datetime | None = None  # other executions were looked for from this moment on

    def value(self, scope: str, key: str) -> float | None:
        found = (self.values.get(scope) or {}).get(key)
        return None if found is None else float(found)

    @property
    def shared(self) -> bool:
        return self.shared_total > 0


@dataclass(frozen=True)
class AccountSettings:
    lambda_concurrency: int | None  # the Lambda account concurrency limit
    unreserved: int | None = None
    source: str = "unknown"  # where the numbers come from (the run's manifest, GetAccountSettings at harvest)


@dataclass(frozen=True)
class LogScope:
    """How a piece of log evidence was selected for this run (what `how` an evidence line cites)."""

    api: str  # the call that read it (FilterLogEvents, StartQuery ...)
    log_groups: tuple[str, ...]
    start_ms: int
    stop_ms: int
    by: str  # what ties the rows to the run: request id, execution ARN, time window (ms)
    read: int = 0  # events the call returned
    kept: int = 0  # of them, this run's


@dataclass(frozen=True)
class LogRow:
    at_ms: int
    log_group: str
    message: str  # capped at 1,000 characters
    stream: str = ""
    request_id: str | None = None


@dataclass(frozen=True)
class FunctionLogs:
    """One function's REPORT lines of the run (what the memory-used and cold-starts queries aggregate)."""

    step: str
    log_group: str
    invocations: int
    cold_starts: int = 0
    init_ms_max: float | None = None
    max_memory_used_mb: int | None = None
    memory_size_mb: int | None = None
    at_memory_limit: int = 0  # REPORT lines with Max Memory Used >= Memory Size
    timeouts: int = 0
    peak_concurrency: int | None = None  # most invocations between their START and END lines at once
    duration_ms_p50: float | None = None  # REPORT Duration: the handler's own time, without the invoke around it
    duration_ms_mean: float | None = None
    init_ms_mean: float | None = None  # of the cold starts (REPORT Init Duration)


@dataclass(frozen=True)
class InsightsResult:
    """A Logs Insights query run at harvest over the run's window, and its rows."""

    key: str
    title: str
    query: str
    start_ms: int
    stop_ms: int
    rows: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class Logs:
    lambda_scope: LogScope | None = None
    functions: tuple[FunctionLogs, ...] = ()
    rows: tuple[LogRow, ...] = ()  # the run's notable lines: handler errors, runtime failures (capped)
    rows_total: int = 0
    execution_scope: LogScope | None = None
    task_failures: dict[str, int] = field(default_factory=dict)  # execution log TaskFailed lines, by error
    insights: tuple[InsightsResult, ...] = ()
    problems: tuple[str, ...] = ()  # what could not be read, and why
    # Most of the run's Lambda invocations (all its functions) between their START and END lines at once:
    # concurrency counted where Lambda's limits apply (None: no START/END pairs were read).
    peak_concurrency: int | None = None

    def matching(self, needle: str) -> list[LogRow]:
        return [row for row in self.rows if needle in row.message]

    def function(self, step: str) -> FunctionLogs | None:
        return next((f for f in self.functions if f.step == step), None)

    def query(self, key: str) -> InsightsResult | None:
        return next((q for q in self.insights if q.key == key), None)


@dataclass(frozen=True)
class HarvestRecord:
    run_id: str
    label: str
    target: str
    profile: str
    parameters: dict[str, Any]
    region: str
    window: Window
    executions: tuple[Execution, ...]
    reconciliation: Reconciliation
    metrics: Metrics
    schema: str = SCHEMA
    version: int = VERSION
    stack_default_max_concurrency: int | None = None
    timing: dict[str, Any] = field(default_factory=dict)  # the service timing the run saw (profile, knobs)
    manifest_status: str = "complete"
    manifest_failure: dict[str, Any] | None = None
    emulator_instance: str | None = None
    final: bool = True
    pending: tuple[str, ...] = ()
    reused_executions: int = 0
    failed_starts: tuple[FailedStart, ...] = ()
    harvested_at: datetime | None = None
    functions: dict[str, Function] = field(default_factory=dict)  # by step key: preprocess, embed, postprocess
    embed: EmbedBackend = field(default_factory=EmbedBackend)
    account: AccountSettings = field(default_factory=lambda: AccountSettings(None))
    logs: Logs = field(default_factory=Logs)
    api_calls: dict[str, int] = field(default_factory=dict)
    api_wait_s: float = 0.0
    harvest_seconds: float = 0.0
    start_pace: StartPace | None = None  # a stream's achieved start rate against the asked one (record.pace)
    # the emulator server's CPU over the run's window (emulator/cpuwatch.py; judged by record/cpu.py); {} on AWS
    emulator_cpu: dict[str, Any] = field(default_factory=dict)

    @property
    def items(self) -> list[Item]:
        return [item for execution in self.executions for item in execution.items]

    @property
    def max_concurrency(self) -> int | None:
        """The knob the run used: its input's max_concurrency, else the stack's default."""
        value = self.parameters.get("max_concurrency")
        if value is None:
            value = self.stack_default_max_concurrency
        return None if value is None else int(value)

    @property
    def tickets(self) -> int:
        return sum(e.batch_size for e in self.executions)

    @property
    def map_mode(self) -> str:
        """distributed when the run's Map ran its tickets as child executions (its Map Runs were read), else inline."""
        return "distributed" if any(e.map_mode == "distributed" for e in self.executions) else "inline"

    @property
    def map_runs(self) -> list[MapRun]:
        return [run for execution in self.executions for run in execution.map_runs]
