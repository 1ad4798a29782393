"""Numbers of one harvested run: throughput, latency percentiles, queue wait, retries,
throttles, concurrency over time, Little's law, cost."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("data") / "prices.json"
THROTTLE_ERRORS = ("Lambda.TooManyRequestsException",)  # Lambda's 429
ENDPOINT_THROTTLE_ERRORS = ("SageMakerRuntime.ThrottlingException",)  # the endpoint variant's rejection
REFUSED_ERRORS = THROTTLE_ERRORS + ENDPOINT_THROTTLE_ERRORS  # never ran, never billed
STEP_ORDER = ("Preprocess", "Embed", "Postprocess")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Cost:
    lambda_gb_s: float
    lambda_requests: int
    state_transitions: int
    usd: float
    usd_per_1000_tickets: float | None
    prices_as_of: str
    sagemaker_gb_s: float = 0.0


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
    item_ms_mean: float | None
    retries: int
    retry_errors: dict[str, int]
    throttles: int
    cloudwatch_throttles: float | None
    peak_in_flight: int
    peak_concurrency: int
    cloudwatch_peak_concurrency: float | None
    little_l: float | None
    little_ratio: float | None
    little_flag: str | None
    final_errors: dict[str, int]
    cost: Cost | None
    missing: int
    failed_starts: int
    speedup: float | None = None
    efficiency: float | None = None
    notes: list[str] = field(default_factory=list)
    endpoint_throttles: int = 0  # SageMakerRuntime.ThrottlingException attempts (endpoint variant)
    embed_backend: str = "lambda"
    timing: str | None = None  # the emulator's timing profile (aws, ideal ...) or "real AWS"
    endpoint_max_concurrency: int | None = None
    executions_running: int = 0  # a partial harvest: still RUNNING when it was read
    pending: list[str] = field(default_factory=list)  # why the harvest is partial (empty: final)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def knob(record: dict[str, Any]) -> int | None:
    value = record.get("parameters", {}).get("max_concurrency")
    if value is None:
        value = record.get("stack_default_max_concurrency")
    return None if value is None else int(value)


def step_durations(tickets: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Entered -> exited of every finished state visit of these tickets, by step."""
    durations: dict[str, list[float]] = {}
    for item in tickets:
        for visit in item["steps"]:
            if visit["out"] is not None:
                durations.setdefault(visit["step"], []).append(visit["out"] - visit["in"])
    return durations


def items(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for execution in record["executions"] for item in execution.get("items", [])]


