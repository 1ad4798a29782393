"""`sof harvest`: everything a run left behind, read in bulk and cached.

For one run manifest: resolve unconfirmed starts, wait (bounded) until the run's
executions finish, read their statuses in bulk (ListExecutions pages by status), their
histories (paginated, 1,000 events per page, in parallel), the Lambda configuration and
the run window's CloudWatch metrics (one GetMetricData call per 500 queries). Every API
call goes through a token bucket at the published Step Functions quotas on AWS and is
counted. The result is `runs/<run_id>/harvest.json` (schema scale-or-fail/harvest v1).

Only what is over is final: a record is ``"final": true`` when the run's harness has
ended and none of its executions is still RUNNING (``"pending"`` says what is not over).
A partial record is written too, but never served as a cached answer: the next harvest
keeps its finished executions and reads the rest again. On the emulator, the run's
instance id is compared with the running emulator's: after a restart the executions
are gone, and they are reported as lost, without asking for them.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from scaleorfail import runs
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.executions import TERMINAL, executions_since, history_pages
from scaleorfail.harvest import history
from scaleorfail.load.manifest import Manifest, load
from scaleorfail.ratelimit import ApiLimiter

SCHEMA = "scale-or-fail/harvest"
VERSION = 2  # 2: the timing profile; Lambda.Unknown / Runtime.ExitError qualified by their cause
LAMBDA_METRICS = (
    ("Invocations", "Sum"),
    ("Errors", "Sum"),
    ("Throttles", "Sum"),
    ("ConcurrentExecutions", "Maximum"),
    ("Duration", "p50"),
    ("Duration", "p95"),
    ("Duration", "Average"),
)
# The SageMaker endpoint variant (latencies in microseconds); throttled requests count as 4XX.
ENDPOINT_METRICS = (
    ("Invocations", "Sum"),
    ("Invocation4XXErrors", "Sum"),
    ("Invocation5XXErrors", "Sum"),
    ("ModelLatency", "p95"),
    ("ModelLatency", "Average"),
    ("ModelSetupTime", "SampleCount"),
)
STATES_METRICS = (
    "ExecutionsStarted",
    "ExecutionsSucceeded",
    "ExecutionsFailed",
    "ExecutionsTimedOut",
    "ExecutionsAborted",
)
HISTORY_THREADS = 8
# A StartExecution that failed this way may still have started the execution: harvest looks for it.
AMBIGUOUS_START_ERRORS = (
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ResponseStreamingError",
    "ProtocolError",
    "IncompleteReadError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
)
REASON_NOT_FOUND = "not found in the target (emulator restarted, or history expired after 90 days)"
MISSING_DETAIL_LIMIT = 50  # DescribeExecution calls to ask why executions are missing
RECORD_KEYS = {"run_id": str, "executions": list, "reconciliation": dict, "api_calls": dict, "target": str}
RECONCILIATION_KEYS = {"harvested_by_status": dict, "missing": list, "balanced": bool}


# CloudWatch publishes AWS/Lambda and AWS/States data in 1-minute periods, typically a minute or
# two after the minute ends: read sooner, a run's last minute is incomplete.
METRICS_SETTLE_S = 180.0


@dataclass
class Options:
    wait_s: float = 900.0
    refresh: bool = False
    quiet: bool = False
    wait_metrics: bool = False  # on AWS, wait (with progress) until the run's metrics have settled


def metrics_settled_at(target: str, stop: datetime) -> datetime | None:
    """When a run's CloudWatch metrics (query window ending at `stop`) are complete; None: at once (the
    emulator writes them as the work happens and every read sees all of it)."""
    return None if target == "local" else stop + timedelta(seconds=METRICS_SETTLE_S)


def harvest_path(run_dir: Path) -> Path:
    return run_dir / "harvest.json"


def read_any(run_dir: Path) -> dict[str, Any] | None:
    """The stored harvest record of a run, final or partial (None when absent, damaged or of another schema)."""
    path = harvest_path(run_dir)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("version") != VERSION:
        return None  # an older schema, or not ours: re-harvest
    if any(not isinstance(data.get(key), kind) for key, kind in RECORD_KEYS.items()):
        return None  # damaged (odd fields): re-harvest
    if not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in data["executions"]):
        return None
    recon = data["reconciliation"]
    if any(not isinstance(recon.get(key), kind) for key, kind in RECONCILIATION_KEYS.items()):
        return None
    return dict(data)


def read_cached(run_dir: Path) -> dict[str, Any] | None:
    """The cached harvest record of a run, only if it is final (nothing of the run was still going)."""
    data = read_any(run_dir)
    if data is None or not data.get("final", True):  # records older than the flag were written final
        return None
    return data


def harvest(run_dir: Path, options: Options) -> dict[str, Any]:
    """The harvest record of a run, from the cache unless refresh or the cache is stale or partial."""
    if not options.refresh:
        cached = read_cached(run_dir)
        if cached is not None:
            return cached
    manifest = load(run_dir)
    previous = None if options.refresh else read_any(run_dir)
    collector = Collector(manifest, options, previous)
    record = collector.collect()
    path = harvest_path(run_dir)
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(json.dumps(record, separators=(",", ":")) + "\n")
        temporary.replace(path)
    except OSError as error:
        raise UserError(
            f"cannot write {path}: {error.strerror or error}", "make the run's folder writable (or copy the run)"
        ) from None
    return record


class Collector:
    def __init__(self, manifest: Manifest, options: Options, previous: dict[str, Any] | None = None) -> None:
        self.manifest = manifest
        self.options = options
        self.previous = previous
        self.target = self._target()
        self.limiter = ApiLimiter.for_target(self.target.name, self.target.region)
        self.sfn = self.target.client("stepfunctions", max_attempts=8)
        self.state_machine_arn = str(
            manifest.parameters.get("state_machine_arn") or manifest.stack_outputs["state_machine_arn"]
        )

    def _target(self) -> targets.Target:
        manifest = self.manifest
        if manifest.target == "local":
            current = targets.local_target(manifest.region)
            return current
        return targets.aws_target(manifest.region)

    def say(self, text: str) -> None:
        if not self.options.quiet:
            print(text, file=sys.stderr, flush=True)

    def call(self, api: str, function: Any, **kwargs: Any) -> Any:
        return self.limiter.call(api, function, **kwargs)

    # -- steps -----------------------------------------------------------------------

    def restarted(self) -> str | None:
        """Local target: why the run's executions are gone (the emulator restarted since the run), else None."""
        was, now = self.manifest.emulator_instance, self.target.instance
        if self.manifest.target != "local" or not was or not now or was == now:
            return None
        return (
            f"lost: the emulator was restarted after this run (instance {was} -> {now}) and keeps executions "
            "in memory only"
        )

    def reusable(self) -> dict[str, dict[str, Any]]:
        """Finished executions of an earlier partial harvest of this run: kept, not read again."""
        if not self.previous or self.previous.get("run_id") != self.manifest.run_id:
            return {}
        return {
            e["name"]: e
            for e in self.previous["executions"]
            if e.get("status") in TERMINAL and e.get("items") is not None and "events" in e
        }

    def collect(self) -> dict[str, Any]:
        began = time.monotonic()
        manifest = self.manifest
        wanted = {e.name: e for e in manifest.executions}
        kept = self.reusable()
        lost = self.restarted()
        if lost is None:
            found_unconfirmed, absent_unconfirmed = self.resolve_unconfirmed()
            found_failed = self.resolve_failed_starts()
        else:
            found_unconfirmed, absent_unconfirmed, found_failed = {}, [u.name for u in manifest.unconfirmed], {}
        names = set(wanted) | set(found_unconfirmed) | set(found_failed)
        batches = {**found_failed, **found_unconfirmed, **{n: e.batch_size for n, e in wanted.items()}}
        try:
            statuses = {} if lost is not None else self.wait_for(names - set(kept))
        except ClientError as error:
            if error.response["Error"]["Code"] != "StateMachineDoesNotExist":
                raise
            raise UserError(
                f"run {manifest.run_id}: its state machine no longer exists on the {manifest.target} target "
                f"({self.state_machine_arn}), and its executions went with it",
                "harvest runs before `sof destroy`; re-run the load after `sof deploy`",
            ) from None
        histories = self.histories(statuses)
        executions = [kept[name] for name in names & set(kept)]
        for name in statuses:
            timeline, pages = histories.get(name, (None, 0))
            executions.append(execution_record(name, statuses[name], timeline, pages, batches[name]))
        executions.sort(key=lambda e: (e["start_ms"], e["name"]))
        absent = sorted(names - set(statuses) - set(kept))
        missing = [{"name": name, "reason": lost or reason} for name, reason in self.why_missing(absent, lost).items()]
        by_status = Counter(e["status"] for e in executions)
        reconciliation = {
            "manifest_started": len(wanted),
            "unconfirmed_found": sorted(found_unconfirmed),
            "unconfirmed_absent": sorted(absent_unconfirmed),
            "failed_starts_found": sorted(found_failed),
            "harvested_by_status": dict(sorted(by_status.items())),
            "missing": missing,
            "failed_starts": len(manifest.failed_starts),
            "balanced": len(wanted) + len(found_unconfirmed) + len(found_failed)
            == sum(by_status.values()) + len(missing),
        }
        pending = []
        if manifest.status == "running":
            pending.append("the load run is still going (its manifest says running)")
        if by_status.get("RUNNING"):
            pending.append(f"{by_status['RUNNING']} execution(s) still RUNNING")
        if missing and manifest.target != "local":
            pending.append(f"{len(missing)} execution(s) not listed yet (ListExecutions is eventually consistent)")
        window = run_window(executions, manifest)
        functions = self.functions()
        embed = self.embed_backend()
        if not pending and self.options.wait_metrics:
            self.wait_for_metrics(window)
        metrics = self.metrics(window, functions, embed)
        if metrics.get("provisional"):
            pending.append(
                f"CloudWatch metrics provisional until {metrics['settled_at']} (1-minute data arrives with a delay; "
                "harvest again then, or use --wait-metrics)"
            )
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "run_id": manifest.run_id,
            "label": manifest.label,
            "target": manifest.target,
            "profile": manifest.profile,
            "parameters": manifest.parameters,
            "stack_default_max_concurrency": manifest.stack_outputs.get("default_max_concurrency"),
            # the service timing the run saw (recorded at its start; older manifests: the emulator's now)
            "timing": manifest.parameters.get("timing") or targets.timing(self.target),
            "region": self.target.region,
            "manifest_status": manifest.status,
            "manifest_failure": manifest.failure,
            "emulator_instance": self.target.instance if manifest.target == "local" else None,
            "final": not pending,
            "pending": pending,
            "reused_executions": len(names & set(kept)),
            "failed_starts": [vars(f) for f in manifest.failed_starts],
            "harvested_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "window": {"start": window[0].isoformat(), "stop": window[1].isoformat()},
            "functions": functions,
            "embed": embed,
            "executions": executions,
            "reconciliation": reconciliation,
            "metrics": metrics,
            "api_calls": dict(sorted(self.limiter.calls.items())),
            "api_wait_s": round(self.limiter.waited_s, 3),
            "harvest_seconds": round(time.monotonic() - began, 3),
        }

    def resolve_unconfirmed(self) -> tuple[dict[str, int], list[str]]:
        """Starts the harness could not confirm: do they exist? (by their deterministic ARN)."""
        found: dict[str, int] = {}
        absent: list[str] = []
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:")
        for start in self.manifest.unconfirmed:
            try:
                self.call("DescribeExecution", self.sfn.describe_execution, executionArn=f"{prefix}:{start.name}")
                found[start.name] = start.batch_size
            except ClientError as error:
                if error.response["Error"]["Code"] not in (
                    "ExecutionDoesNotExist",
                    "ResourceNotFound",
                    "StateMachineDoesNotExist",
                ):
                    raise
                absent.append(start.name)
        return found, absent

    def resolve_failed_starts(self) -> dict[str, int]:
        """Failed starts whose error leaves open whether the execution started (a read timeout ...): did it?"""
        found: dict[str, int] = {}
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:")
        names = {e.name for e in self.manifest.executions}
        for start in self.manifest.failed_starts:
            if start.error not in AMBIGUOUS_START_ERRORS or start.name in names or start.name in found:
                continue
            try:
                self.call("DescribeExecution", self.sfn.describe_execution, executionArn=f"{prefix}:{start.name}")
                found[start.name] = start.batch_size
            except ClientError as error:
                if error.response["Error"]["Code"] not in (
                    "ExecutionDoesNotExist",
                    "ResourceNotFound",
                    "StateMachineDoesNotExist",
                ):
                    raise
        return found

    def why_missing(self, names: list[str], lost: str | None) -> dict[str, str]:
        """The reason each missing execution is gone: the emulator's own word (evicted ...) where it has one."""
        reasons = dict.fromkeys(names, REASON_NOT_FOUND)
        if lost is not None or self.manifest.target != "local":
            return reasons
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:")
        for name in names[:MISSING_DETAIL_LIMIT]:
            try:
                self.call("DescribeExecution", self.sfn.describe_execution, executionArn=f"{prefix}:{name}")
            except ClientError as error:
                message = str(error.response["Error"].get("Message", ""))
                if "evicted" in message and " (" in message:
                    reasons[name] = message.split(" (", 1)[1].removesuffix(")")
        return reasons

    def list_status(self, status: str, names: set[str], since: datetime) -> dict[str, dict[str, Any]]:
        """Executions of the run with this status (newest first, stopping at the run start)."""
        found: dict[str, dict[str, Any]] = {}
        call = functools.partial(self.call, "ListExecutions", self.sfn.list_executions)
        for item in executions_since(call, self.state_machine_arn, status, since):
            if item["name"] in names:
                found[item["name"]] = {
                    "status": status,
                    "arn": item["executionArn"],
                    "start": item["startDate"],
                    "stop": item["stopDate"],
                }
                if len(found) == len(names):
                    break
        return found

    def wait_for(self, names: set[str]) -> dict[str, dict[str, Any]]:
        """Statuses of the run's executions, once none is RUNNING (or the wait is over)."""
        since = datetime.fromisoformat(self.manifest.started_at) - timedelta(minutes=5)
        deadline = time.monotonic() + self.options.wait_s
        delay = 1.0
        while True:
            running = self.list_status("RUNNING", names, since) if names else {}
            if not running or time.monotonic() >= deadline:
                break
            self.say(f"{self.manifest.run_id}: waiting for {len(running)} of {len(names)} executions to finish ...")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 10.0)
        statuses = dict(running)
        for status in TERMINAL:
            remaining = names - set(statuses)
            if not remaining:
                break
            statuses.update(self.list_status(status, remaining, since))
        return statuses

    def read_history(self, arn: str) -> tuple[list[dict[str, Any]], int]:
        return history_pages(functools.partial(self.call, "GetExecutionHistory", self.sfn.get_execution_history), arn)

    def histories(self, statuses: dict[str, dict[str, Any]]) -> dict[str, tuple[history.Timeline, int]]:
        def one(name: str) -> tuple[str, tuple[history.Timeline, int]]:
            events, pages = self.read_history(statuses[name]["arn"])
            return name, (history.parse(events), pages)

        done: dict[str, tuple[history.Timeline, int]] = {}
        total = len(statuses)
        with ThreadPoolExecutor(max_workers=HISTORY_THREADS) as pool:
            for index, (name, result) in enumerate(pool.map(one, sorted(statuses)), 1):
                done[name] = result
                if total >= 50 and index % 250 == 0:
                    self.say(f"{self.manifest.run_id}: {index}/{total} histories read")
        return done

    def functions(self) -> dict[str, Any]:
        lam = self.target.client("lambda")
        out = {}
        for step, name in sorted(self.manifest.stack_outputs.get("function_names", {}).items()):
            try:
                config = self.call("GetFunctionConfiguration", lam.get_function_configuration, FunctionName=name)
                out[step] = {"name": name, "memory_mb": config["MemorySize"], "timeout_s": config["Timeout"]}
            except ClientError:
                out[step] = {"name": name, "memory_mb": None, "timeout_s": None}
        return out

    def embed_backend(self) -> dict[str, Any]:
        """Where Embed ran; for the SageMaker endpoint, its serverless configuration (DescribeEndpoint[Config])."""
        outputs = self.manifest.stack_outputs
        name = outputs.get("embed_endpoint_name")
        if not name:
            return {"backend": "lambda"}
        found: dict[str, Any] = {"backend": "sagemaker", "endpoint": name, "max_concurrency": None, "memory_mb": None}
        sagemaker = self.target.client("sagemaker")
        try:
            endpoint = self.call("DescribeEndpoint", sagemaker.describe_endpoint, EndpointName=name)
            config_name = endpoint["EndpointConfigName"]
            config = self.call(
                "DescribeEndpointConfig", sagemaker.describe_endpoint_config, EndpointConfigName=config_name
            )
            variant = config["ProductionVariants"][0]
            serverless = variant.get("ServerlessConfig") or {}
            found.update(
                config=config_name,
                variant=variant.get("VariantName", "AllTraffic"),
                max_concurrency=serverless.get("MaxConcurrency"),
                memory_mb=serverless.get("MemorySizeInMB"),
            )
        except (ClientError, KeyError, IndexError):
            found["max_concurrency"] = outputs.get("embed_endpoint_max_concurrency")
        return found

    def metrics(
        self, window: tuple[datetime, datetime], functions: dict[str, Any], embed: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        # One period covering the whole-minute run window: every statistic (p95 included) is run-level.
        start = window[0].replace(second=0, microsecond=0)
        period = 60 * (int((window[1] - start).total_seconds()) // 60 + 1)
        stop = start + timedelta(seconds=period)
        queries: list[dict[str, Any]] = []
        index: dict[str, tuple[str, str, str]] = {}

        def add(namespace: str, metric: str, stat: str, dims: dict[str, str], scope: str) -> None:
            key = f"q{len(queries)}"
            index[key] = (scope, metric, stat)
            queries.append(
                {
                    "Id": key,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                        },
                        "Period": period,
                        "Stat": stat,
                    },
                }
            )

        for step, info in functions.items():
            for metric, stat in LAMBDA_METRICS:
                add("AWS/Lambda", metric, stat, {"FunctionName": info["name"]}, step)
        for metric, stat in (("Throttles", "Sum"), ("ConcurrentExecutions", "Maximum")):
            add("AWS/Lambda", metric, stat, {}, "account")
        for metric in STATES_METRICS:
            add("AWS/States", metric, "Sum", {"StateMachineArn": self.state_machine_arn}, "states")
        if embed and embed.get("backend") == "sagemaker":
            dims = {"EndpointName": str(embed["endpoint"]), "VariantName": str(embed.get("variant") or "AllTraffic")}
            for metric, stat in ENDPOINT_METRICS:
                add("AWS/SageMaker", metric, stat, dims, "endpoint")
        cloudwatch = self.target.client("cloudwatch")
        results: dict[str, Any] = {}
        for offset in range(0, len(queries), 500):
            token = None
            while True:
                kwargs: dict[str, Any] = {
                    "MetricDataQueries": queries[offset : offset + 500],
                    "StartTime": start,
                    "EndTime": stop,
                    "ScanBy": "TimestampAscending",
                }
                if token:
                    kwargs["NextToken"] = token
                response = self.call("GetMetricData", cloudwatch.get_metric_data, **kwargs)
                for item in response["MetricDataResults"]:
                    scope, metric, stat = index[item["Id"]]
                    values = [float(v) for v in item.get("Values", [])]
                    results.setdefault(scope, {})[f"{metric}_{stat}"] = values[0] if values else None
                token = response.get("NextToken")
                if not token:
                    break
        settled = metrics_settled_at(self.manifest.target, stop)
        provisional = settled is not None and datetime.now(UTC) < settled
        return {
            "period_s": period,
            "start": start.isoformat(),
            "stop": stop.isoformat(),
            "provisional": provisional,
            "settled_at": settled.isoformat(timespec="seconds") if settled else None,
            **results,
        }

    def wait_for_metrics(self, window: tuple[datetime, datetime]) -> None:
        """Sleep until the run's metrics have settled, saying so every 15 s."""
        start = window[0].replace(second=0, microsecond=0)
        stop = start + timedelta(seconds=60 * (int((window[1] - start).total_seconds()) // 60 + 1))
        settled = metrics_settled_at(self.manifest.target, stop)
        while settled is not None and (left := (settled - datetime.now(UTC)).total_seconds()) > 0:
            self.say(f"{self.manifest.run_id}: waiting {left:.0f} s more for CloudWatch to publish the run's metrics")
            time.sleep(min(15.0, left))


def run_window(executions: list[dict[str, Any]], manifest: Manifest) -> tuple[datetime, datetime]:
    starts = [e["start_ms"] for e in executions]
    stops = [e["stop_ms"] for e in executions if e["stop_ms"] is not None]
    if not starts:
        moment = datetime.fromisoformat(manifest.started_at)
        return moment, datetime.fromisoformat(manifest.stopped_at) if manifest.stopped_at else moment
    first = datetime.fromtimestamp(min(starts) / 1000.0, UTC)
    last = datetime.fromtimestamp(max(stops or starts) / 1000.0, UTC)
    return first, last


def _offset(value: float | None, origin: float) -> float | None:
    return None if value is None else round(value - origin, 1)


def execution_record(
    name: str, status: dict[str, Any], timeline: history.Timeline | None, pages: int, batch_size: int
) -> dict[str, Any]:
    start_ms = status["start"].timestamp() * 1000.0
    stop_ms = status["stop"].timestamp() * 1000.0 if status.get("stop") else None
    record: dict[str, Any] = {
        "name": name,
        "arn": status["arn"],
        "status": status["status"],
        "start_ms": round(start_ms, 1),
        "stop_ms": round(stop_ms, 1) if stop_ms is not None else None,
        "batch_size": batch_size,
        "history_pages": pages,
        "items": [],
    }
    if timeline is None:
        return record
    origin = timeline.start
    record.update(
        {
            "start_ms": round(origin, 1),
            "stop_ms": round(timeline.stop, 1) if timeline.stop is not None else record["stop_ms"],
            "error": timeline.error,
            "cause": (timeline.cause or "")[:2000] or None,
            "events": timeline.events,
            "state_transitions": timeline.state_transitions,
            "map_started": _offset(timeline.map_started, origin),
            "map_length": timeline.map_length,
            "states": [
                {"step": v.step, "in": _offset(v.entered, origin), "out": _offset(v.exited, origin)}
                for v in timeline.top
            ],
        }
    )
    record["items"] = [
        {
            "i": item.index,
            "start": _offset(item.started, origin),
            "end": _offset(item.ended, origin),
            "status": item.status,
            "steps": [
                {
                    "step": visit.step,
                    "in": _offset(visit.entered, origin),
                    "out": _offset(visit.exited, origin),
                    "attempts": [
                        [
                            _offset(a.scheduled, origin),
                            _offset(a.started, origin),
                            _offset(a.ended, origin),
                            a.error,
                        ]
                        for a in visit.attempts
                    ],
                }
                for visit in item.visits
            ],
        }
        for item in timeline.items
    ]
    return record


def run_dirs(selectors: list[str], runs_root: Path) -> list[Path]:
    """Run directories from ids, paths or labels (every run when none): kept here for its callers."""
    return runs.select(selectors, runs_root)
