"""`sof rca`: classify a run with the workshop's RCA tree, evidence first.

Leaves: THROTTLED (the hard-429 and the queueing sub-cases), EXHAUSTED, TIMED OUT,
BAD INPUT - several at once when a run has several causes - or HEALTHY. A leaf is only
reported with evidence: each line cites a value from the execution histories, a
CloudWatch metric or a log line, and the API call or Logs Insights query that shows it.
Hypotheses are labelled as such; every leaf not reported says why it is ruled out.

A pure function of the run's harvest record: every piece of evidence was frozen into it
at harvest, scoped to the run (histories by execution, Lambda log lines by request id,
the execution log by execution ARN), so a report says the same after other runs, or after
the emulator restarted. CloudWatch numbers are minute-grained and per function: where other
executions shared the run's minutes, the report cites what the histories say and why.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaleorfail.evidence import analysis, orchestration
from scaleorfail.evidence.analysis import ENDPOINT_THROTTLE_ERRORS, THROTTLE_ERRORS, RunStats, invocations, peak_tasks
from scaleorfail.pipeline import DISTRIBUTED_LIMIT, EMBED, HISTORY_EVENT_LIMIT, MAP_LIMIT, map_slots
from scaleorfail.record import cpu
from scaleorfail.record.model import HarvestRecord, LogScope, Visit
from scaleorfail.record.pace import SHORT_RATIO
from scaleorfail.terminal import hint, plural

(THROTTLE,) = THROTTLE_ERRORS  # Lambda's 429
(REJECTED,) = ENDPOINT_THROTTLE_ERRORS  # the Embed endpoint refused the request
DATA_ERRORS = ("PayloadTooLarge", "InvalidTicket")
# As harvest.history.qualified_error names them (AWS: Lambda.Unknown or Runtime.ExitError, the reason in the cause)
MEMORY_ERRORS = ("Runtime.OutOfMemory", "Runtime.ExitError (out of memory)", "Lambda.Unknown (out of memory)")
TIMEOUT_ERRORS = (
    "DependencyTimeout",
    "Sandbox.Timedout",
    "States.Timeout",
    "Lambda.Unknown (timed out)",
    "Runtime.ExitError (timed out)",
)
BONES = {
    1: "Limits / Throttling (concurrency too low, quotas, rate limits)",
    2: "Resources (memory, CPU, cold starts)",
    3: "Dependencies (slow external API, downstream throttling, network)",
    4: "Data / Input (payload too big, schema mismatch, distribution shift)",
}
# A cold start's latency (placement + init: about 370 ms on AWS and the aws profile) or a laptop's jitter.
NOISE_MS = 400.0
LEAVES = ("THROTTLED", "EXHAUSTED", "TIMED OUT", "BAD INPUT", "QUOTA", "ORCHESTRATION-BOUND")
# Step Functions' hard quota: an execution whose history reaches 25,000 events fails with States.Runtime.
HISTORY_LIMIT_ERROR = "States.Runtime"
HISTORY_LIMIT_WORDS = "maximum number of history events"
QUARANTINED = "bad-input-fix"  # the label of the bad-input verification run
SCENARIO_THROTTLED = "throttled-"  # runs of `sof scenario throttled` are labelled throttled-*
THROTTLED_FIX = "throttled-fix-c10"  # its verification run: the knob matched to the account limit


@dataclass
class Evidence:
    source: str  # history | metric | log | config
    text: str
    how: str  # the API call or query that shows it


@dataclass
class Finding:
    leaf: str
    subcase: str | None
    bone: int
    evidence: list[Evidence]
    hypothesis: str
    action: str  # prose, with the command in `backticks`
    verification: str  # prose, with the commands in `backticks`
    meaning: str = ""  # what the leaf means here, in plain words


@dataclass
class Diagnosis:
    run_id: str
    label: str
    target: str
    what_happened: list[str]
    classification: list[str]
    findings: list[Finding]
    ruled_out: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"schema": "scale-or-fail/rca", "version": 1, **asdict(self)}


def _visits(record: HarvestRecord, step: str | None = None) -> Iterator[Visit]:
    """Every state visit of every ticket of the run (of one step when given)."""
    for item in record.items:
        for visit in item.visits:
            if step is None or visit.step == step:
                yield visit


def _attempt_errors(record: HarvestRecord) -> tuple[Counter[str], Counter[tuple[str, str]], int]:
    """Errors of all task attempts, by error and by (step, error), and the number of attempts."""
    errors: Counter[str] = Counter()
    by_step: Counter[tuple[str, str]] = Counter()
    attempts = 0
    for visit in _visits(record):
        for attempt in visit.attempts:
            attempts += 1
            if attempt.error:
                errors[attempt.error] += 1
                by_step[(visit.step, attempt.error)] += 1
    return errors, by_step, attempts


def _rejected(record: HarvestRecord) -> Counter[str]:
    rejected: Counter[str] = Counter()
    for item in record.items:
        if item.quarantined:
            errors = [a.error for v in item.visits for a in v.attempts if a.error]
            rejected[errors[-1] if errors else "unknown"] += 1
    return rejected


def _history_call(record: HarvestRecord) -> str:
    names = [e.name for e in record.executions]
    shown = names[0] if len(names) == 1 else f"{len(names)} executions of run {record.run_id}"
    return f"GetExecutionHistory ({shown})"


def _clock(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M}"


def _metric_how(record: HarvestRecord, name: str) -> str:
    metrics = record.metrics
    return f"GetMetricData {name}, {metrics.start.isoformat()} .. {metrics.stop.isoformat()} (at harvest)"


def _ms_clock(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000.0, UTC).strftime("%H:%M:%S.%f")[:-3]


def _log_how(scope: LogScope | None, query: str, run: str) -> str:
    """Where frozen log evidence came from: the call, the groups, the window and how rows were tied to the run."""
    if scope is None:
        return hint(f"sof insights {query} --run {run}")
    return (
        f"{scope.api} {', '.join(scope.log_groups)}, {_ms_clock(scope.start_ms)}-{_ms_clock(scope.stop_ms)} UTC, "
        f"kept by {scope.by} ({scope.kept} of {scope.read} lines, at harvest); "
        f"the same lines: {hint(f'sof insights {query} --run {run}')}"
    )


def _time_in_step(record: HarvestRecord, step: str) -> list[float]:
    """Per ticket: entered -> exited, or -> the end of the last attempt when the state never exited."""
    spent = []
    for visit in _visits(record, step):
        ends = [a.ended for a in visit.attempts if a.ended is not None]
        end = visit.exited if visit.exited is not None else (max(ends) if ends else None)
        if end is not None and visit.entered is not None:
            spent.append(end - visit.entered)
    return spent


def _attempt_times(record: HarvestRecord, step: str) -> list[float]:
    return [d for visit in _visits(record, step) for a in visit.attempts if (d := a.duration_ms) is not None]


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


@dataclass
class _Run:
    """Everything the leaf checks read, computed once per diagnosis."""

    record: HarvestRecord
    stats: RunStats
    target_flag: str
    errors: Counter[str]
    by_step: Counter[tuple[str, str]]
    attempts: int

    @property
    def executions(self) -> list[Any]:
        return list(self.record.executions)

    @property
    def history(self) -> str:
        return _history_call(self.record)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def account_concurrency(self) -> int | None:
        return self.record.account.lambda_concurrency

    @property
    def map_limit(self) -> int:
        """Items the Map lets run at once: max_concurrency, or the Map's own cap (40 inline) when unset or 0."""
        return map_slots(self.stats.max_concurrency, self.record.map_mode)

    def burst(self, c: int, label: str, tickets: int | None = None) -> str:
        """The burst that verifies a fix: the same tickets (or `tickets`) at max_concurrency c, labelled (a hint)."""
        n = tickets or self.stats.tickets or 500
        return hint(f"make burst TARGET={self.target_flag} N={n} MAX_CONCURRENCY={c} LABEL={label}")

    def compare(self, label: str) -> str:
        return hint(f"sof compare {self.name} {label}")

    @property
    def name(self) -> str:
        """How a hint names the run: its label (the latest run with it, as the learner types it), else its id."""
        return self.record.label or self.run_id

    def step_errors(self, wanted: tuple[str, ...], verb: str) -> list[Evidence]:
        return [
            Evidence("history", f"{count} task attempt(s) {verb} {error} in {step}", self.history)
            for (step, error), count in sorted(self.by_step.items())
            if error in wanted
        ]

    def failed_with(self, wanted: tuple[str, ...]) -> list[Any]:
        return [e for e in self.executions if e.error in wanted]

    def failed_evidence(self, wanted: tuple[str, ...], why: str) -> list[Evidence]:
        """The executions that ended with one of these errors, as one line (none: no line)."""
        failed = self.failed_with(wanted)
        if not failed:
            return []
        text = f"{len(failed)} execution(s) FAILED with {failed[0].error}{why}"
        return [Evidence("history", text, "ListExecutions statusFilter=FAILED")]

    def shared(self, step: str | None = None) -> str | None:
        """Why the run's CloudWatch minutes are not the run's alone (None: nothing else was seen in them)."""
        metrics = self.record.metrics
        minutes = f"{_clock(metrics.start)}-{_clock(metrics.stop)} UTC"
        if metrics.shared_total:
            names = ", ".join(metrics.shared_with[:3]) + (" ..." if metrics.shared_total > 3 else "")
            return (
                f"{metrics.shared_total} other execution(s) of the state machine ran in the same minutes "
                f"({minutes}: {names})"
            )
        if step is not None:
            counted = metrics.value(step.lower(), "Invocations_Sum")
            ran = invocations(self.record, step)
            if counted is not None and counted > ran:
                return (
                    f"CloudWatch counted {counted:.0f} {step} invocations in {minutes}, this run's histories {ran}: "
                    "other traffic shared those minutes"
                )
        return None

    def metric_evidence(
        self, scope: str, key: str, text: str, query: str, keep_zero: bool = False, step: str | None = None
    ) -> list[Evidence]:
        """A harvested metric as one evidence line (`text` formats {value}); none when absent or 0.

        When other work shared the run's minutes, the metric is not this run's alone: it is then
        cited as such, beside the history's own count, never as the run's number.
        """
        value = self.record.metrics.value(scope, key)
        if value is None or (value == 0 and not keep_zero):
            return []
        shared = self.shared(step)
        line = text.format(value=value)
        if shared:
            line = f"{line} - not this run's alone: {shared}; the histories' count above is the run's"
        return [Evidence("metric", line, _metric_how(self.record, query))]

    def log_how(self, query: str, execution_log: bool = False) -> str:
        logs = self.record.logs
        return _log_how(logs.execution_scope if execution_log else logs.lambda_scope, query, self.name)


