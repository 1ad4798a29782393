"""Locust glue: options, the starter user, the profile shape, the run recorder.

Roles:
- the **coordinator** (a local runner, or the master of a distributed run) validates the
  options, owns the run (run id, manifest, journal, Locust CSV/HTML in runs/<run_id>/),
  and drives the profile shape; the run id travels to workers with Locust's own options;
- each **load process** (the local runner, or every worker) runs one ``PipelineLoad``
  user that starts its share of the executions - start k belongs to process k mod W, at
  the profile's moment t_k - plus one completion poller; it reports starts, failed
  starts and completions to the coordinator with Locust messages.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import signal
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from botocore.exceptions import BotoCoreError, ClientError
from locust import LoadTestShape, User, events, task
from locust import runners as locust_runners
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter

from scaleorfail import consolelink, paths, terminal
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.load import history_limit, options, progress, summary
from scaleorfail.load.batches import (
    MAX_INPUT_BYTES,
    TicketPool,
    batch_key,
    distributed_input,
    execution_input,
    jsonl,
    map_bucket,
)
from scaleorfail.load.profiles import my_starts
from scaleorfail.load.starter import error_code, start_execution
from scaleorfail.load.tracker import CompletionTracker
from scaleorfail.load.watch import TargetWatch
from scaleorfail.pipeline import map_slots
from scaleorfail.ratelimit import ApiLimiter
from scaleorfail.record.manifest import (
    Finished,
    Journal,
    Manifest,
    Recorder,
    Started,
    Starting,
    claim_run_dir,
    now_iso,
    storage_message,
)
from scaleorfail.record.model import FailedStart

log = logging.getLogger("scale-or-fail")
# Locust's routine lines (start, spawning, shutting down) and its console tables are wider than a terminal
# and say what the progress lines say: they are kept out of the console (its HTML and CSV files keep the
# tables; --loglevel DEBUG brings the routine lines back), and the run ends with a summary that fits.
ROUTINE_LOGGERS = ("locust.main", "locust.runners")
STATS_LOGGER = "locust.stats_logger"


class _Routine(logging.Filter):
    """Drops Locust's INFO lines (a filter: Locust's logging setup resets its child loggers' levels, not filters)."""

    shown = False  # --loglevel DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        return self.shown or record.levelno >= logging.WARNING


ROUTINE = _Routine()
for _name in ROUTINE_LOGGERS:  # at import, so that "Starting Locust" is dropped too
    logging.getLogger(_name).addFilter(ROUTINE)
REQUEST_TYPE = "SFN"
START_MARGIN_S = 0.5  # workers start their schedules this long after the plan is sent
SEND_INTERVAL_S = 0.5
MANIFEST_INTERVAL_S = 2.0
WATCH_INTERVAL_S = 1.0  # the coordinator probes the emulator this often
COORDINATOR_SILENCE_S = 10.0  # a worker that hears nothing from its coordinator this long stops
# Locust calls a worker missing after 3 missed 1-s heartbeats. Beside an emulator and its Lambda environments on
# the same few CPUs a live worker's loop can stall that long (seen at load 9 on 2 CPUs: both workers "lost" before
# their first start); a worker that is really gone (its process dead) is still noticed, after this many seconds.
WORKER_LIVENESS_HEARTBEATS = 10
locust_runners.HEARTBEAT_LIVENESS = WORKER_LIVENESS_HEARTBEATS  # read by MasterRunner at each heartbeat
EXIT_TARGET_LOST = 3
EXIT_STORAGE = 4  # the run directory cannot be written (a full disk): the run stopped

# Per-process state (a Locust process loads the locustfile once).
coordinator: dict[str, Any] = {}
loader: dict[str, Any] = {}


def fail(error: UserError) -> None:
    print(terminal.fill(error.render()), file=sys.stderr, flush=True)
    sys.exit(2)


