"""Numbers of one harvested run: throughput, latency percentiles, queue wait, retries,
throttles, concurrency over time, Little's law, cost."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scaleorfail.pipeline import EMBED, STEPS, map_slots
from scaleorfail.record import cpu
from scaleorfail.record.model import Attempt, Execution, HarvestRecord, Item
from scaleorfail.record.pace import StartPace
from scaleorfail.stats import percentile

__all__ = ["percentile"]

PRICES_FILE = Path(__file__).resolve().parent.parent / "data" / "prices.json"  # scaleorfail/data/
THROTTLE_ERRORS = ("Lambda.TooManyRequestsException",)  # Lambda's 429
ENDPOINT_THROTTLE_ERRORS = ("SageMakerRuntime.ThrottlingException",)  # the endpoint variant's rejection
REFUSED_ERRORS = THROTTLE_ERRORS + ENDPOINT_THROTTLE_ERRORS  # never ran, never billed
STEP_ORDER = STEPS


@dataclass
class Cost:
    lambda_gb_s: float
    lambda_requests: int
    state_transitions: int
    usd: float
    usd_per_1000_tickets: float | None
    prices_as_of: str
    sagemaker_gb_s: float = 0.0
    express_requests: int = 0  # a Distributed Map's EXPRESS child executions (billed per request ...)
    express_gb_s: float = 0.0  # ... and per GB-second: 64 MB and 100 ms increments each


@dataclass
class RunStats:
    run_id: str
    label: str
    target: str
    profile: str
    max_concurrency: int | None
    executions_ok: int
    executions_failed: int
    tickets: int
    tickets_ok: int
    wall_s: float | None
    throughput: float | None  # tickets processed per second
    execution_ms: dict[str, float | None]
    step_ms: dict[str, dict[str, float | None]]
    task_ms: dict[str, dict[str, float | None]]
    queue_wait_ms: dict[str, float | None]
    item_ms_mean: float | None  # the median is item_ms_p50 (below)
    retries: int
    retry_errors: dict[str, int]
    throttles: int
    cloudwatch_throttles: float | None
    peak_in_flight: int
    peak_concurrency: int  # from the START..END log lines where read (where the limit applies), else the histories
    cloudwatch_peak_concurrency: float | None
    little_l: float | None
    little_ratio: float | None
    little_flag: str | None
    final_errors: dict[str, int]
    cost: Cost | None
    missing: int
    failed_starts: int
    speedup: float | None = None
    throttled_starts: int = 0  # failed starts refused by StartExecution's quota (ThrottlingException)
    history_peak_concurrency: int = 0  # tasks open at once by their TaskStarted..TaskSucceeded/Failed events
    peak_from_logs: bool = False  # peak_concurrency counts START..END log lines (else the histories' task windows)
    efficiency: float | None = None
    notes: list[str] = field(default_factory=list)
    endpoint_throttles: int = 0  # SageMakerRuntime.ThrottlingException attempts (endpoint variant)
    item_ms_p50: float | None = None  # an item's typical time once started (one starved item moves the mean)
    embed_backend: str = "lambda"
    timing: str | None = None  # the emulator's timing profile (aws, ideal ...) or "real AWS"
    endpoint_max_concurrency: int | None = None
    executions_running: int = 0  # a partial harvest: still RUNNING when it was read
    pending: list[str] = field(default_factory=list)  # why the harvest is partial (empty: final)
    metrics_shared_with: int = 0  # other executions of the state machine in the run's CloudWatch minutes
    baseline_reason: str = ""  # why compare chose it as the baseline ("" when it is not the baseline)
    tickets_rejected: int = 0  # set aside as REJECTED by the quarantine policy (bad input); the batch went on
    start_pace: StartPace | None = None  # a stream's achieved start rate against the asked one
    map_mode: str = "inline"  # distributed: the tickets ran as a Map Run's child executions
    child_executions: int = 0  # of the Map Runs (distributed)
    emulator_flag: str | None = None  # EMULATOR-BOUND: the emulator, not the service, set the pace
    emulator_flag_why: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def knob(record: HarvestRecord) -> int | None:
    return record.max_concurrency


def step_durations(tickets: Iterable[Item]) -> dict[str, list[float]]:
    """Entered -> exited of every finished state visit of these tickets, by step."""
    durations: dict[str, list[float]] = {}
    for item in tickets:
        for visit in item.visits:
            if visit.duration_ms is not None:
                durations.setdefault(visit.step, []).append(visit.duration_ms)
    return durations


def items(record: HarvestRecord) -> list[Item]:
    return record.items


def stats(record: HarvestRecord, prices: dict[str, Any] | None = None) -> RunStats:
    executions = record.executions
    ok = [e for e in executions if e.status == "SUCCEEDED"]
    done = [e for e in executions if e.stop_ms is not None]
    wall = (max(e.stop_ms or 0.0 for e in done) - min(e.start_ms for e in done)) / 1000.0 if done else None
    all_items = record.items
    tickets = record.tickets
    tickets_ok = sum(1 for i in all_items if i.status == "SUCCEEDED" and not i.quarantined)
    throughput = tickets_ok / wall if wall else None
    durations = [e.duration_ms for e in done if e.duration_ms is not None]
    step_visits = step_durations(all_items)
    task_times: dict[str, list[float]] = {}
    retries = 0
    retry_errors: dict[str, int] = {}
    throttled = 0
    rejected = 0
    for item in all_items:
        for visit in item.visits:
            attempts = visit.attempts
            retries += visit.retries
            for index, attempt in enumerate(attempts):
                if attempt.duration_ms is not None and attempt.error is None:
                    task_times.setdefault(visit.step, []).append(attempt.duration_ms)
                if attempt.error in THROTTLE_ERRORS:
                    throttled += 1
                if attempt.error in ENDPOINT_THROTTLE_ERRORS:
                    rejected += 1
                if attempt.error and index < len(attempts) - 1:
                    retry_errors[attempt.error] = retry_errors.get(attempt.error, 0) + 1
    map_waits = [
        item.start - execution.map_started
        for execution in executions
        if execution.map_started is not None
        for item in execution.items
        if item.start is not None
    ]
    item_times = [d for i in all_items if (d := i.duration_ms) is not None]
    metrics = record.metrics
    history_peak = peak_tasks(record)
    mean_item = sum(item_times) / len(item_times) if item_times else None
    little = throughput * mean_item / 1000.0 if throughput and mean_item else None
    c = knob(record)
    effective = min(map_slots(c, record.map_mode), max(1, len(all_items))) if all_items else None
    ratio = little / effective if little and effective else None
    flag = None
    # Little's L counts items in flight across every execution, the Map's limit is per execution: only a
    # single execution can be held to it (a stream of batches runs several Maps at once).
    if ratio is not None and ratio > 1.15 and len(executions) == 1:
        flag = "more in flight than the Map allows: the wall time or timestamps look wrong"
    elif ratio is not None and ratio < 0.5 and len(executions) == 1:
        flag = "the Map ran far below its concurrency: something else limited throughput (see throttles, retries)"
    final_errors: dict[str, int] = {}
    for execution in executions:
        if execution.status != "SUCCEEDED" and execution.error:
            final_errors[execution.error] = final_errors.get(execution.error, 0) + 1
    return RunStats(
        run_id=record.run_id,
        label=record.label or record.run_id,
        target=record.target,
        profile=record.profile,
        max_concurrency=c,
        executions_ok=len(ok),
        executions_failed=sum(1 for e in executions if e.status not in ("SUCCEEDED", "RUNNING")),
        executions_running=sum(1 for e in executions if e.status == "RUNNING"),
        pending=list(record.pending),
        tickets=tickets,
        tickets_ok=tickets_ok,
        wall_s=round(wall, 3) if wall is not None else None,
        throughput=round(throughput, 3) if throughput is not None else None,
        execution_ms={f"p{p}": percentile(durations, p) for p in (50, 95, 99)},
        step_ms={s: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for s, v in _ordered(step_visits).items()},
        task_ms={s: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for s, v in _ordered(task_times).items()},
        queue_wait_ms={
            "p50": percentile(map_waits, 50),
            "p95": percentile(map_waits, 95),
            "max": max(map_waits, default=None),
        },
        item_ms_mean=round(mean_item, 1) if mean_item is not None else None,
        item_ms_p50=percentile(item_times, 50),
        retries=retries,
        retry_errors=dict(sorted(retry_errors.items())),
        throttles=throttled,
        cloudwatch_throttles=metrics.value("account", "Throttles_Sum"),
        peak_in_flight=peak_in_flight(record),
        peak_concurrency=record.logs.peak_concurrency if record.logs.peak_concurrency is not None else history_peak,
        history_peak_concurrency=history_peak,
        peak_from_logs=record.logs.peak_concurrency is not None,
        cloudwatch_peak_concurrency=metrics.value("account", "ConcurrentExecutions_Maximum"),
        little_l=round(little, 2) if little is not None else None,
        little_ratio=round(ratio, 3) if ratio is not None else None,
        little_flag=flag,
        final_errors=final_errors,
        cost=cost(record, prices or load_prices()),
        missing=len(record.reconciliation.missing),
        failed_starts=record.reconciliation.failed_starts,
        throttled_starts=record.reconciliation.throttled_starts,
        endpoint_throttles=rejected,
        embed_backend=record.embed.backend,
        timing=record.timing.get("profile"),
        endpoint_max_concurrency=record.embed.max_concurrency,
        metrics_shared_with=record.metrics.shared_total,
        tickets_rejected=sum(1 for i in all_items if i.quarantined),
        start_pace=record.start_pace,
        map_mode=record.map_mode,
        child_executions=sum(run.children for run in record.map_runs),
        emulator_flag=flag_of.name if (flag_of := cpu.verdict(record.emulator_cpu)) else None,
        emulator_flag_why=flag_of.why if flag_of else "",
    )


def _ordered(table: dict[str, list[float]]) -> dict[str, list[float]]:
    keys = [s for s in STEP_ORDER if s in table] + sorted(set(table) - set(STEP_ORDER))
    return {k: table[k] for k in keys}


def timeline(record: HarvestRecord, resolution_ms: float | None = None) -> dict[str, list[float]]:
    """In-flight items, queued items, running Lambda tasks and throttles over time (from histories).

    Sampled every resolution_ms (default: about 500 samples over the run, at least 10 ms apart).
    """
    changes: dict[str, list[tuple[float, int]]] = {"in_flight": [], "queued": [], "tasks": []}
    throttle_times: list[float] = []
    origin = min((e.start_ms for e in record.executions), default=0.0)
    for execution in record.executions:
        base = execution.start_ms - origin
        for item in execution.items:
            if item.start is None:
                continue
            start = base + item.start
            end = base + (item.end if item.end is not None else item.start)
            changes["in_flight"] += [(start, 1), (end, -1)]
            if execution.map_started is not None:
                changes["queued"] += [(base + execution.map_started, 1), (start, -1)]
            for visit in item.visits:
                for attempt in visit.attempts:
                    if attempt.error in REFUSED_ERRORS and attempt.ended is not None:
                        throttle_times.append(base + attempt.ended)
                    if attempt.started is not None and attempt.ended is not None:
                        changes["tasks"] += [(base + attempt.started, 1), (base + attempt.ended, -1)]
    horizon = max((t for series in changes.values() for t, _ in series), default=0.0)
    if resolution_ms is None:
        resolution_ms = max(10.0, horizon / 500.0)
    steps = int(horizon // resolution_ms) + 2
    out: dict[str, list[float]] = {"t_s": [i * resolution_ms / 1000.0 for i in range(steps)]}
    for name, series in changes.items():
        level = 0
        values = []
        ordered = sorted(series)
        index = 0
        for i in range(steps):
            moment = i * resolution_ms
            while index < len(ordered) and ordered[index][0] <= moment:
                level += ordered[index][1]
                index += 1
            values.append(float(level))
        out[name] = values
    counts = [0.0] * steps
    for moment in throttle_times:
        counts[min(steps - 1, int(moment // resolution_ms))] += 1
    out["throttles"] = counts
    return out


def _peak(events: list[tuple[float, int]]) -> int:
    level = peak = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):  # ends before starts at the same moment
        level += change
        peak = max(peak, level)
    return peak


def peak_in_flight(record: HarvestRecord) -> int:
    """Most Map items in progress at once, across the run's executions."""
    events: list[tuple[float, int]] = []
    for execution in record.executions:
        base = execution.start_ms
        for item in execution.items:
            if item.start is None:
                continue
            events.append((base + item.start, 1))
            events.append((base + (item.end if item.end is not None else item.start), -1))
    return _peak(events)