# A check returns the finding for its leaf, or the reason the leaf is ruled out.
Check = Finding | str | None


def _bad_input(r: _Run) -> Check:
    if not any(r.errors[e] for e in DATA_ERRORS):
        return f"0 PayloadTooLarge/InvalidTicket errors in {r.attempts} task attempts ({r.history})"
    evidence = r.step_errors(DATA_ERRORS, "failed with")
    failed = r.failed_with(DATA_ERRORS)
    for execution in failed[:3]:
        took = (execution.stop_ms or execution.start_ms) - execution.start_ms
        evidence.append(
            Evidence(
                "history",
                f"execution {execution.name} FAILED with {execution.error} {_fmt(took)} after it started",
                f"DescribeExecution / ListExecutions statusFilter=FAILED ({execution.name})",
            )
        )
    rejected = _rejected(r.record)
    if rejected:
        kinds = ", ".join(f"{k} x{v}" for k, v in rejected.items())
        evidence.append(
            Evidence(
                "history",
                f"{sum(rejected.values())} ticket(s) quarantined as REJECTED ({kinds}); the batch went on",
                r.history,
            )
        )
    lines = r.record.logs.matching("PayloadTooLarge")
    if lines:
        example = lines[0].message[:160]
        evidence.append(
            Evidence("log", f"{len(lines)} log line(s) match PayloadTooLarge, e.g. {example}", r.log_how("bad-input"))
        )
    quarantined = bool(rejected) and not failed
    return Finding(
        "BAD INPUT",
        "quarantined" if quarantined else "failed the execution",
        4,
        evidence,
        "Hypothesis: tickets reach the pipeline with no validation gate in front of it; "
        + (
            "the quarantine policy kept the good tickets and set the bad ones aside."
            if quarantined
            else "one bad ticket fails its whole batch."
        ),
        "fix the input at the source, and keep the batch going meanwhile: "
        f"{hint(f'sof deploy --target {r.target_flag} --var bad_input_policy=quarantine')} "
        "(reversible: `--var bad_input_policy=fail`)",
        f"{hint(f'sof bad-input --target {r.target_flag} --label {QUARANTINED}')} - expect SUCCEEDED with the "
        f"ticket REJECTED - then the before/after table: {r.compare(QUARANTINED)}",
        "BAD INPUT: a ticket the pipeline cannot process stopped it. "
        + (
            "Under the quarantine policy it was set aside as REJECTED and the rest of the batch went on."
            if quarantined
            else "Under the default policy (fail) one bad ticket fails its whole execution, at once, in the first "
            "step that checks it."
        ),
    )