@events.init_command_line_parser.add_listener
def _register(parser: Any, **_: Any) -> None:
    options.register(parser)
    parser.set_defaults(exit_code_on_error=0)  # failed executions are evidence, not a harness failure


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    _quiet_locust(environment)
    if isinstance(runner, WorkerRunner):
        runner.register_message("sof_plan", _on_plan)
        return
    try:
        headless_only(environment.parsed_options)
        settings = options.validate(environment.parsed_options)
        target = targets.resolve(settings.target, settings.region)
        outputs = targets.load_outputs(settings.target, target)
        pool = TicketPool(settings.tickets)
        map_mode = str(outputs.get("map_mode") or "inline")
        _check_input(settings, pool, outputs, map_mode)
        limit = targets.account_concurrency(target)
        arn = settings.state_machine_arn or outputs["state_machine_arn"]
        warnings = _start_warnings(target, arn, settings, outputs, limit, map_mode)
        replaced = settings.overwrite and (settings.run_dir / settings.run_id / "manifest.json").exists()
        run_dir = claim_run_dir(settings.run_dir / settings.run_id, settings.overwrite)
    except UserError as error:
        fail(error)
        return
    _announce(warnings)
    # SIGTERM ends the run like Ctrl+C (Locust installs its own handler only after a shape run is over), and so
    # does SIGINT however the run was started: a background job of a script (`locust ... &`, no job control)
    # inherits SIGINT ignored, Python then keeps it ignored, and neither `kill -INT` nor a test could stop the run
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.default_int_handler)
    environment.parsed_options.run_id = settings.run_id  # sent to workers with the spawn message
    environment.parsed_options.sof_profile = settings.profile.name
    if not settings.profile.single:  # -t became the profile's duration: workers get it as --duration
        environment.parsed_options.duration = settings.duration
    environment.parsed_options.run_time = None  # the profile ends the run, not Locust's timer
    manifest = Manifest(
        run_id=settings.run_id,
        label=settings.run_label,
        target=settings.target,
        profile=settings.profile.name,
        parameters={
            **settings.parameters(),
            "state_machine_arn": arn,
            "account_concurrency": limit,
            "timing": targets.timing(target),
        },
        stack_outputs=outputs,
        endpoint_url=target.endpoint_url,
        region=target.region,
        started_at=now_iso(),
        completion_tracking=settings.track_completion,
        locust={"csv_prefix": str(run_dir / "locust"), "html": str(run_dir / "locust.html")},
        notes=warnings,
        emulator_instance=target.instance,
    )
    recorder = Recorder(run_dir, manifest)
    if recorder.storage_error is not None:  # e.g. the disk filled up during an earlier run
        print(terminal.fill(storage_message(run_dir, recorder.storage_error).render()), file=sys.stderr, flush=True)
        sys.exit(EXIT_STORAGE)
    if not environment.parsed_options.html_file:
        environment.parsed_options.html_file = str(run_dir / "locust.html")
    writer = StatsCSVFileWriter(environment, PERCENTILES_TO_REPORT, str(run_dir / "locust"), full_history=True)
    gevent.spawn(_write_stats, writer)
    # Execution names are unique per state machine (90 days on AWS): a replaced run's new executions get a suffix.
    prefix = f"{settings.run_id}-{secrets.token_hex(2)}" if replaced else settings.run_id
    if replaced:
        manifest.notes.append(f"--overwrite replaced an earlier run {settings.run_id}; executions are named {prefix}-*")
    coordinator.update(
        settings=settings, target=target, outputs=outputs, pool=pool, recorder=recorder, writer=writer,
        run_dir=run_dir, done=False, prefix=prefix,
    )  # fmt: skip
    runner.register_message("sof_started", lambda msg, **_: recorder.started([Started(**r) for r in msg.data]))
    runner.register_message("sof_failed", lambda msg, **_: recorder.failed([FailedStart(**r) for r in msg.data]))
    runner.register_message("sof_finished", lambda msg, **_: recorder.finished([Finished(**r) for r in msg.data]))
    runner.register_message("sof_unconfirmed", lambda msg, **_: recorder.unconfirmed([Starting(**r) for r in msg.data]))
    if not isinstance(runner, MasterRunner):
        runner.register_message("sof_plan", _on_plan)
    gevent.spawn(_keep_manifest_fresh, recorder)
    if target.name == "local" and target.endpoint_url:
        gevent.spawn(_watch_target, environment, TargetWatch(target.endpoint_url, target.access_key, target.instance))
    _announce(
        [
            f"run {settings.run_id}: {settings.profile.name}, "
            f"{terminal.plural(settings.profile.total(), 'execution')} of "
            f"{terminal.plural(settings.batch_size, 'ticket')} -> {paths.shown(run_dir)}"
        ]
    )