def stats(record: dict[str, Any], prices: dict[str, Any] | None = None) -> RunStats:
    executions = record["executions"]
    ok = [e for e in executions if e["status"] == "SUCCEEDED"]
    done = [e for e in executions if e.get("stop_ms") is not None]
    wall = (max(e["stop_ms"] for e in done) - min(e["start_ms"] for e in done)) / 1000.0 if done else None
    all_items = items(record)
    tickets = sum(int(e.get("batch_size") or 0) for e in executions)
    tickets_ok = sum(1 for i in all_items if i["status"] == "SUCCEEDED" and _succeeded_all_steps(i))
    throughput = tickets_ok / wall if wall else None
    durations = [(e["stop_ms"] - e["start_ms"]) for e in done]
    step_visits = step_durations(all_items)
    task_times: dict[str, list[float]] = {}
    retries = 0
    retry_errors: dict[str, int] = {}
    throttled = 0
    rejected = 0
    for item in all_items:
        for visit in item["steps"]:
            attempts = visit["attempts"]
            retries += max(0, len(attempts) - 1)
            for index, (_, started, ended, error) in enumerate(attempts):
                if started is not None and ended is not None and error is None:
                    task_times.setdefault(visit["step"], []).append(ended - started)
                if error in THROTTLE_ERRORS:
                    throttled += 1
                if error in ENDPOINT_THROTTLE_ERRORS:
                    rejected += 1
                if error and index < len(attempts) - 1:
                    retry_errors[error] = retry_errors.get(error, 0) + 1
    map_waits = []
    for execution in executions:
        origin = execution.get("map_started")
        if origin is None:
            continue
        map_waits += [i["start"] - origin for i in execution.get("items", [])]
    item_times = [i["end"] - i["start"] for i in all_items if i["end"] is not None]
    metrics = record.get("metrics", {})
    metric_throttles = (metrics.get("account") or {}).get("Throttles_Sum")
    peak_metric = (metrics.get("account") or {}).get("ConcurrentExecutions_Maximum")
    mean_item = sum(item_times) / len(item_times) if item_times else None
    little = throughput * mean_item / 1000.0 if throughput and mean_item else None
    c = knob(record)
    effective = min(40 if c in (None, 0) else c, max(1, len(all_items))) if all_items else None
    ratio = little / effective if little and effective else None
    flag = None
    if ratio is not None and ratio > 1.15:
        flag = "more in flight than the Map allows: the wall time or timestamps look wrong"
    elif ratio is not None and ratio < 0.5 and len(executions) == 1:
        flag = "the Map ran far below its concurrency: something else limited throughput (see throttles, retries)"
    final_errors: dict[str, int] = {}
    for execution in executions:
        if execution["status"] != "SUCCEEDED" and execution.get("error"):
            final_errors[execution["error"]] = final_errors.get(execution["error"], 0) + 1
    return RunStats(
        run_id=record["run_id"],
        label=record.get("label") or record["run_id"],
        target=record["target"],
        profile=record["profile"],
        max_concurrency=c,
        executions_ok=len(ok),
        executions_failed=sum(1 for e in executions if e["status"] not in ("SUCCEEDED", "RUNNING")),
        executions_running=sum(1 for e in executions if e["status"] == "RUNNING"),
        pending=[str(p) for p in record.get("pending", [])],
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
        retries=retries,
        retry_errors=dict(sorted(retry_errors.items())),
        throttles=throttled,
        cloudwatch_throttles=metric_throttles,
        peak_in_flight=peak_in_flight(record),
        peak_concurrency=peak_tasks(record),
        cloudwatch_peak_concurrency=peak_metric,
        little_l=round(little, 2) if little is not None else None,
        little_ratio=round(ratio, 3) if ratio is not None else None,
        little_flag=flag,
        final_errors=final_errors,
        cost=cost(record, prices or load_prices()),
        missing=len(record.get("reconciliation", {}).get("missing", [])),
        failed_starts=int(record.get("reconciliation", {}).get("failed_starts", 0)),
        endpoint_throttles=rejected,
        embed_backend=str((record.get("embed") or {}).get("backend") or "lambda"),
        timing=(record.get("timing") or {}).get("profile"),
        endpoint_max_concurrency=(record.get("embed") or {}).get("max_concurrency"),
    )


def _succeeded_all_steps(item: dict[str, Any]) -> bool:
    return not any(visit["step"] == "Quarantine" for visit in item["steps"])


def _ordered(table: dict[str, list[float]]) -> dict[str, list[float]]:
    keys = [s for s in STEP_ORDER if s in table] + sorted(set(table) - set(STEP_ORDER))
    return {k: table[k] for k in keys}


def timeline(record: dict[str, Any], resolution_ms: float | None = None) -> dict[str, list[float]]:
    """In-flight items, queued items, running Lambda tasks and throttles over time (from histories).

    Sampled every resolution_ms (default: about 500 samples over the run, at least 10 ms apart).
    """
    changes: dict[str, list[tuple[float, int]]] = {"in_flight": [], "queued": [], "tasks": []}
    throttle_times: list[float] = []
    origin = min((e["start_ms"] for e in record["executions"]), default=0.0)
    for execution in record["executions"]:
        base = execution["start_ms"] - origin
        map_start = execution.get("map_started")
        for item in execution.get("items", []):
            start = base + item["start"]
            end = base + (item["end"] if item["end"] is not None else item["start"])
            changes["in_flight"] += [(start, 1), (end, -1)]
            if map_start is not None:
                changes["queued"] += [(base + map_start, 1), (start, -1)]
            for visit in item["steps"]:
                for _, started, ended, error in visit["attempts"]:
                    if error in REFUSED_ERRORS and ended is not None:
                        throttle_times.append(base + ended)
                    if started is not None and ended is not None:
                        changes["tasks"] += [(base + started, 1), (base + ended, -1)]
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