def _hard_throttle(r: _Run) -> Check:
    throttled = r.errors[THROTTLE]
    if not throttled:
        return None
    c = r.stats.max_concurrency
    evidence = [
        Evidence("history", f"{throttled} task attempt(s) refused with {THROTTLE} (HTTP 429)", r.history),
        Evidence(
            "history",
            "429s by step: " + ", ".join(f"{s} {v}" for (s, e), v in sorted(r.by_step.items()) if e == THROTTLE),
            r.history,
        ),
    ]
    counted = r.metric_evidence(
        "account", "Throttles_Sum", "AWS/Lambda Throttles (account) = {value:.0f} in the run's minutes",
        "AWS/Lambda Throttles Sum", step=EMBED,
    )  # fmt: skip
    cloudwatch = r.record.metrics.value("account", "Throttles_Sum") or 0.0
    if counted and cloudwatch > throttled and "not this run's alone" not in counted[0].text:
        counted[0].text += (
            f" - more than the histories' {throttled}: other invocations in those minutes were throttled too "
            "(the histories' count is the run's)"
        )
    evidence += counted
    evidence.append(concurrency_evidence(r.stats, r.map_limit, r.history, r.log_how("invocations")))
    if r.account_concurrency is not None:
        evidence.append(
            Evidence(
                "config",
                f"the target's Lambda account concurrency is {r.account_concurrency}",
                "Lambda GetAccountSettings",
            )
        )
    total = r.record.logs.task_failures.get(THROTTLE, 0)
    if total:
        evidence.append(
            Evidence(
                "log",
                f"{total} TaskFailed {THROTTLE} lines of this run's executions in the execution log",
                r.log_how("throttled-retried", execution_log=True),
            )
        )
    failed = r.failed_evidence((THROTTLE,), ": the 429 was not retried")
    evidence += failed
    limit = r.account_concurrency or r.stats.peak_concurrency or 10
    safe = max(1, min(limit, c or limit))
    if r.target_flag == "local" and r.stats.label.startswith(SCENARIO_THROTTLED):
        check = (
            f"{hint('make scenario SCENARIO=throttled')} runs it as {THROTTLED_FIX} under the same account limit "
            f"(the emulator's 1,000 is back after the scenario); then {r.compare(THROTTLED_FIX)}"
        )
    else:
        check = f"{r.burst(safe, f'verify-c{safe}')}, then {r.compare(f'verify-c{safe}')}"
    return Finding(
        "THROTTLED",
        "hard limit (429)",
        1,
        evidence,
        f"Hypothesis: the Map runs up to {r.map_limit} items at once but only about {limit} Lambda "
        "invocations may run at once (account or reserved concurrency): the rest are refused with 429"
        + (" and, without retry, fail the execution." if failed else ", retried with backoff."),
        f"match the knob to the limit: max_concurrency {safe}, so that the Map queues the rest instead of Lambda "
        "refusing them",
        check + " - expect 0 throttles, every execution SUCCEEDED",
        f"THROTTLED (hard limit): Lambda refused {throttled} invocation(s) with HTTP 429 TooManyRequestsException - "
        f"more wanted to run at once than the {limit} the account (or the function's reserved concurrency) allows. "
        "This is AWS saying no, not the pipeline's own setting.",
    )