def _check_input(settings: options.LoadSettings, pool: TicketPool, outputs: dict[str, Any], map_mode: str) -> None:
    """The knob fits the Map, and an inline Map's batch fits the 256 KB input (a Distributed one reads S3)."""
    options.map_mode_check(settings, map_mode)
    largest = pool.largest_input_bytes(settings.batch_size, settings.max_concurrency)
    if largest > MAX_INPUT_BYTES and map_bucket(outputs) is None:
        raise UserError(
            f"a batch of {settings.batch_size} tickets can reach {largest // 1024} KB, over the 256 KB "
            "Step Functions input limit",
            "use a smaller --batch-size (the workshop uses 500), or the Distributed Map (map_mode = distributed), "
            "which reads its tickets from S3",
        )


def _announce(lines: list[str]) -> None:
    for line in lines:
        print(terminal.fill(line), file=sys.stderr, flush=True)


def _quiet_locust(environment: Any) -> None:
    """Locust's tables out of the console (its logger is set INFO by Locust's setup, before init); its routine
    lines back with --loglevel DEBUG."""
    logging.getLogger(STATS_LOGGER).setLevel(logging.WARNING)
    ROUTINE.shown = str(getattr(environment.parsed_options, "loglevel", "INFO")).upper() == "DEBUG"


def headless_only(parsed: Any) -> None:
    """The harness drives one profile run per process: Locust's web UI could not start a second one."""
    if getattr(parsed, "worker", False) or getattr(parsed, "headless", False):
        return
    raise UserError(
        "the scale-or-fail harness runs headless only: its profile starts once per process, and the web UI's "
        "users / spawn rate / Start do not apply to it",
        "add --headless (e.g. make burst N=500 MAX_CONCURRENCY=2); follow a run by its progress lines",
    )


def _progress_reporter() -> progress.Reporter:
    settings: options.LoadSettings = coordinator["settings"]
    recorder: Recorder = coordinator["recorder"]
    target: targets.Target = coordinator["target"]

    def first_arn() -> str | None:
        return recorder.manifest.executions[0].arn if recorder.manifest.executions else None

    def history_call() -> Any:
        limiter = ApiLimiter.for_target(target.name, target.region)  # the AWS quota of GetExecutionHistory
        client = target.client("stepfunctions", max_attempts=1)
        return functools.partial(limiter.call, "GetExecutionHistory", client.get_execution_history)

    def map_run_call() -> Any:
        client = target.client("stepfunctions", max_attempts=1)
        return functools.partial(ApiLimiter.for_target(target.name, target.region).call, "DescribeMapRun",
                                 client.describe_map_run)  # fmt: skip

    return progress.Reporter(
        single=settings.profile.single,
        tickets=settings.batch_size,
        planned=settings.profile.total(),
        t0=float(coordinator["plan"]["t0"]),
        counts=lambda: recorder.counts,
        throttled=lambda: recorder.throttled_starts,
        first_arn=first_arn,
        history_call=history_call,
        track_completion=settings.track_completion,
        expected=None if settings.profile.single else settings.profile.cumulative,
        start_latency_ms=recorder.start_latency_p50,
        map_run_call=map_run_call,
    )