def peak_tasks(record: HarvestRecord, step: str | None = None) -> int:
    """Most tasks (Lambda invocations, endpoint requests) running at once (started -> ended), from the histories.

    Of one step when given (the history's answer to that step's ConcurrentExecutions maximum).
    """
    events: list[tuple[float, int]] = []
    for execution in record.executions:
        base = execution.start_ms
        for attempt in _attempts(execution, step):
            if attempt.started is not None and attempt.ended is not None and attempt.error not in REFUSED_ERRORS:
                events += [(base + attempt.started, 1), (base + attempt.ended, -1)]  # a refused call never ran
    return _peak(events)


def invocations(record: HarvestRecord, step: str) -> int:
    """Task attempts of a step that ran (Lambda invocations the histories show; a 429 never ran)."""
    return sum(
        1
        for execution in record.executions
        for attempt in _attempts(execution, step)
        if attempt.ran and attempt.error not in REFUSED_ERRORS
    )


def warm_task_ms(record: HarvestRecord, step: str) -> tuple[list[float], int]:
    """A step's successful task times without its cold starts (sorted), and how many were left out.

    The REPORT lines count a function's cold starts but do not say which task they slowed; a cold
    start is the slowest kind of invocation, so as many of the slowest successful attempts are left
    out. What remains is the warm latency, the one a wall (a queue, a limit) would change."""
    logs = record.logs.function(step)
    cold = logs.cold_starts if logs else 0
    times = sorted(
        attempt.duration_ms
        for execution in record.executions
        for attempt in _attempts(execution, step)
        if attempt.duration_ms is not None and attempt.error is None
    )
    warm = times[: max(0, len(times) - cold)] if len(times) > cold else times
    return warm, len(times) - len(warm)