def _endpoint_rejections(r: _Run) -> Check:
    rejected = r.errors[REJECTED]
    if not rejected:
        return None
    run = r.stats
    embed = r.record.embed
    cap = embed.max_concurrency
    evidence = r.step_errors((REJECTED,), "rejected with")
    if cap:
        evidence.append(
            Evidence(
                "config",
                f"endpoint {embed.endpoint} serves at most {cap} requests at once (serverless MaxConcurrency), "
                f"while the Map allowed {r.map_limit} items in flight",
                f"DescribeEndpointConfig {embed.config or ''}".strip(),
            )
        )
    evidence += r.metric_evidence(
        "endpoint", "Invocation4XXErrors_Sum", "AWS/SageMaker Invocation4XXErrors = {value:.0f} in the run's minutes",
        "AWS/SageMaker Invocation4XXErrors Sum",
    )  # fmt: skip
    queue_p95 = run.queue_wait_ms.get("p95")
    evidence.append(
        Evidence(
            "history",
            f"no queue in front of the endpoint: items waited {_fmt(queue_p95)} (p95) for a Map slot, and the "
            f"rejected requests failed {_fmt(_first_attempt_ms(r.record, REJECTED))} after they were sent",
            r.history,
        )
    )
    failed = r.failed_evidence((REJECTED,), ": rejected, not queued, and not retried")
    evidence += failed
    safe = int(cap) if cap else 1
    return Finding(
        "THROTTLED",
        "dependency limit: the Embed endpoint's MaxConcurrency (rejected, not queued)",
        3,
        evidence,
        f"Hypothesis: the Map sends up to {r.map_limit} requests at once to an endpoint that serves "
        f"{cap or 'fewer'}; SageMaker does not queue the excess, it rejects it with ThrottlingException, "
        + ("and without a retry the execution fails." if failed else "and the retries absorb it."),
        f"keep the Map within the endpoint: max_concurrency {safe} (with embed_backend=sagemaker deployed)",
        f"{r.burst(safe, f'verify-c{safe}')}, then {r.compare(f'verify-c{safe}')} - expect SUCCEEDED, 0 rejected: "
        "the Map queues instead",
        "THROTTLED (dependency limit): the Embed endpoint refused requests above its MaxConcurrency instead of "
        "queueing them, and a refused request fails its ticket unless it is retried.",
    )