def _print_progress(reporter: progress.Reporter) -> None:
    try:
        line = reporter.line()
    except Exception as error:  # progress is a courtesy: a failed look never stops the load
        log.debug(f"progress: {error}")
        return
    if line is not None:
        print(terminal.fill(line), file=sys.stderr, flush=True)
    _print_console_link(reporter)


def _print_console_link(reporter: progress.Reporter) -> None:
    """Once, when a console for this target is running: the page of the burst's execution."""
    if coordinator.get("console_linked") or not reporter.single:
        return
    recorder: Recorder = coordinator["recorder"]
    if not recorder.manifest.executions:
        return
    coordinator["console_linked"] = True
    found = consolelink.line(consolelink.execution_path(recorder.manifest.executions[0].arn), recorder.manifest.target)
    if found:
        print(found, file=sys.stderr, flush=True)


def _report_progress(reporter: progress.Reporter) -> None:
    """A progress line every --progress-interval seconds until the run is over (see load/progress.py)."""
    interval = coordinator["settings"].progress_interval
    while not coordinator.get("closing") and not reporter.finished:
        gevent.sleep(interval)
        if not coordinator.get("closing"):
            _print_progress(reporter)


def _start_warnings(
    target: targets.Target,
    arn: str,
    settings: options.LoadSettings,
    outputs: dict[str, Any],
    limit: int | None,
    map_mode: str,
) -> list[str]:
    """What the learner should know before the run starts: 429s ahead, the history limit within reach."""
    throttling = options.concurrency_warning(settings, limit, map_mode)
    history = _history_warning(target, arn, settings, outputs, throttling, map_mode)
    return [w for w in (throttling, history) if w]


def _history_warning(
    target: targets.Target,
    arn: str,
    settings: options.LoadSettings,
    outputs: dict[str, Any],
    throttling: str | None,
    map_mode: str,
) -> str | None:
    """Warn when the deployed definition's batch can reach the 25,000-event history limit - counting every
    retry only where 429s are to be expected (the Map above the account's or Embed's reserved concurrency).
    A Distributed Map's tickets run in child executions, each with its own history: nothing to read."""
    if map_mode == "distributed":
        return None
    try:
        definition = target.client("stepfunctions", max_attempts=1).describe_state_machine(stateMachineArn=arn)
    except Exception:  # the start itself will report an unreachable target or a missing machine
        return None
    reserved = outputs.get("embed_reserved_concurrency")
    knob = settings.max_concurrency  # None: the definition's default (2), which no reserve below 2 refuses
    slots = map_slots(knob, map_mode) if knob is not None else None
    retries = bool(throttling) or (isinstance(reserved, int) and slots is not None and slots > reserved)
    return history_limit.warning(settings.batch_size, str(definition.get("definition") or "{}"), retries)


def _write_stats(writer: Any) -> None:
    """Locust's periodic CSV writer; a full disk ends it (the run is stopped by _keep_manifest_fresh)."""
    with contextlib.suppress(OSError):
        writer.stats_writer()


def _keep_manifest_fresh(recorder: Recorder) -> None:
    while True:
        gevent.sleep(MANIFEST_INTERVAL_S)
        recorder.write()
        if recorder.storage_error is not None and not coordinator.get("closing"):
            _stop_on_storage(recorder.storage_error)
            return


def _stop_on_storage(error: OSError) -> None:
    """The run's records can no longer be written: stop at once, one line, exit EXIT_STORAGE."""
    recorder: Recorder = coordinator["recorder"]
    environment = coordinator["writer"].environment
    problem = storage_message(coordinator["run_dir"], error)
    recorder.fail("storage", problem.cause)
    coordinator["failure"] = problem
    environment.process_exit_code = EXIT_STORAGE
    environment.parsed_options.html_file = None  # nothing more can be written there
    print(problem.render(), file=sys.stderr, flush=True)
    environment.runner.quit()