def slow_tail(times: list[float], factor: float, noise_ms: float) -> bool:
    """Whether latency has a slow tail: more than 5 % of the times, and at least two of them, over `factor`
    times the median and more than `noise_ms` above it. On many samples that is "p95 far from p50"; on a
    dozen, one slow sample (a process that waited for a CPU on a busy machine) is not a tail."""
    median = percentile(times, 50)
    if not median:
        return False
    far = sum(1 for t in times if t > factor * median and t - median > noise_ms)
    return far >= 2 and far > 0.05 * len(times)


def handler_slowed(record: HarvestRecord, step: str, factor: float = 1.2) -> bool:
    """Whether the function's own time (REPORT Duration) shows slow calls: its mean over `factor` times its
    median. A slow tail in the task times that the handler's own time does not share came from around the
    call (dispatch, a machine short of CPU), not from the function. Unknown (no REPORT lines): True."""
    logs = record.logs.function(step)
    if logs is None or not logs.duration_ms_p50 or logs.duration_ms_mean is None:
        return True
    return logs.duration_ms_mean > factor * logs.duration_ms_p50


def function_tail(record: HarvestRecord, step: str, warm: list[float], noise_ms: float) -> tuple[bool, str]:
    """Whether a step's warm latency has a slow tail that is the function's own (slow_tail at 2.5 times the
    median), and when one was set aside, why. A tail the handler's own time does not share came from around
    the call; one on a machine whose CPUs were contended (record/cpu.py) is the machine's: every process on
    it, the handler's own code included, ran late at times."""
    if not slow_tail(warm, 2.5, noise_ms) or not handler_slowed(record, step):
        return False, ""
    host = cpu.contended(record.emulator_cpu)
    return (False, f"its tail is the machine's, not the function's: {host.why}") if host else (True, "")


