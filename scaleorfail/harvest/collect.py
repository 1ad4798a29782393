"""`sof harvest`: everything a run left behind, read in bulk and frozen into its record.

For one run manifest: resolve unconfirmed starts, wait (bounded) until the run's
executions finish, read their statuses in bulk (ListExecutions pages by status), their
histories (paginated, 1,000 events per page, in parallel), the Lambda configuration and
account settings, the run window's CloudWatch metrics (one GetMetricData call per 500
queries) and the run's log evidence (scoped by request id and execution ARN: see
harvest/logs.py). Every API call goes through a token bucket at the published Step
Functions quotas on AWS and is counted. The result is `runs/<run_id>/harvest.json`, the
typed record of scaleorfail.record (schema scale-or-fail/harvest v3): compare, report,
rca and portfolio read nothing else, so what they cite is this run's, whatever ran since.

CloudWatch numbers are per function and per state machine, by the minute: the listing of
the run's executions also names the other executions of the state machine that ran in the
same minutes (``Metrics.shared_with``), so that a report can prefer what the histories say.

Only what is over is final: a record is ``final`` when the run's harness has ended and
none of its executions is still RUNNING (``pending`` says what is not over). A partial
record is written too, but never served as a cached answer: the next harvest keeps its
finished executions and reads the rest again. On the emulator, the run's instance id is
compared with the running emulator's: after a restart the executions are gone, and they
are reported as lost, without asking for them.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scaleorfail import history, runs
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.harvest import convert, logs, maprun, metrics, store
from scaleorfail.harvest.store import harvest_path, read_any, read_cached
from scaleorfail.ratelimit import ApiLimiter
from scaleorfail.record import model, queries
from scaleorfail.record.manifest import Manifest, load
from scaleorfail.record.model import SCHEMA, VERSION
from scaleorfail.stepfunctions import TERMINAL, executions_since, history_pages
from scaleorfail.terminal import hint

__all__ = ["SCHEMA", "VERSION", "Options", "harvest", "harvest_path", "read_any", "read_cached", "run_dirs"]

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
LISTED_BEFORE_RUN = timedelta(minutes=5)  # executions are listed from this long before the run's start
SHARED_NAMES = 50  # other executions named in Metrics.shared_with (all are counted)
# CloudWatch publishes AWS/Lambda and AWS/States data in 1-minute periods, typically a minute or
# two after the minute ends: read sooner, a run's last minute is incomplete.
METRICS_SETTLE_S = metrics.SETTLE_S
DURATION_QUERY = "duration-by-step"  # the Logs Insights output the portfolio shows (Activity 5)


@dataclass
class Options:
    wait_s: float = 900.0
    refresh: bool = False
    quiet: bool = False
    wait_metrics: bool = False  # on AWS, wait (with progress) until the run's metrics have settled


def metrics_settled_at(target: str, stop: datetime) -> datetime | None:
    return metrics.settled_at(target, stop, METRICS_SETTLE_S)


def harvest(run_dir: Path, options: Options) -> model.HarvestRecord:
    """The harvest record of a run, from the cache unless refresh or the cache is stale or partial."""
    if not options.refresh:
        cached = read_cached(run_dir)
        if cached is not None:
            return cached
    manifest = load(run_dir)
    previous = None if options.refresh else read_any(run_dir)
    record = Collector(manifest, options, previous).collect()
    store.write(run_dir, record)
    return record


Parsed = tuple[history.Timeline, int, tuple[model.MapRun, ...]]  # a history, its pages, its Map Runs


@dataclass(frozen=True)
class _Listed:
    status: str
    arn: str
    start: datetime
    stop: datetime | None


class Collector:
    def __init__(self, manifest: Manifest, options: Options, previous: model.HarvestRecord | None = None) -> None:
        self.manifest = manifest
        self.options = options
        self.previous = previous
        self.target = self._target()
        self.limiter = ApiLimiter.for_target(self.target.name, self.target.region)
        self.sfn = self.target.client("stepfunctions", max_attempts=8)
        self.state_machine_arn = str(
            manifest.parameters.get("state_machine_arn") or manifest.stack_outputs["state_machine_arn"]
        )
        self.others: dict[str, _Listed] = {}  # other executions of the state machine seen while listing
        groups = manifest.stack_outputs.get("log_group_names") or {}
        self.follower = maprun.Follower(self.call, self.sfn, self.target.client("logs"), groups.get("state_machine"))
        self.since = datetime.fromisoformat(manifest.started_at) - LISTED_BEFORE_RUN

    def _target(self) -> targets.Target:
        if self.manifest.target == "local":
            return targets.local_target(self.manifest.region)
        return targets.aws_target(self.manifest.region)

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

    def reusable(self) -> dict[str, model.Execution]:
        """Finished executions of an earlier partial harvest of this run: kept, not read again."""
        if not self.previous or self.previous.run_id != self.manifest.run_id:
            return {}
        return {e.name: e for e in self.previous.executions if e.status in TERMINAL and e.history_read}

    def collect(self) -> model.HarvestRecord:
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
                f"harvest runs before {hint('sof destroy')}; re-run the load after {hint('sof deploy --target local')}",
            ) from None
        timelines = self.histories(statuses)
        executions = [kept[name] for name in names & set(kept)]
        for name in statuses:
            timeline, pages, map_runs = timelines.get(name, (None, 0, ()))
            executions.append(convert.execution(name, statuses[name], timeline, pages, batches[name], map_runs))
        executions.sort(key=lambda e: (e.start_ms, e.name))
        absent = sorted(names - set(statuses) - set(kept))
        missing = tuple(model.Missing(name, lost or reason) for name, reason in self.why_missing(absent, lost).items())
        by_status = Counter(e.status for e in executions)
        reconciliation = model.Reconciliation(
            manifest_started=len(wanted),
            harvested_by_status=dict(sorted(by_status.items())),
            missing=missing,
            failed_starts=len(manifest.failed_starts),
            balanced=len(wanted) + len(found_unconfirmed) + len(found_failed) == sum(by_status.values()) + len(missing),
            unconfirmed_found=tuple(sorted(found_unconfirmed)),
            unconfirmed_absent=tuple(sorted(absent_unconfirmed)),
            failed_starts_found=tuple(sorted(found_failed)),
            throttled_starts=sum(1 for f in manifest.failed_starts if f.throttled),
        )
        pending = []
        if manifest.status == "running":
            pending.append("the load run is still going (its manifest says running)")
        if by_status.get("RUNNING"):
            pending.append(f"{by_status['RUNNING']} execution(s) still RUNNING")
        if missing and manifest.target != "local":
            pending.append(f"{len(missing)} execution(s) not listed yet (ListExecutions is eventually consistent)")
        window = run_window(executions, manifest)
        frozen = tuple(executions)
        if lost is not None and self.previous is not None:  # the target's evidence went with the emulator
            functions, embed = self.previous.functions, self.previous.embed
            measured, account, evidence = self.previous.metrics, self.previous.account, self.previous.logs
        else:
            functions, embed = self.functions(), self.embed_backend()
            if not pending and self.options.wait_metrics:
                self.wait_for_metrics(window)
            measured = self.shared(self.metrics(window, functions, embed), names)
            account = self.account_settings()
            evidence = self.log_evidence(frozen, window)
        if measured.provisional:
            pending.append(
                f"CloudWatch metrics provisional until {measured.settled_at:%Y-%m-%dT%H:%M:%S%z} (1-minute data "
                "arrives with a delay; harvest again then, or use --wait-metrics)"
            )
        return model.HarvestRecord(
            run_id=manifest.run_id,
            label=manifest.label,
            target=manifest.target,
            profile=manifest.profile,
            parameters=dict(manifest.parameters),
            stack_default_max_concurrency=_int(manifest.stack_outputs.get("default_max_concurrency")),
            # the service timing the run saw (recorded at its start; older manifests: the emulator's now)
            timing=dict(manifest.parameters.get("timing") or targets.timing(self.target)),
            region=self.target.region,
            manifest_status=manifest.status,
            manifest_failure=manifest.failure,
            start_pace=manifest.start_pace(),
            emulator_instance=self.target.instance if manifest.target == "local" else None,
            final=not pending,
            pending=tuple(pending),
            reused_executions=len(names & set(kept)),
            failed_starts=tuple(manifest.failed_starts),
            harvested_at=datetime.now(UTC).replace(microsecond=0),
            window=model.Window(*window),
            functions=functions,
            embed=embed,
            executions=frozen,
            reconciliation=reconciliation,
            metrics=measured,
            account=account,
            logs=evidence,
            api_calls=dict(sorted(self.limiter.calls.items())),
            api_wait_s=round(self.limiter.waited_s, 3),
            harvest_seconds=round(time.monotonic() - began, 3),
            emulator_cpu=self.emulator_cpu(manifest, window),
        )

    def emulator_cpu(self, manifest: Manifest, window: tuple[datetime, datetime]) -> dict[str, Any]:
        """The emulator's own CPU over the run (record/cpu.py's verdict), when the emulator that ran it still runs."""
        if manifest.target != "local" or not manifest.emulator_instance:
            return {}
        if self.target.instance != manifest.emulator_instance:
            return {}  # restarted since: its samples are not the run's
        return targets.emulator_cpu(self.target, window[0].timestamp(), window[1].timestamp()) or {}

    def resolve_unconfirmed(self) -> tuple[dict[str, int], list[str]]:
        """Starts the harness could not confirm: do they exist? (by their deterministic ARN)."""
        found: dict[str, int] = {}
        absent: list[str] = []
        for start in self.manifest.unconfirmed:
            if self.exists(start.name):
                found[start.name] = start.batch_size
            else:
                absent.append(start.name)
        return found, absent

    def resolve_failed_starts(self) -> dict[str, int]:
        """Failed starts whose error leaves open whether the execution started (a read timeout ...): did it?"""
        found: dict[str, int] = {}
        names = {e.name for e in self.manifest.executions}
        for start in self.manifest.failed_starts:
            if start.error not in AMBIGUOUS_START_ERRORS or start.name in names or start.name in found:
                continue
            if self.exists(start.name):
                found[start.name] = start.batch_size
        return found

    def exists(self, name: str) -> bool:
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:")
        try:
            self.call("DescribeExecution", self.sfn.describe_execution, executionArn=f"{prefix}:{name}")
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] not in (
                "ExecutionDoesNotExist",
                "ResourceNotFound",
                "StateMachineDoesNotExist",
            ):
                raise
            return False

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

    def list_status(self, status: str, names: set[str]) -> dict[str, dict[str, Any]]:
        """Executions of the run with this status (newest first, down to a little before the run's start).

        The other executions of the state machine met on the way are remembered (self.others):
        CloudWatch counts them too, in the minutes they share with the run.
        """
        found: dict[str, dict[str, Any]] = {}
        call = functools.partial(self.call, "ListExecutions", self.sfn.list_executions)
        for item in executions_since(call, self.state_machine_arn, status, self.since):
            name = item["name"]
            if name in names:
                found[name] = {
                    "status": status,
                    "arn": item["executionArn"],
                    "start": item["startDate"],
                    "stop": item["stopDate"],
                }
            elif not name.startswith(f"{self.manifest.run_id}-"):
                self.others[name] = _Listed(status, item["executionArn"], item["startDate"], item["stopDate"])
        return found

    def wait_for(self, names: set[str]) -> dict[str, dict[str, Any]]:
        """Statuses of the run's executions, once none is RUNNING (or the wait is over)."""
        deadline = time.monotonic() + self.options.wait_s
        delay = 1.0
        while True:
            running = self.list_status("RUNNING", names)
            if not running or time.monotonic() >= deadline:
                break
            self.say(f"{self.manifest.run_id}: waiting for {len(running)} of {len(names)} executions to finish ...")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 10.0)
        statuses = dict(running)
        for status in TERMINAL:
            statuses.update(self.list_status(status, names - set(statuses)))
        return statuses

    def read_history(self, arn: str) -> tuple[list[dict[str, Any]], int]:
        return history_pages(functools.partial(self.call, "GetExecutionHistory", self.sfn.get_execution_history), arn)

    def histories(self, statuses: dict[str, dict[str, Any]]) -> dict[str, Parsed]:
        """Each execution's history parsed; a Distributed Map's Map Runs followed to their children (maprun.py)."""
        follower = self.follower

        def one(name: str) -> tuple[str, Parsed]:
            events, pages = self.read_history(statuses[name]["arn"])
            timeline = history.parse(events)
            if not timeline.map_runs:
                return name, (timeline, pages, ())
            followed = follower.follow(timeline)
            timeline.items = followed.items
            if followed.runs and sum(r.children for r in followed.runs) >= 50:
                read = sum(r.children_read for r in followed.runs)
                self.say(f"{self.manifest.run_id}: {name}: {read} child executions read")
            return name, (timeline, pages + followed.pages, tuple(followed.runs))

        done: dict[str, Parsed] = {}
        total = len(statuses)
        with ThreadPoolExecutor(max_workers=HISTORY_THREADS) as pool:
            for index, (name, result) in enumerate(pool.map(one, sorted(statuses)), 1):
                done[name] = result
                if total >= 50 and index % 250 == 0:
                    self.say(f"{self.manifest.run_id}: {index}/{total} histories read")
        return done

    def functions(self) -> dict[str, model.Function]:
        lam = self.target.client("lambda")
        out = {}
        for step, name in sorted(self.manifest.stack_outputs.get("function_names", {}).items()):
            try:
                config = self.call("GetFunctionConfiguration", lam.get_function_configuration, FunctionName=name)
                out[step] = model.Function(name, int(config["MemorySize"]), int(config["Timeout"]))
            except ClientError:
                out[step] = model.Function(name)
        return out

    def embed_backend(self) -> model.EmbedBackend:
        """Where Embed ran; for the SageMaker endpoint, its serverless configuration (DescribeEndpoint[Config])."""
        outputs = self.manifest.stack_outputs
        name = outputs.get("embed_endpoint_name")
        if not name:
            return model.EmbedBackend()
        sagemaker = self.target.client("sagemaker")
        try:
            endpoint = self.call("DescribeEndpoint", sagemaker.describe_endpoint, EndpointName=name)
            config_name = endpoint["EndpointConfigName"]
            config = self.call(
                "DescribeEndpointConfig", sagemaker.describe_endpoint_config, EndpointConfigName=config_name
            )
            variant = config["ProductionVariants"][0]
            serverless = variant.get("ServerlessConfig") or {}
            return model.EmbedBackend(
                "sagemaker",
                str(name),
                config=config_name,
                variant=variant.get("VariantName", "AllTraffic"),
                max_concurrency=_int(serverless.get("MaxConcurrency")),
                memory_mb=_int(serverless.get("MemorySizeInMB")),
            )
        except (ClientError, KeyError, IndexError):
            return model.EmbedBackend(
                "sagemaker", str(name), max_concurrency=_int(outputs.get("embed_endpoint_max_concurrency"))
            )

    def metrics(
        self, window: tuple[datetime, datetime], functions: dict[str, model.Function], embed: model.EmbedBackend
    ) -> model.Metrics:
        cloudwatch = self.target.client("cloudwatch")
        return metrics.read(
            self.call,
            cloudwatch,
            window,
            functions,
            self.state_machine_arn,
            embed,
            self.manifest.target,
            METRICS_SETTLE_S,
        )

    def shared(self, measured: model.Metrics, names: set[str]) -> model.Metrics:
        """The metrics, with the other executions of the state machine that ran in their minutes."""
        overlapping = sorted(
            (listed.start, name)
            for name, listed in self.others.items()
            if name not in names
            and listed.start < measured.stop
            and (listed.stop is None or listed.stop > measured.start)
        )
        return dataclasses.replace(
            measured,
            shared_with=tuple(name for _, name in overlapping[:SHARED_NAMES]),
            shared_total=len(overlapping),
            listed_since=self.since,
        )

    def account_settings(self) -> model.AccountSettings:
        """The Lambda account concurrency the run met: the harness's reading at its start, else now."""
        at_start = _int(self.manifest.parameters.get("account_concurrency"))
        now: int | None
        unreserved: int | None
        try:
            limits = self.call("GetAccountSettings", self.target.client("lambda", max_attempts=1).get_account_settings)[
                "AccountLimit"
            ]
            now, unreserved = int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"])
        except (ClientError, BotoCoreError, KeyError, ValueError):
            now = unreserved = None
        if at_start is not None:
            return model.AccountSettings(
                at_start, unreserved, "the load harness's GetAccountSettings at the run's start"
            )
        return model.AccountSettings(now, unreserved, "GetAccountSettings at harvest" if now is not None else "unknown")

    def log_evidence(self, executions: tuple[model.Execution, ...], window: tuple[datetime, datetime]) -> model.Logs:
        groups = dict(self.manifest.stack_outputs.get("log_group_names") or {})
        if not groups or not executions:
            return model.Logs(problems=("no log groups in the stack outputs" if not groups else "no executions",))
        client = self.target.client("logs")
        start_ms, stop_ms = (int(moment.timestamp() * 1000) for moment in window)
        stop_ms = max(stop_ms, start_ms)
        found_lambda = logs.lambda_logs(self.call, client, groups, executions, start_ms, stop_ms)
        problems = found_lambda.problems
        rows = found_lambda.rows
        execution_scope: model.LogScope | None = None
        failures: dict[str, int] = {}
        if groups.get("state_machine"):
            try:
                arns = {e.arn for e in executions} | self.follower.child_arns  # a Map Run's children too
                execution_scope, failures = logs.execution_log(
                    self.call, client, groups["state_machine"], arns, start_ms, stop_ms
                )
            except Exception as error:
                problems.append(f"{groups['state_machine']}: {type(error).__name__}: {error}")
        found: list[model.InsightsResult] = []
        lambda_groups = [groups[k] for k in ("preprocess", "embed", "postprocess") if groups.get(k)]
        try:
            query = queries.catalogue()[DURATION_QUERY]
            found.append(
                logs.insights_query(
                    self.call, client, query.key, query.title, query.text, lambda_groups, start_ms, stop_ms
                )
            )
        except Exception as error:
            problems.append(f"Logs Insights {DURATION_QUERY}: {type(error).__name__}: {error}")
        return model.Logs(
            lambda_scope=found_lambda.scope,
            functions=found_lambda.functions,
            rows=tuple(rows[: logs.MAX_ROWS]),
            rows_total=len(rows),
            execution_scope=execution_scope,
            task_failures=failures,
            insights=tuple(found),
            problems=tuple(problems),
            peak_concurrency=found_lambda.peak_concurrency,
        )

    def wait_for_metrics(self, window: tuple[datetime, datetime]) -> None:
        """Sleep until the run's metrics have settled, saying so every 15 s."""
        _, stop, _ = metrics.metric_window(window)
        settled = metrics_settled_at(self.manifest.target, stop)
        while settled is not None and (left := (settled - datetime.now(UTC)).total_seconds()) > 0:
            self.say(f"{self.manifest.run_id}: waiting {left:.0f} s more for CloudWatch to publish the run's metrics")
            time.sleep(min(15.0, left))


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def run_window(executions: list[model.Execution], manifest: Manifest) -> tuple[datetime, datetime]:
    starts = [e.start_ms for e in executions]
    stops = [e.stop_ms for e in executions if e.stop_ms is not None]
    if not starts:
        moment = datetime.fromisoformat(manifest.started_at)
        return moment, datetime.fromisoformat(manifest.stopped_at) if manifest.stopped_at else moment
    first = datetime.fromtimestamp(min(starts) / 1000.0, UTC)
    last = datetime.fromtimestamp(max(stops or starts) / 1000.0, UTC)
    return first, last


def run_dirs(selectors: list[str], runs_root: Path) -> list[Path]:
    """Run directories from ids, paths or labels (every run when none): kept here for its callers."""
    return runs.select(selectors, runs_root)