def _watch_target(environment: Any, watch: TargetWatch) -> None:
    """End the run as soon as the emulator is gone or restarted (its executions went with it)."""
    while not coordinator.get("closing"):
        gevent.sleep(WATCH_INTERVAL_S)
        lost = watch.check()
        if lost is None or coordinator.get("closing"):
            continue
        recorder: Recorder = coordinator["recorder"]
        recorder.fail(lost.kind, lost.message)
        coordinator["failure"] = lost
        environment.process_exit_code = EXIT_TARGET_LOST
        sof = terminal.sof()
        print(
            terminal.fill(
                UserError(
                    lost.message, f"`{sof} local up && {sof} deploy --target local`, then run the load again"
                ).render()
            ),
            file=sys.stderr,
            flush=True,
        )
        environment.runner.quit()
        return


@events.test_start.add_listener
def _test_start(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner) or not coordinator:
        return
    if isinstance(runner, MasterRunner):  # dense shares 0..W-1, whatever Locust's worker indexes are
        clients = sorted(node.id for node in runner.clients.values() if node.state != STATE_MISSING)
    else:
        clients = [str(getattr(runner, "client_id", "local"))]
    workers = max(1, len(clients))
    plan = {
        "run_id": coordinator["settings"].run_id,
        "prefix": coordinator["prefix"],  # execution names: <prefix>-<worker>-<seq>
        "t0": time.time() + START_MARGIN_S,
        "workers": workers,
        "shares": {client: index for index, client in enumerate(clients)},
    }
    coordinator["plan"] = plan
    coordinator["recorder"].manifest.workers = workers
    runner.send_message("sof_plan", plan)
    if coordinator["settings"].progress_interval > 0:
        coordinator["progress"] = reporter = _progress_reporter()
        coordinator["progress_loop"] = gevent.spawn(_report_progress, reporter)
    if isinstance(runner, MasterRunner):
        gevent.spawn(_watch_workers, environment)


def _watch_workers(environment: Any) -> None:
    """A load worker that goes missing: its journal is taken in, its executions' completion tracked here."""
    runner = environment.runner
    plan, recorder, settings = coordinator["plan"], coordinator["recorder"], coordinator["settings"]
    lost: set[int] = set()
    tracker: CompletionTracker | None = None
    while not coordinator.get("closing"):
        gevent.sleep(1.0)
        for node in list(runner.clients.values()):
            share = plan["shares"].get(node.id)
            if share is None or share in lost or node.state != STATE_MISSING:
                continue
            lost.add(share)
            coordinator["lost_workers"] = sorted(lost)
            for journal in sorted(coordinator["run_dir"].glob("journal-worker*.jsonl")):
                recorder.absorb_journal(journal)
            recorder.manifest.notes.append(
                f"load worker {share} went missing at {now_iso()}: its remaining starts were not made, and the "
                "coordinator tracked its executions to the end"
            )
            print(f"warning: load worker {share} went missing; the run goes on without it", file=sys.stderr)
            if settings.track_completion:
                if tracker is None:
                    target = coordinator["target"]
                    since = datetime.fromtimestamp(plan["t0"] - START_MARGIN_S, UTC)
                    arn = settings.state_machine_arn or str(coordinator["outputs"]["state_machine_arn"])
                    limiter = ApiLimiter.for_target(target.name, target.region)
                    tracker = CompletionTracker(target.client("stepfunctions", max_attempts=1), arn, since, limiter)
                done = {f.name for f in recorder.manifest.finished}
                for execution in list(recorder.manifest.executions):
                    if execution.worker == share and execution.name not in done:
                        tracker.add(execution.name, execution.arn)
        if tracker is not None and tracker.pending:
            found = tracker.poll()
            recorder.finished(
                [Finished(d.name, d.status, d.stopped.isoformat(), round(d.duration_ms, 3)) for d in found]
            )


def _on_plan(msg: Any, environment: Any = None, **_: Any) -> None:
    loader["plan"] = msg.data


@events.test_stop.add_listener
def _test_stop(environment: Any, **_: Any) -> None:
    process = loader.get("process")
    if process is not None:
        process.stop()