def _first_attempt_ms(record: HarvestRecord, error: str) -> float | None:
    """Median time from scheduling to the failure of the attempts that ended with error."""
    times = sorted(
        a.ended - a.scheduled
        for visit in _visits(record)
        for a in visit.attempts
        if a.error == error and a.ended is not None and a.scheduled is not None
    )
    return times[len(times) // 2] if times else None


def _history_limit(r: _Run) -> Check:
    """An execution that died at Step Functions' 25,000-event history quota: no step failed, the batch did."""
    hit = [
        e
        for e in r.executions
        if e.error == HISTORY_LIMIT_ERROR
        and (HISTORY_LIMIT_WORDS in (e.cause or "") or e.events >= HISTORY_EVENT_LIMIT)
    ]
    if not hit:
        return f"no execution failed at the {HISTORY_EVENT_LIMIT:,}-event history quota ({HISTORY_LIMIT_ERROR})"
    events = max(e.events for e in hit)
    batch = r.stats.tickets // max(1, len(r.executions))
    per_item = events / batch if batch else None
    evidence = [
        Evidence(
            "history",
            f"{len(hit)} execution(s) FAILED with {HISTORY_LIMIT_ERROR}: "
            f"{(hit[0].cause or 'the history event limit')[:200]}",
            "DescribeExecution (error, cause)",
        ),
        Evidence(
            "history",
            f"{hit[0].name}'s history holds {events:,} events (the quota is {HISTORY_EVENT_LIMIT:,}): an inline Map "
            "writes every iteration's events into its execution's one history"
            + (f", about {per_item:.0f} per ticket of a {batch}-ticket batch" if per_item else ""),
            r.history,
        ),
    ]
    largest = int((HISTORY_EVENT_LIMIT - 1) // per_item) if per_item else None
    return Finding(
        "QUOTA",
        f"execution history limit ({HISTORY_EVENT_LIMIT:,} events)",
        1,
        evidence,
        "Hypothesis: the batch is too large for one Standard execution's history; the steps did not fail, "
        "the execution ran out of history.",
        (f"smaller batches: at most about {largest} tickets per execution (the load profiles' BATCH=), "
         if largest else "smaller batches, ")
        + "or the whole batch in one execution with a Distributed Map, whose child executions each have their "
        f"own history: {hint(f'sof deploy --target {r.target_flag} --var map_mode=distributed')} (reversible)",
        (f"{r.burst(r.stats.max_concurrency or 2, 'verify-batch', largest)}, then {r.compare('verify-batch')}"
         if largest else "a run of smaller batches, compared with this one")
        + f" - no {HISTORY_LIMIT_ERROR}, every ticket harvested",
        f"QUOTA: the execution ran out of history - Step Functions keeps at most {HISTORY_EVENT_LIMIT:,} events "
        "per execution, and an inline Map writes every ticket's steps into it. The steps themselves did not fail.",
    )  # fmt: skip


def _orchestration(r: _Run) -> Check:
    """An inline Map whose one history is the serial part: its writer near capacity (evidence/orchestration.py)."""
    load = orchestration.judge(r.record, r.errors[THROTTLE])
    if isinstance(load, str):
        return load
    c = r.stats.max_concurrency
    label = orchestration.verification_label(c)
    evidence = [Evidence("history", text, r.history + how) for text, how in orchestration.evidence_lines(load)]
    return Finding(
        "ORCHESTRATION-BOUND",
        "an inline Map's one execution history",
        1,
        evidence,
        orchestration.HYPOTHESIS,
        orchestration.action(r.target_flag),
        f"{r.burst(c or 2, label)}, then {r.compare(label)} - compare throughput and wait p95",
    )


def _queueing(r: _Run) -> Check:
    run = r.stats
    c = run.max_concurrency
    queue_p95 = run.queue_wait_ms.get("p95")
    warm, cold_left_out = analysis.warm_task_ms(r.record, EMBED)  # cold starts: the Resources bone's
    item_mean, item_typical = run.item_ms_mean, run.item_ms_p50  # typical: the median (one starved item aside)
    saturated = c is not None and c > 0 and run.peak_in_flight >= min(c, max(1, run.tickets_ok))
    waited = queue_p95 is not None and item_typical is not None and queue_p95 >= 3 * item_typical
    p50, p95 = analysis.percentile(warm, 50), analysis.percentile(warm, 95) or 0.0
    tail, set_aside = analysis.function_tail(r.record, EMBED, warm, NOISE_MS)
    normal_latency = bool(p50) and not tail
    refused = r.errors[THROTTLE] or r.errors[REJECTED]
    if refused or not (saturated and waited and normal_latency and run.tickets >= 3 * (c or 1)):
        reasons = [f"0 {THROTTLE} and 0 {REJECTED} in {r.attempts} attempts"]
        metric_throttles = r.record.metrics.value("account", "Throttles_Sum")
        if metric_throttles is not None:
            shared = r.shared(EMBED)
            alone = f" (not this run's alone: {shared})" if shared else ""
            reasons.append(f"CloudWatch Throttles {metric_throttles:.0f}{alone}")
        if not waited:
            reasons.append(f"queue wait p95 {_fmt(queue_p95)} is small against item time {_fmt(item_typical)}")
        elif not normal_latency:
            reasons.append(f"items waited, but warm Embed p95 {_fmt(p95)} is far from its p50 {_fmt(p50)}")
        elif run.tickets < 3 * (c or 1):
            reasons.append(f"too few tickets ({run.tickets}) to judge queueing at max_concurrency {c}")
        elif not saturated:
            reasons.append(f"the Map never filled its {c} slots (peak {run.peak_in_flight} in flight)")
        return "; ".join(reasons)
    evidence = [
        Evidence(
            "history",
            f"items waited for a free Map slot: queue wait p95 {_fmt(queue_p95)}, while an item took "
            f"{_fmt(item_mean)} on average once started",
            r.history + ": MapIterationStarted - MapStateStarted",
        ),
        Evidence("history", f"never more than {run.peak_in_flight} items in flight = max_concurrency {c}", r.history),
        Evidence(
            "history",
            f"per-item latency normal: Embed p50 {_fmt(p50)}, p95 {_fmt(p95)}"
            + (f" (its {plural(cold_left_out, 'cold start')} left out)" if cold_left_out else "")
            + (f"; {set_aside}" if set_aside else "")
            + "; no 429"
            + (", no errors" if not any(e.status == "FAILED" for e in r.executions) else ""),
            r.history,
        ),
    ]
    evidence += _embed_concurrency(r, c)
    if run.throughput is not None and item_mean and c:
        evidence.append(
            Evidence(
                "history",
                f"throughput {run.throughput:.2f} tickets/s = about max_concurrency / latency "
                f"({c} / {item_mean / 1000:.3f} s = {c / (item_mean / 1000):.2f}): bound by the knob",
                "Little's law on the harvested timings",
            )
        )
    cap = DISTRIBUTED_LIMIT if r.record.map_mode == "distributed" else MAP_LIMIT
    better = min(cap, max((c or 1) * 5, 10), r.account_concurrency or MAP_LIMIT)
    return Finding(
        "THROTTLED",
        "queueing at the Map's max_concurrency (throughput-bound)",
        1,
        evidence,
        f"Hypothesis: max_concurrency {c} is the bottleneck; throughput cannot exceed "
        f"{c} / per-item latency however fast each step is.",
        f"raise the knob within the account concurrency: max_concurrency {better}",
        f"{r.burst(better, f'verify-c{better}')}, then {r.compare(f'verify-c{better}')} - compare wall time, "
        "throughput and queue wait p95",
        f"THROTTLED here is the orchestration cap, not Lambda refusing calls: 0 throttles, no 429. The Map's "
        f"max_concurrency ({c}) let only {c} ticket(s) be processed at a time, and the others waited in the Map's "
        "queue. The workshop files this under THROTTLED (the Limits / Throttling bone) because the limit is a "
        "concurrency setting - the pipeline's own, not AWS's.",
    )


def concurrency_evidence(stats: RunStats, map_limit: int, history: str, log_how: str) -> Evidence:
    """Most invocations at once, counted where Lambda's limit applies (START..END log lines) when read.

    The histories' task windows (TaskStarted..TaskSucceeded/Failed) also hold Step Functions' dispatch,
    the invoke round trip and the history write of the result, so more of them overlap than invocations
    ran at once: they are given beside it, named for what they include."""
    if stats.peak_from_logs:
        text = (
            f"at most {stats.peak_concurrency} Lambda invocations ran at once (START..END log lines, where the "
            f"concurrency limit applies) while the Map allowed {map_limit} items in flight"
        )
        if stats.history_peak_concurrency > stats.peak_concurrency:
            text += (
                f"; the histories' task windows overlap up to {stats.history_peak_concurrency} (they include "
                "dispatch, the invoke round trip and the history write)"
            )
        return Evidence("log", text, log_how)
    return Evidence(
        "history",
        f"at most {stats.peak_concurrency} Lambda tasks were open at once while the Map allowed {map_limit} items "
        "in flight (TaskStarted..TaskSucceeded/Failed: these windows include dispatch, the invoke round trip and "
        "the history write, so they can exceed the concurrency limit; the run's START..END log lines were not read)",
        history,
    )


def _embed_concurrency(r: _Run, c: int | None) -> list[Evidence]:
    """The plateau: Embed's CloudWatch ConcurrentExecutions maximum - when the run's minutes were its own.

    Other executions in the same minutes put their concurrency into the maximum too (a c=2 run
    after a c=5 one reads 5): then the plateau is the histories' count, and the line says why.
    """
    peak = peak_tasks(r.record, EMBED)
    value = r.record.metrics.value("embed", "ConcurrentExecutions_Maximum")
    shared = r.shared(EMBED)
    if value is not None and not shared:
        plateau = " (plateau at the knob)" if c is not None and round(value) == c else ""
        text = f"Embed ConcurrentExecutions max = {value:.0f}{plateau}"
        return [Evidence("metric", text, _metric_how(r.record, "AWS/Lambda ConcurrentExecutions Maximum (Embed)"))]
    plateau = " (plateau at the knob)" if peak == c else ""
    text = f"at most {peak} Embed invocations ran at once in this run's histories{plateau}"
    if value is not None and shared:
        text += f"; CloudWatch's Embed ConcurrentExecutions max = {value:.0f} is not cited as the run's: {shared}"
    return [Evidence("history", text, r.history)]


def _exhausted(r: _Run) -> Check:
    logs = r.record.logs
    full = [f for f in logs.functions if f.at_memory_limit]
    embed_function = r.record.functions.get("embed")
    embed_memory = embed_function.memory_mb if embed_function else None
    # REPORT lines are this run's (kept by request id where the history has them), but memory at the
    # limit alone is no death: an out-of-memory death in the histories decides, the log rows corroborate.
    if not any(r.errors[e] for e in MEMORY_ERRORS):
        embed_logs = logs.function(EMBED)
        used = (
            f"; Embed max memory used {embed_logs.max_memory_used_mb} MB of {embed_logs.memory_size_mb} MB"
            if embed_logs and embed_logs.max_memory_used_mb is not None
            else ""
        )
        at_limit = (
            f"; {len(full)} function(s) logged Max Memory Used = Memory Size in the run's logs, "
            "but no invocation of this run died of it"
            if full
            else ""
        )
        return f"0 out-of-memory deaths ({'/'.join(MEMORY_ERRORS)}) in {r.attempts} attempts{used}{at_limit}"
    evidence = r.step_errors(MEMORY_ERRORS, "died with")
    for function in full:
        evidence.append(
            Evidence(
                "log",
                f"{function.log_group}: Max Memory Used {function.max_memory_used_mb} MB = Memory Size "
                f"{function.memory_size_mb} MB ({function.at_memory_limit} of {function.invocations} REPORT lines)",
                r.log_how("memory-used"),
            )
        )
    if embed_memory:
        evidence.append(
            Evidence("config", f"the Embed function has {embed_memory} MB", "Lambda GetFunctionConfiguration")
        )
    bigger = max(256, (embed_memory or 128) * 4)
    c = r.stats.max_concurrency
    return Finding(
        "EXHAUSTED",
        "out of memory",
        2,
        evidence,
        "Hypothesis: the model needs more memory than the function is given, so the runtime is killed "
        "(on Lambda more memory also means more CPU).",
        f"give Embed more memory: {hint(f'sof deploy --target {r.target_flag} --var embed_memory_mb={bigger}')} "
        f"(reversible: `--var embed_memory_mb={embed_memory or 256}`)",
        f"{r.burst(c or 2, f'verify-mem{bigger}')}, then {r.compare(f'verify-mem{bigger}')}",
        "EXHAUSTED: the function ran out of memory and the runtime was killed; the model needs more than it is given.",
    )


def _timed_out(r: _Run) -> Check:
    slow = {e: r.errors[e] for e in TIMEOUT_ERRORS if r.errors[e]}
    if not slow:
        return f"0 timeouts ({'/'.join(TIMEOUT_ERRORS)}) in {r.attempts} attempts"
    evidence = r.step_errors(TIMEOUT_ERRORS, "failed with")
    retried = sum(v for k, v in r.stats.retry_errors.items() if k in TIMEOUT_ERRORS)
    if retried:
        evidence.append(
            Evidence("history", f"{retried} of them were retried: duration grows with each retry", r.history)
        )
    spent = _time_in_step(r.record, EMBED)
    single = sorted(_attempt_times(r.record, EMBED))
    if spent and single:
        evidence.append(
            Evidence(
                "history",
                f"time in Embed per ticket: up to {_fmt(max(spent))} (retries and backoff included), "
                f"against {_fmt(single[len(single) // 2])} for one attempt",
                r.history,
            )
        )
    evidence += r.failed_evidence(TIMEOUT_ERRORS, " after the retries")
    dependency = "DependencyTimeout" in slow
    attempt = single[len(single) // 2] if single else 1000.0
    longer_ms = max(100, int(round(2 * attempt, -2)))
    longer_s = max(1, math.ceil(2 * max(single, default=attempt) / 1000))
    c = r.stats.max_concurrency
    return Finding(
        "TIMED OUT",
        "dependency" if dependency else "function timeout",
        3,
        evidence,
        "Hypothesis: "
        + (
            "the external feature service answers slower than Embed's timeout; each retry waits again."
            if dependency
            else "the step runs longer than its function timeout (a slow downstream call or too little CPU)."
        ),
        (
            f"wait longer for the dependency (twice the {_fmt(attempt)} an attempt lasted), and fix or cache it: "
            f"{hint(f'sof deploy --target {r.target_flag} --var dependency_timeout_ms={longer_ms}')} (reversible)"
            if dependency
            else "give Embed more time: "
            f"{hint(f'sof deploy --target {r.target_flag} --var embed_timeout_seconds={longer_s}')} (reversible)"
        ),
        f"{r.burst(c or 2, 'verify-timeout')}, then {r.compare('verify-timeout')}",
        "TIMED OUT: a step waited on something slower than its timeout, and each retry waited again.",
    )


CHECKS = (("QUOTA", _history_limit), ("BAD INPUT", _bad_input), ("THROTTLED", _hard_throttle),
          ("THROTTLED", _endpoint_rejections), ("THROTTLED", _queueing), ("ORCHESTRATION-BOUND", _orchestration),
          ("EXHAUSTED", _exhausted), ("TIMED OUT", _timed_out))  # fmt: skip


def diagnose(record: HarvestRecord, run: RunStats, target_flag: str | None = None) -> Diagnosis:
    """Classify a run from its harvest record alone (no API call: the evidence is frozen in it)."""
    errors, by_step, attempts = _attempt_errors(record)
    r = _Run(record, run, target_flag or record.target, errors, by_step, attempts)
    statuses = Counter(e.status for e in r.executions)
    c = run.max_concurrency
    counts = ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())) or "none"
    what = [
        f"{plural(len(r.executions), 'execution')} ({counts}), {plural(run.tickets, 'ticket')}, "
        f"max_concurrency {c if c is not None else 'default'}, profile {run.profile}, target {run.target}"
        + (f" (emulator timing {run.timing})" if run.target == "local" and run.timing else ""),
        f"wall time {run.wall_s if run.wall_s is not None else '-'} s, throughput "
        f"{run.throughput if run.throughput is not None else '-'} tickets/s, {attempts} task attempts, "
        f"{run.retries} retries",
    ]
    pace = record.start_pace
    if pace is not None:
        what.append(
            f"start rate: {pace.achieved_per_s:.1f}/s achieved of {pace.asked_per_s:g}/s asked over {pace.starts} "
            f"StartExecution calls" + (f" - BELOW {SHORT_RATIO:.0%}: {pace.culprit}" if pace.short else "")
        )
    for map_run in record.map_runs:  # a Distributed Map: its tickets ran as child executions
        ended = map_run.execution_counts
        what.append(
            f"Distributed Map: Map Run {map_run.status}, {map_run.children:,} {map_run.execution_type} child "
            f"executions ({ended.get('succeeded', 0)} succeeded, {ended.get('failed', 0)} failed), at most "
            f"{map_run.max_concurrency or 'unlimited'} at once; their events read from {map_run.source}"
        )
    embed = record.embed
    if embed.backend == "sagemaker":
        what.append(
            f"Embed served by the SageMaker serverless endpoint {embed.endpoint} "
            f"(MaxConcurrency {embed.max_concurrency or '?'}, {embed.memory_mb or '?'} MB)"
        )
    if not r.executions or not attempts:
        return Diagnosis(
            r.run_id,
            run.label,
            run.target,
            what,
            ["INSUFFICIENT DATA"],
            [],
            {leaf: "not judged: no task attempts in the histories" for leaf in LEAVES},
            ["no execution history to judge (nothing harvested, or every start failed)"],
        )
    findings: list[Finding] = []
    ruled_out: dict[str, str] = {}
    for leaf, check in CHECKS:
        outcome = check(r)
        if isinstance(outcome, Finding):
            findings.append(outcome)
        elif outcome and not any(f.leaf == leaf for f in findings):
            ruled_out[leaf] = outcome
    leaves: list[str] = []
    for finding in findings:
        name = finding.leaf + (f" ({finding.subcase})" if finding.subcase else "")
        if name not in leaves:
            leaves.append(name)
    notes: list[str] = []
    known = (*DATA_ERRORS, THROTTLE, REJECTED, *MEMORY_ERRORS, *TIMEOUT_ERRORS)
    other = {e: v for e, v in errors.items() if e not in known}
    if other:
        notes.append("errors outside the tree: " + ", ".join(f"{k} x{v}" for k, v in other.items()))
    if not findings:
        healthy = statuses.get("SUCCEEDED", 0) == len(r.executions)
        leaves = ["HEALTHY"] if healthy else ["UNCLASSIFIED"]
        if not healthy:
            notes.append("executions failed for a reason the tree does not cover: look at the errors above")
    if pace is not None and pace.short:
        notes.append(
            f"the run is not the experiment it asked for: it {pace.sentence()}; judge its numbers at the rate achieved"
        )
    notes += [f"log evidence not read at harvest: {problem}" for problem in record.logs.problems]
    notes += [f"{flag.name}: {flag.why}; its timings are not AWS's" for flag in cpu.flags(r.record.emulator_cpu)]
    shared = r.shared()
    if shared:
        notes.append(f"CloudWatch metrics: {shared}; the report cites the histories' counts where they differ")
    return Diagnosis(r.run_id, run.label, run.target, what, leaves, findings, ruled_out, notes)


def to_markdown(diagnosis: Diagnosis) -> str:
    lines = [
        f"# Incident report: {diagnosis.label} ({diagnosis.run_id})",
        "",
        *(
            ["_The commands below name a run by its label: it stands for the latest run with that label._", ""]
            if diagnosis.label != diagnosis.run_id
            else []
        ),
        "## What happened",
        "",
        *[f"- {w}" for w in diagnosis.what_happened],
        "",
        f"## Classification: {' + '.join(diagnosis.classification)}",
        "",
    ]
    for finding in diagnosis.findings:
        title = finding.leaf + (f" - {finding.subcase}" if finding.subcase else "")
        lines += [f"### {title}", ""]
        if finding.meaning:
            lines += [f"_In plain words_: {finding.meaning}", ""]
        lines += ["**Evidence**", ""]
        lines += [f"- [{e.source}] {e.text}  \n  _shown by: {e.how}_" for e in finding.evidence]
        lines += [
            "",
            finding.hypothesis.replace("Hypothesis:", "**Hypothesis** (to be verified, not evidence):", 1),
            "",
            f"Fishbone bone {finding.bone}: {BONES[finding.bone]}",
            "",
            f"**Action** (one, safe and reversible): {finding.action}",
            "",
            f"**Verification run**: {finding.verification}",
            "",
        ]
    lines += ["## Ruled out", ""]
    lines += [f"- {leaf}: {why}" for leaf, why in diagnosis.ruled_out.items()] or ["- nothing"]
    lines += ["", "## Fishbone: why didn't it scale?", ""]
    marked = {f.bone for f in diagnosis.findings}
    for bone, text in BONES.items():
        causes = [f.leaf + (f" ({f.subcase})" if f.subcase else "") for f in diagnosis.findings if f.bone == bone]
        lines.append(f"- {'**' if bone in marked else ''}{bone}. {text}{'**' if bone in marked else ''}: "
                     + (", ".join(causes) + " - evidence above" if causes else "no evidence, no cause"))  # fmt: skip
    if diagnosis.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in diagnosis.notes]]
    return "\n".join(lines) + "\n"


def write(diagnosis: Diagnosis, out_dir: Path) -> tuple[Path, Path]:
    md = out_dir / "rca.md"
    js = out_dir / "rca.json"
    md.write_text(to_markdown(diagnosis))
    js.write_text(json.dumps(diagnosis.to_json(), indent=2) + "\n")
    return md, js