def peak_in_flight(record: dict[str, Any]) -> int:
    """Most Map items in progress at once, across the run's executions."""
    events: list[tuple[float, int]] = []
    for execution in record["executions"]:
        base = execution["start_ms"]
        for item in execution.get("items", []):
            events.append((base + item["start"], 1))
            events.append((base + (item["end"] if item["end"] is not None else item["start"]), -1))
    return _peak(events)


def peak_tasks(record: dict[str, Any]) -> int:
    """Most tasks (Lambda invocations, endpoint requests) running at once (started -> ended), from the histories."""
    events: list[tuple[float, int]] = []
    for execution in record["executions"]:
        base = execution["start_ms"]
        for item in execution.get("items", []):
            for visit in item["steps"]:
                for _, started, ended, error in visit["attempts"]:
                    if started is not None and ended is not None and error not in REFUSED_ERRORS:
                        events += [(base + started, 1), (base + ended, -1)]  # a refused call never ran
    return _peak(events)


@functools.cache  # read once per process: stats() prices every run
def load_prices() -> dict[str, Any]:
    return dict(json.loads(PRICES_FILE.read_text()))


def cost(record: dict[str, Any], prices: dict[str, Any]) -> Cost | None:
    """List-price cost of a run: Lambda GB-seconds and requests, Step Functions transitions."""
    memory = {step.capitalize(): (info or {}).get("memory_mb") for step, info in record.get("functions", {}).items()}
    embed = record.get("embed") or {}
    endpoint_memory = embed.get("memory_mb") if embed.get("backend") == "sagemaker" else None
    gb_s = 0.0
    sm_gb_s = 0.0
    requests = 0
    transitions = 0
    for execution in record["executions"]:
        transitions += int(execution.get("state_transitions") or 0)
        for item in execution.get("items", []):
            for visit in item["steps"]:
                transitions += max(0, len(visit["attempts"]) - 1)  # each retry is a transition
                on_endpoint = visit["step"] == "Embed" and embed.get("backend") == "sagemaker"
                size = memory.get(visit["step"])
                for _, started, ended, error in visit["attempts"]:
                    if error in REFUSED_ERRORS or started is None or ended is None:
                        continue  # a throttled call is neither billed nor run
                    if on_endpoint:  # serverless inference: billed per ms of processing, by memory
                        sm_gb_s += (ended - started) / 1000.0 * (endpoint_memory or 0) / 1024.0
                        continue
                    requests += 1
                    if size:
                        gb_s += math.ceil(ended - started) / 1000.0 * size / 1024.0
    lam, sfn = prices["lambda"], prices["step_functions_standard"]
    usd = (
        gb_s * lam["usd_per_gb_second"]
        + requests * lam["usd_per_million_requests"] / 1e6
        + transitions * sfn["usd_per_thousand_state_transitions"] / 1000.0
        + sm_gb_s * prices.get("sagemaker_serverless", {}).get("usd_per_gb_second", 0.0)
    )
    tickets = sum(int(e.get("batch_size") or 0) for e in record["executions"])
    return Cost(
        lambda_gb_s=round(gb_s, 4),
        lambda_requests=requests,
        state_transitions=transitions,
        usd=round(usd, 8),
        usd_per_1000_tickets=round(usd / tickets * 1000.0, 6) if tickets else None,
        prices_as_of=str(prices.get("as_of")),
        sagemaker_gb_s=round(sm_gb_s, 4),
    )