@events.quit.add_listener
def _quit(exit_code: int = 0, **_: Any) -> None:
    if not coordinator:
        return
    recorder: Recorder = coordinator["recorder"]
    coordinator["closing"] = True
    status = "failed" if coordinator.get("failure") else "complete" if coordinator.get("done") else "interrupted"
    loop = coordinator.get("progress_loop")
    if loop is not None:
        loop.kill(block=True)  # one last line, from here: a look of the loop's own may be under way
    reporter: progress.Reporter | None = coordinator.get("progress")
    if reporter is not None and status == "complete":
        _print_progress(reporter)  # the last word, however short the run was
    path = recorder.close(status)
    environment = coordinator["writer"].environment
    with contextlib.suppress(OSError):  # a full disk: the manifest's end state is what counts
        _final_csv(environment, coordinator["run_dir"])
    for line in summary.lines(environment.stats, terminal.width()):
        print(line, file=sys.stderr)
    started, failed, finished = recorder.counts
    throttled = recorder.throttled_starts
    print(
        terminal.fill(
            f"run {recorder.manifest.run_id} {status}: {terminal.plural(started, 'execution')} started, "
            f"{failed} failed to start{f' ({throttled} throttled: ThrottlingException)' if throttled else ''}, "
            f"{finished} seen finishing -> {paths.shown(path)}"
        ),
        file=sys.stderr,
        flush=True,
    )


def _final_csv(environment: Any, run_dir: Path) -> None:
    """The final request/failure/exception tables (the periodic writer can be a second behind)."""
    import csv

    tables = StatsCSV(environment, PERCENTILES_TO_REPORT)
    written = (("stats", tables.requests_csv), ("failures", tables.failures_csv), ("exceptions", tables.exceptions_csv))
    for suffix, method in written:
        with (run_dir / f"locust_{suffix}.csv").open("w", newline="") as handle:
            method(csv.writer(handle))


# -- the load process ---------------------------------------------------------------------------