def _attempts(execution: Execution, step: str | None) -> Iterable[Attempt]:
    for item in execution.items:
        for visit in item.visits:
            if step is None or visit.step == step:
                yield from visit.attempts


@functools.cache  # read once per process: stats() prices every run
def load_prices() -> dict[str, Any]:
    return dict(json.loads(PRICES_FILE.read_text()))


def cost(record: HarvestRecord, prices: dict[str, Any]) -> Cost | None:
    """List-price cost of a run: Lambda GB-seconds and requests, Step Functions transitions (a Distributed
    Map's Standard children's too), Express children's requests and GB-seconds."""
    memory = {step.capitalize(): info.memory_mb for step, info in record.functions.items()}
    on_sagemaker = record.embed.backend == "sagemaker"
    endpoint_memory = record.embed.memory_mb if on_sagemaker else None
    gb_s = 0.0
    sm_gb_s = 0.0
    requests = 0
    transitions = 0
    for execution in record.executions:
        transitions += execution.state_transitions
        for item in execution.items:
            for visit in item.visits:
                transitions += visit.retries  # each retry is a transition
                on_endpoint = visit.step == EMBED and on_sagemaker
                size = memory.get(visit.step)
                for attempt in visit.attempts:
                    took = attempt.duration_ms
                    if attempt.error in REFUSED_ERRORS or took is None:
                        continue  # a throttled call is neither billed nor run
                    if on_endpoint:  # serverless inference: billed per ms of processing, by memory
                        sm_gb_s += took / 1000.0 * (endpoint_memory or 0) / 1024.0
                        continue
                    requests += 1
                    if size:
                        gb_s += math.ceil(took) / 1000.0 * size / 1024.0
    express_requests, express_gb_s = 0, 0.0
    express = prices.get("step_functions_express", {})
    for run in record.map_runs:  # a Distributed Map's children: Standard by transition, Express by request and time
        if run.execution_type == "EXPRESS":
            express_requests += run.children_read
            express_gb_s += run.child_billed_ms / 1000.0 * float(express.get("billed_memory_mb", 64)) / 1024.0
        else:
            transitions += run.child_state_transitions
    lam, sfn = prices["lambda"], prices["step_functions_standard"]
    usd = (
        gb_s * lam["usd_per_gb_second"]
        + requests * lam["usd_per_million_requests"] / 1e6
        + transitions * sfn["usd_per_thousand_state_transitions"] / 1000.0
        + sm_gb_s * prices.get("sagemaker_serverless", {}).get("usd_per_gb_second", 0.0)
        + express_requests * express.get("usd_per_million_requests", 0.0) / 1e6
        + express_gb_s * express.get("usd_per_gb_second", 0.0)
    )
    tickets = record.tickets
    return Cost(
        lambda_gb_s=round(gb_s, 4),
        lambda_requests=requests,
        state_transitions=transitions,
        usd=round(usd, 8),
        usd_per_1000_tickets=round(usd / tickets * 1000.0, 6) if tickets else None,
        prices_as_of=str(prices.get("as_of")),
        sagemaker_gb_s=round(sm_gb_s, 4),
        express_requests=express_requests,
        express_gb_s=round(express_gb_s, 4),
    )