class ProcessLoad:
    """Everything one load process needs, built once from the (forwarded) options."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        if "pool" in coordinator:  # this process is the coordinator too: its start-up work is done
            self.settings, self.target, self.outputs, self.pool = (
                coordinator[key] for key in ("settings", "target", "outputs", "pool")
            )
        else:
            self.settings = options.validate(environment.parsed_options, coordinator=False)
            self.target = targets.resolve(self.settings.target, self.settings.region)
            self.outputs = targets.load_outputs(self.settings.target, self.target)
            self.pool = TicketPool(self.settings.tickets)
        self.state_machine_arn = self.settings.state_machine_arn or str(self.outputs["state_machine_arn"])
        self.client = self.target.client("stepfunctions", max_attempts=1)  # no hidden retries
        self.map_bucket = map_bucket(self.outputs)  # a Distributed Map reads each execution's tickets from S3
        self.s3: Any = self.target.client("s3") if self.map_bucket else None
        runner = environment.runner
        self.worker = int(getattr(runner, "worker_index", 0) or 0)
        self.local = not isinstance(runner, WorkerRunner)
        self.outbox: dict[str, list[dict[str, Any]]] = {"sof_started": [], "sof_failed": [], "sof_finished": []}
        self.inflight: dict[str, Starting] = {}
        self.journal: Journal | None = None
        if not self.local:  # a worker keeps its own journal beside the coordinator's, for crashes
            run_dir = self.settings.run_dir / self.settings.run_id
            self.journal = Journal(run_dir / f"journal-worker{self.worker}.jsonl")
        self.tracker: CompletionTracker | None = None
        self.scheduled = False
        self.stopped = False
        self.parent = os.getppid()
        self.forked = bool(getattr(environment.parsed_options, "processes", 0))  # a --processes child

    def record(self, kind: str, record: Any) -> None:
        """Send a record to the coordinator (directly when it is this process)."""
        if self.local:
            recorder: Recorder = coordinator["recorder"]
            getattr(recorder, kind.removeprefix("sof_"))([record])  # started / failed / finished
            return
        assert self.journal is not None
        self.journal.log(kind.removeprefix("sof_"), record)
        self.outbox[kind].append(asdict(record))

    def starting(self, record: Starting) -> None:
        self.inflight[record.name] = record
        if self.local:
            coordinator["recorder"].starting(record)
        elif self.journal is not None:
            self.journal.log("starting", record)

    def flush(self) -> None:
        runner = self.environment.runner
        for kind, records in self.outbox.items():
            if records:
                self.outbox[kind] = []
                runner.send_message(kind, records)

    def stop(self) -> None:
        """The test is stopping: start nothing more, send everything, report calls in flight as unconfirmed."""
        self.stopped = True
        if self.local:
            return
        self.flush()
        if self.inflight:
            self.environment.runner.send_message("sof_unconfirmed", [asdict(r) for r in self.inflight.values()])

    def fire(self, name: str, response_time: float, exception: Exception | None, length: int = 0) -> None:
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=response_time,
            response_length=length,
            exception=exception,
            context={},
        )

    def start(self, seq: int, prefix: str) -> None:
        if self.stopped:
            return
        settings = self.settings
        name = f"{prefix}-{self.worker}-{seq}"
        tickets = self.pool.batch(seq, settings.batch_size)
        if self.map_bucket:  # the ItemReader's object first: the execution's input names it
            key = batch_key(name)
            try:
                self.s3.put_object(Bucket=self.map_bucket, Key=key, Body=jsonl(tickets))
            except (ClientError, BotoCoreError, OSError) as exc:
                code, message = error_code(exc)
                self.fire("StartExecution", 0.0, StartFailedError(f"{code}: tickets not written to S3"))
                self.record(
                    "sof_failed",
                    FailedStart(name, now_iso(), code, f"s3://{self.map_bucket}/{key}: {message}"[:500],
                                settings.batch_size, self.worker, seq),
                )  # fmt: skip
                return
            payload = distributed_input(key, settings.max_concurrency)
        else:
            payload = execution_input(tickets, settings.max_concurrency)
        self.starting(Starting(name, now_iso(), settings.batch_size, self.worker, seq))
        result = start_execution(self.client, self.state_machine_arn, name, payload)
        self.inflight.pop(name, None)
        if result.ok:
            self.fire("StartExecution", result.latency_ms, None, len(payload))
            self.record(
                "sof_started",
                Started(
                    name, result.arn, now_iso(), settings.batch_size, self.worker, seq, round(result.latency_ms, 3)
                ),
            )
            if self.tracker is not None:
                self.tracker.add(name, result.arn)
        else:
            self.fire("StartExecution", result.latency_ms, StartFailedError(f"{result.error}: {result.message[:200]}"))
            self.record(
                "sof_failed",
                FailedStart(name, now_iso(), result.error, result.message, settings.batch_size, self.worker, seq),
            )

    def run_schedule(self) -> None:
        """Start this process's share of the profile: start k at t0 + t_k when k % W == index."""
        deadline = time.time() + 30
        while "plan" not in loader and time.time() < deadline:
            gevent.sleep(0.05)
        plan = loader.get("plan") or {"run_id": self.settings.run_id, "t0": time.time(), "workers": 1}
        if self.settings.track_completion:
            since = datetime.fromtimestamp(plan["t0"] - START_MARGIN_S, UTC)
            limiter = ApiLimiter.for_target(self.target.name, self.target.region)
            self.tracker = CompletionTracker(self.client, self.state_machine_arn, since, limiter)
            gevent.spawn(self.poll_forever)
        if not self.local:
            gevent.spawn(self.flush_forever)
            gevent.spawn(self.watch_coordinator)
        times = self.settings.profile.start_times()
        client = str(getattr(self.environment.runner, "client_id", "local"))
        share = int(plan.get("shares", {}).get(client, self.worker % plan["workers"]))
        self.worker = share  # execution names and records use the dense share index
        for seq, moment in my_starts(times, share, plan["workers"]):
            delay = plan["t0"] + moment - time.time()
            if delay > 0:
                gevent.sleep(delay)
            if self.stopped:
                return
            gevent.spawn(self.start, seq, plan.get("prefix") or plan["run_id"])

    def coordinator_gone(self) -> str | None:
        """Why this worker's coordinator is known to be gone (None while it answers)."""
        if self.forked and os.getppid() != self.parent:
            return f"its coordinator (pid {self.parent}) is gone"
        last = getattr(self.environment.runner, "last_heartbeat_timestamp", None)
        if last and time.time() - last > COORDINATOR_SILENCE_S:
            return f"its coordinator has not answered for {time.time() - last:.0f} s"
        return None

    def watch_coordinator(self) -> None:
        """An orphaned worker stops loading within seconds (Locust itself waits 60 s)."""
        while not self.stopped:
            gevent.sleep(0.5)
            reason = self.coordinator_gone()
            if reason is not None:
                log.error(f"worker {self.worker}: {reason}; it stops starting executions and exits")
                self.stop()
                self.environment.runner.quit()
                return

    def poll_forever(self) -> None:
        assert self.tracker is not None
        while True:
            gevent.sleep(self.settings.poll_interval)
            for done in self.tracker.poll():
                failure = None if done.status == "SUCCEEDED" else ExecutionNotSucceededError(done.status)
                self.fire("Execution", done.duration_ms, failure)
                self.record(
                    "sof_finished",
                    Finished(done.name, done.status, done.stopped.isoformat(), round(done.duration_ms, 3)),
                )

    def flush_forever(self) -> None:
        while True:
            gevent.sleep(SEND_INTERVAL_S)
            self.flush()


class StartFailedError(Exception):
    """A StartExecution call failed; the message starts with the AWS error code."""


class ExecutionNotSucceededError(Exception):
    """An execution ended FAILED, TIMED_OUT or ABORTED."""


class PipelineLoad(User):
    """Keeps this process's start schedule running (the schedule outlives any user restart)."""

    def wait_time(self) -> float:
        return 3600.0

    @task
    def run_schedule(self) -> None:
        if "process" not in loader:
            try:
                loader["process"] = ProcessLoad(self.environment)
            except UserError as error:
                log.error(error.render())
                self.environment.runner.quit()
                return
        process: ProcessLoad = loader["process"]
        if not process.scheduled:  # once per process, whatever happens to the users
            process.scheduled = True
            gevent.spawn(process.run_schedule)
        gevent.sleep(3600)


class RunShape(LoadTestShape):
    """One PipelineLoad user per load process until the profile and the drain are over.

    It reads Locust's common options itself (-t is the profile's duration, -u/-r are refused:
    options.locust_duration), so Locust does not warn that they are ignored."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        if not coordinator or ("plan" not in coordinator and self.get_run_time() > 60):
            return None
        runner = self.runner
        workers = max(1, int(getattr(runner, "worker_count", 1)))
        if "plan" not in coordinator:
            return workers, workers
        settings = coordinator["settings"]
        recorder: Recorder = coordinator["recorder"]
        elapsed = self.get_run_time()
        started, failed, finished = recorder.counts
        planned = settings.profile.total()
        schedule_end = START_MARGIN_S + settings.duration + 1.0
        waiting_for_starts = started + failed < planned and not coordinator.get("lost_workers")
        if elapsed < schedule_end or (waiting_for_starts and elapsed < schedule_end + 60):
            return workers, workers
        if settings.track_completion and finished < started and elapsed < schedule_end + settings.drain_timeout:
            return workers, workers
        if settings.track_completion and finished < started:
            recorder.manifest.notes.append(
                f"drain timeout: {started - finished} executions were still running after {settings.drain_timeout:g} s"
            )
        coordinator["done"] = True
        return None
