"""A Docker-free Lambda runtime: execution environments as worker processes.

Each environment is a ``worker.py`` process that imported one function's handler from
its unpacked deployment zip, with that function's environment variables. It serves one
invocation at a time and is reused while warm; idle environments expire. Busy
environments are the function's concurrency: above the account limit (minus
reservations) or the function's reserved concurrency, an invocation is refused with
``TooManyRequestsException`` before it starts, exactly as Lambda refuses it.

Timeouts kill the environment (``Sandbox.Timedout``); an environment whose memory
exceeds the function's MemorySize is killed (``Runtime.OutOfMemory``); handler
exceptions come back as Lambda's error payload. Logs (START/END/REPORT and the
handler's lines) and AWS/Lambda metrics go to a :class:`Sink`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import os
import random
import select
import shutil
import subprocess
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from scaleorfail.emulator.quotas import Quotas
from scaleorfail.emulator.settings import EmulatorSettings
from scaleorfail.emulator.timing import PACER
from scaleorfail.emulator.zygote import RUNTIME_ENV, WORKER, Spawn, Spawner, WorkerProcess

INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit
CAP_WAIT_S = 60.0  # at the emulator's cap on environments, how long an invocation waits for one
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
LOG_TAIL_BYTES = 4096
TIMEOUT = "timeout"
EXITED = "exited"


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime needs to know about one function version."""

    name: str
    arn: str
    version: str
    handler: str
    runtime: str
    memory_mb: int
    timeout_s: float
    environment: dict[str, str]
    code_sha256: str
    reserved_concurrency: int | None
    code: bytes = field(repr=False, compare=False, hash=False)

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"

    @functools.cached_property
    def key(self) -> str:
        """Environments are reusable only for the same code and configuration."""
        config = json.dumps(
            [self.arn, self.version, self.handler, self.runtime, self.memory_mb, self.timeout_s, self.environment],
            sort_keys=True,
        )
        return hashlib.sha256((config + self.code_sha256).encode()).hexdigest()[:24]


def host_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return ""


@dataclass(frozen=True)
class Datum:
    name: str
    value: float
    unit: str
    dimensions: dict[str, str]
    timestamp: datetime


class Sink(Protocol):
    """Where the runtime writes logs and metrics (the emulator's CloudWatch)."""

    def log_events(self, group: str, stream: str, events: list[tuple[int, str]]) -> None: ...

    def metrics(self, namespace: str, data: list[Datum]) -> None: ...


class ThrottledError(Exception):
    """The invocation was refused: 429 TooManyRequestsException."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"Rate Exceeded. ({reason}: {detail})")
        self.reason = reason
        self.detail = detail


@dataclass
class InvokeResult:
    request_id: str
    body: Any  # the handler's result, or Lambda's error payload when function_error is set
    function_error: str | None
    log_lines: list[str]  # what the invocation wrote to its log stream
    executed_version: str
    duration_ms: float
    init_ms: float | None

    @property
    def payload(self) -> bytes:
        """The Invoke API's response body (in-process callers use `body` and skip the JSON)."""
        return json.dumps(self.body).encode("utf-8")

    @property
    def log_tail(self) -> str:
        """The last 4 KB of the log, as Invoke returns it with LogType=Tail."""
        text = "\n".join(self.log_lines) + "\n"
        return text.encode("utf-8")[-LOG_TAIL_BYTES:].decode("utf-8", errors="ignore")


def stream_id() -> str:
    """A log stream's random part (32 hex digits, as Lambda's). From `random`, not `secrets`: environments are
    made under the runtime's lock, where getrandom() would let the GIL go."""
    return f"{random.getrandbits(128):032x}"


class Environment:
    """One worker process for one function version."""

    def __init__(self, spec: FunctionSpec, code_dir: Path, endpoint: str, region: str, spawn: Spawn) -> None:
        self.spec = spec
        self.key = spec.key
        stamp = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream = f"{stamp}/[{spec.version}]{stream_id()}"
        self.code_dir = code_dir
        self.endpoint = endpoint
        self.region = region
        self.spawn = spawn
        self.process: WorkerProcess | None = None
        self.last_used = time.monotonic()
        self.pending_init_ms: float | None = None
        self.init_error: dict[str, Any] | None = None
        self.init_output = ""

    def environment_variables(self) -> dict[str, str]:
        spec = self.spec
        # Lambda's PATH, not this machine's (it names the user's folders); the worker is started by full path
        env = dict(RUNTIME_ENV)
        env.update(spec.environment)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "LAMBDA_TASK_ROOT": str(self.code_dir),
                "LAMBDA_RUNTIME_DIR": str(WORKER.parent),
                "_HANDLER": spec.handler,
                # Code that calls AWS from inside a function reaches the emulator.
                "AWS_ENDPOINT_URL": self.endpoint,
                # the emulator's access token when it requires one (the server sets SOF_ACCESS_KEY_ID)
                "AWS_ACCESS_KEY_ID": os.environ.get("SOF_ACCESS_KEY_ID", "test"),
                "AWS_SECRET_ACCESS_KEY": "test",
                "SOF_MEMORY_LIMIT_MB": str(spec.memory_mb),
                "SOF_HOST_USER": host_user(),  # written as Lambda's user in what clients read (worker.scrub)
            }
        )
        return env

    def start(self, modelled_init_ms: float) -> float:
        """Cold start: a real process start and import, made up to the modelled init time.

        The modelled time is a floor (REPORT Init Duration is at least that); returns how much
        longer than it the real start took (0 when it fitted)."""
        began = time.perf_counter()
        self.process = self.spawn(self.environment_variables(), self.code_dir)
        message = self._read(INIT_TIMEOUT_S)
        if isinstance(message, str):
            code = self.exit_status() if message == EXITED else None
            self.kill()
            self.init_error = {
                "errorType": "Runtime.ExitError" if code is not None else "Runtime.InitTimeout",
                "errorMessage": f"Error: Runtime exited during init (status {code})"
                if code is not None
                else f"Init phase did not finish within {INIT_TIMEOUT_S:g} seconds",
            }
            return 0.0
        self.init_output = str(message.get("output", ""))
        if not message.get("ready"):
            self.init_error = dict(message.get("error") or {})
            self.kill()
            return 0.0
        PACER.mark()
        remaining = modelled_init_ms / 1000.0 - (time.perf_counter() - began)
        PACER.sleep(remaining)
        self.pending_init_ms = (time.perf_counter() - began) * 1000.0
        return max(0.0, -remaining)

    def _read(self, timeout_s: float) -> dict[str, Any] | str:
        """The next message, or TIMEOUT, or EXITED when the process ended first."""
        assert self.process is not None and self.process.stdout is not None
        stdout: IO[bytes] = self.process.stdout
        waiting = select.poll()  # not select(): a busy emulator has descriptors past 1024
        waiting.register(stdout, select.POLLIN)
        if not waiting.poll(max(0.0, timeout_s) * 1000):
            return TIMEOUT
        line = stdout.readline()
        if not line:
            return EXITED
        return dict(json.loads(line))

    def exit_status(self) -> int | None:
        """After EXITED: the process's exit status (it may take a moment to be reaped)."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def send(self, request: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(request, separators=(",", ":")).encode("utf-8") + b"\n")
        self.process.stdin.flush()

    def rss_mb(self) -> float:
        """Resident memory of the process now (0 when it is gone)."""
        if self.process is None:
            return 0.0
        try:
            with open(f"/proc/{self.process.pid}/statm", "rb") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
        except (OSError, IndexError, ValueError):
            return 0.0

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> int | None:
        """Stop the process; returns its exit status (negative = signal) if it had already ended."""
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return code


@dataclass
class Outcome:
    """What one invocation produced, before it is turned into logs, metrics and a result."""

    payload: Any = None
    error: dict[str, Any] | None = None
    output: str = ""
    duration_ms: float = 0.0
    max_memory_mb: float = 0.0
    status: str = "ok"  # ok | error | timeout | oom | init_error
    environment_dead: bool = False

    @property
    def fatal(self) -> bool:
        """The environment failed (timed out, ran out of memory, never initialised), not the handler."""
        return self.status in ("timeout", "oom", "init_error")


class LambdaRuntime:
    def __init__(
        self,
        settings: EmulatorSettings,
        sink: Sink,
        reservations: Callable[[], dict[str, int]],
        work_dir: Path,
        quotas: Quotas | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.reservations = reservations
        self.quotas = quotas or Quotas(settings)
        self.work_dir = work_dir
        self.endpoint = f"http://{settings.host}:{settings.port}"
        self._lock = threading.Lock()
        # At the emulator's cap on environments, invocations wait here for one to come back (see _acquire)
        self._returned: dict[str, threading.Condition] = {}  # per function version: one of its environments
        self._room = threading.Condition(self._lock)  # any environment idle or gone: room to start one
        self._waiting: Counter[str] = Counter()  # invocations waiting, per function version ("" for room)
        self.cap_waits = 0
        self.cap_wait_s = 0.0
        self._idle: dict[str, list[Environment]] = {}
        self._busy: Counter[str] = Counter()
        self._environments: set[Environment] = set()
        self._code_locks: dict[str, threading.Lock] = {}
        self._code_dirs: dict[str, Path] = {}
        self._current_keys: dict[str, str] = {}
        self._stopping = threading.Event()
        self._spawn = Spawner(settings.lambda_spawn)
        self.cold_starts = 0
        self._reaper = threading.Thread(target=self._reap_forever, name="lambda-reaper", daemon=True)
        self._reaper.start()

    # -- concurrency ------------------------------------------------------------------

    def _admit(self, spec: FunctionSpec, reservations: dict[str, int]) -> None:
        """Raise ThrottledError when spec may not start one more invocation (called under the lock)."""
        busy_here = self._busy[spec.name]
        reserved = spec.reserved_concurrency
        if reserved is not None:
            if busy_here >= reserved:
                raise ThrottledError(
                    "ReservedFunctionConcurrentInvocationLimitExceeded",
                    f"{spec.name} has reserved concurrency {reserved} and {busy_here} invocations running",
                )
            return
        pool = self.settings.account_concurrency - sum(n for name, n in reservations.items() if name != spec.name)
        busy_unreserved = sum(n for name, n in self._busy.items() if name not in reservations)
        if busy_unreserved >= pool:
            raise ThrottledError(
                "ConcurrentInvocationLimitExceeded",
                f"account concurrency {self.settings.account_concurrency}, unreserved pool {pool}, "
                f"{busy_unreserved} running",
            )

    def _scale(self, spec: FunctionSpec) -> None:
        """Raise ThrottledError when the function may not start one more environment now (Lambda's scaling rate)."""
        if not self.quotas.new_environment(spec.arn):
            s = self.settings
            raise ThrottledError(
                "FunctionInvocationRateLimitExceeded",
                f"{spec.name} may start {s.lambda_scaling_bucket:g} execution environments at once, then "
                f"{s.lambda_scaling_rate:g} per second (Lambda's concurrency scaling rate)",
            )

    def _new_environment(self, spec: FunctionSpec, code_dir: Path) -> Environment:
        return Environment(spec, code_dir, self.endpoint, self.settings.region, self._spawn)

    def _acquire(self, spec: FunctionSpec) -> tuple[Environment, bool, int, int]:
        """An environment for spec (warm if one is idle), or ThrottledError.

        At the emulator's cap on environments (``max_environments``, a resource guard, not a Lambda limit) an
        invocation shuts down the oldest idle environment no other invocation is waiting for, and starts its
        own; with none, it waits - for an environment of its own function while that function has
        invocations in flight (one comes back soon), else for room. It used to be refused with
        ConcurrentInvocationLimitExceeded - a throttle AWS would not have sent, which the pipeline's Retry
        then backed off for minutes. After CAP_WAIT_S it is refused as before.

        Nothing under the runtime-wide lock lets the GIL go (no system call, no thread start, no other lock
        that can wait): every invocation takes this lock twice, and a holder that waited for the GIL while
        hundreds of threads ran made every invocation behind it wait too."""
        reservations = self.reservations()
        code_dir = self._code_dir(spec)  # unpacked (once per code) outside the runtime-wide lock
        retiring: list[Environment] = []
        try:
            with self._lock:
                environment, cold = self._wait_for_environment(spec, reservations, code_dir, retiring)
                self._busy[spec.name] += 1
                return environment, cold, self._busy[spec.name], sum(self._busy.values())
        finally:
            self._retire(retiring)

    def _wait_for_environment(
        self, spec: FunctionSpec, reservations: dict[str, int], code_dir: Path, retiring: list[Environment]
    ) -> tuple[Environment, bool]:
        """Under the lock: (an idle environment of spec's, False) or (a new one, True), waiting at the cap."""
        began: float | None = None
        try:
            while True:
                self._admit(spec, reservations)
                self._retire_stale(spec, retiring)
                idle = self._idle.get(spec.key) or []
                if idle:
                    return idle.pop(), False
                waited_out = began is not None and time.monotonic() - began >= CAP_WAIT_S
                room = len(self._environments) < self.settings.max_environments
                victim = None if room else self._victim(spec, waited_out)
                if room or victim is not None:
                    self._scale(spec)
                    if victim is not None:
                        self._idle[victim.key].remove(victim)
                        self._environments.discard(victim)
                        retiring.append(victim)
                    environment = self._new_environment(spec, code_dir)
                    self._environments.add(environment)
                    return environment, True
                if began is None:
                    began = time.monotonic()
                    self.cap_waits += 1
                self._wait_at_cap(spec)
        finally:
            if began is not None:
                self.cap_wait_s += time.monotonic() - began

    def _victim(self, spec: FunctionSpec, waited_out: bool) -> Environment | None:
        """At the cap: the idle environment to shut down for spec's - the oldest of those no invocation is
        waiting for (a function that needs none now) - or None: spec waits. Once it has waited CAP_WAIT_S,
        any idle one; with none idle, ThrottledError."""
        spare = (e for key, idle in self._idle.items() if waited_out or not self._waiting[key] for e in idle)
        oldest = min(spare, key=lambda e: e.last_used, default=None)
        if oldest is None and waited_out:
            raise ThrottledError(
                "ConcurrentInvocationLimitExceeded",
                f"the emulator's cap of {self.settings.max_environments} execution environments is reached",
            )
        return oldest

    def _wait_at_cap(self, spec: FunctionSpec) -> None:
        """Wait (the lock released meanwhile) for one of spec's environments back, or for room; at most 1 s at a
        time, so that a wake-up missed or meant for another still ends in a look."""
        key = spec.key if self._busy[spec.name] else ""
        condition = self._room if not key else self._returned.setdefault(key, threading.Condition(self._lock))
        self._waiting[key] += 1
        try:
            condition.wait(timeout=1.0)
        finally:
            self._waiting[key] -= 1

    def _wake(self, key: str | None) -> None:
        """Under the lock: an environment of `key` is idle (None: one is gone); wake whoever can use it."""
        if key is not None and self._waiting[key]:
            self._returned[key].notify()
        elif self._waiting[""]:
            self._room.notify()

    def _release(self, environment: Environment, reusable: bool) -> None:
        keep = reusable and environment.alive() and not self._stopping.is_set()  # alive(): a system call
        with self._lock:
            self._busy[environment.spec.name] -= 1
            if self._busy[environment.spec.name] <= 0:
                del self._busy[environment.spec.name]
            if keep:
                environment.last_used = time.monotonic()
                self._idle.setdefault(environment.key, []).append(environment)
                self._wake(environment.key)
                return
            self._environments.discard(environment)
            self._wake(None)
        environment.kill()

    @staticmethod
    def _retire(environments: list[Environment]) -> None:
        """Shut these environments down in the background (outside the runtime-wide lock)."""

        def kill_all() -> None:
            for environment in environments:
                environment.kill()

        if environments:
            threading.Thread(target=kill_all, name="lambda-retire", daemon=True).start()

    def _retire_stale(self, spec: FunctionSpec, retiring: list[Environment]) -> None:
        """Idle environments of an older code/configuration of this function are shut down."""
        if self._current_keys.get(spec.name) == spec.key:
            return
        self._current_keys[spec.name] = spec.key
        for key, idle in list(self._idle.items()):
            if key != spec.key and idle and idle[0].spec.name == spec.name:
                for environment in idle:
                    self._environments.discard(environment)
                    retiring.append(environment)
                del self._idle[key]

    def _reap_forever(self) -> None:
        while not self._stopping.wait(1.0):
            self.reap_idle()

    def reap_idle(self, older_than_s: float | None = None) -> int:
        limit = self.settings.idle_expiry_s if older_than_s is None else older_than_s
        now = time.monotonic()
        expired: list[Environment] = []
        with self._lock:
            for key, idle in list(self._idle.items()):
                keep = [e for e in idle if now - e.last_used < limit]
                expired += [e for e in idle if now - e.last_used >= limit]
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
            for environment in expired:
                self._environments.discard(environment)
                self._wake(None)
        for environment in expired:
            environment.kill()
        return len(expired)

    def busy(self) -> bool:
        """Whether an invocation is running now (read without the lock: a moment's answer)."""
        return bool(self._busy)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "environments": len(self._environments),
                "idle": sum(len(v) for v in self._idle.values()),
                "busy": dict(self._busy),
                "cold_starts": self.cold_starts,
                "cap_waits": self.cap_waits,  # invocations that waited at the emulator's cap on environments
                "cap_wait_s": round(self.cap_wait_s, 3),
                "pids": sorted(e.process.pid for e in self._environments if e.process is not None),
                "spawn": self._spawn.mode,
                "fork_server": self._spawn.pid,
            }

    def shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            environments = list(self._environments)
            self._environments.clear()
            self._idle.clear()
        for environment in environments:
            environment.kill()
        self._spawn.close()

    # -- code -------------------------------------------------------------------------

    def _code_dir(self, spec: FunctionSpec) -> Path:
        """The unpacked package of spec's code: unpacked on first use, then a dictionary lookup."""
        known = self._code_dirs.get(spec.code_sha256)
        if known is not None:
            return known
        target = self.work_dir / "code" / hashlib.sha256(spec.code_sha256.encode()).hexdigest()[:32]
        with self._code_locks.setdefault(spec.code_sha256, threading.Lock()):
            if not (target / ".complete").exists():
                self._unpack(spec.code, target)
        self._code_dirs[spec.code_sha256] = target
        return target

    def _unpack(self, code: bytes, target: Path) -> None:
        unpack(code, target)

    # -- invoking ---------------------------------------------------------------------

    def invoke(self, spec: FunctionSpec, payload: bytes, invoked_arn: str | None = None) -> InvokeResult:
        """Run one synchronous invocation; raises ThrottledError when refused."""
        request_id = str(uuid.uuid4())
        try:
            environment, cold, busy_function, busy_account = self._acquire(spec)
        except ThrottledError:
            self._metrics(spec, datetime.now(UTC), throttled=True)
            raise
        # The environment is busy from here to _release: its log lines' START .. END window lies inside
        # that, so concurrency counted from the logs can be held against the limits (docs/emulator.md).
        started = datetime.now(UTC)
        self._concurrency_metric(spec, started, busy_function, busy_account)
        reusable = False
        init_ms: float | None = None
        PACER.settle()
        try:
            if cold:
                self.cold_starts += 1
                # A process start slower than the modelled init eats into the modelled placement (both floors).
                over = environment.start(self.settings.cold_start_ms)
                PACER.sleep(self.settings.placement_ms / 1000.0 - over)  # placement, code download: not in Init
            PACER.sleep(self.settings.invoke_overhead_ms / 1000.0)  # the service's round trip: not in Duration
            init_ms, environment.pending_init_ms = environment.pending_init_ms, None
            outcome = self._run(environment, spec, payload, request_id, invoked_arn or spec.arn)
            PACER.mark()  # the handler's time is real on AWS too
            reusable = not outcome.environment_dead
        finally:
            ended = time.time()
            self._release(environment, reusable)
        lines = self._write_logs(environment, spec, request_id, started, ended, outcome, init_ms)
        self._metrics(spec, started, outcome=outcome, init_ms=init_ms)
        return InvokeResult(
            request_id=request_id,
            body=outcome.error if outcome.error is not None else outcome.payload,
            function_error="Unhandled" if outcome.error is not None else None,
            log_lines=lines,
            executed_version=spec.version,
            duration_ms=outcome.duration_ms,
            init_ms=init_ms,
        )

    def _run(
        self, environment: Environment, spec: FunctionSpec, payload: bytes, request_id: str, invoked_arn: str
    ) -> Outcome:
        if environment.init_error is not None:
            error = dict(environment.init_error)
            error.setdefault("requestId", request_id)
            return Outcome(error=error, output=environment.init_output, status="init_error", environment_dead=True)
        try:
            event = json.loads(payload or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return Outcome(
                error={"errorType": "InvalidRequestContentException", "errorMessage": "Could not parse request body"},
                status="error",
            )
        began = time.perf_counter()
        deadline_ms = time.time() * 1000 + spec.timeout_s * 1000
        environment.send(
            {"request_id": request_id, "event": event, "deadline_ms": deadline_ms, "invoked_arn": invoked_arn}
        )
        response = environment._read(spec.timeout_s)
        elapsed = (time.perf_counter() - began) * 1000.0
        if response == TIMEOUT:
            last_rss_mb = environment.rss_mb()
            environment.kill()
            message = f"RequestId: {request_id} Error: Task timed out after {spec.timeout_s:.2f} seconds"
            return Outcome(
                error={"errorType": "Sandbox.Timedout", "errorMessage": message},
                duration_ms=spec.timeout_s * 1000.0,
                max_memory_mb=last_rss_mb,
                status="timeout",
                environment_dead=True,
            )
        if isinstance(response, str):  # EXITED
            code = environment.exit_status()
            environment.kill()
            return self._died(spec, request_id, -9 if code is None else code, elapsed)
        max_memory_mb = response.get("max_rss_kb", 0) / 1024.0
        if max_memory_mb > spec.memory_mb:  # a spike the watchdog did not sample
            environment.kill()
            return self._died(spec, request_id, -9, elapsed, output=str(response.get("output", "")))
        outcome = Outcome(
            output=str(response.get("output", "")),
            duration_ms=float(response.get("duration_ms", elapsed)),
            max_memory_mb=max_memory_mb,
        )
        if response.get("ok"):
            outcome.payload = response.get("result")
        else:
            outcome.error = dict(response.get("error") or {})
            outcome.status = "error"
        return outcome

    def _died(self, spec: FunctionSpec, request_id: str, code: int, elapsed: float, output: str = "") -> Outcome:
        if code == -9:
            error_type, reason = "Runtime.OutOfMemory", "signal: killed"
            status = "oom"
        else:
            error_type = "Runtime.ExitError"
            reason = f"signal: {-code}" if code < 0 else f"exit status {code}"
            status = "error"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
        return Outcome(
            error={"errorType": error_type, "errorMessage": message},
            output=output,
            duration_ms=elapsed,
            max_memory_mb=float(spec.memory_mb) if status == "oom" else 0.0,
            status=status,
            environment_dead=True,
        )

    # -- logs and metrics -------------------------------------------------------------

    def _report(self, spec: FunctionSpec, request_id: str, outcome: Outcome, init_ms: float | None) -> str:
        parts = [
            f"REPORT RequestId: {request_id}",
            f"Duration: {outcome.duration_ms:.2f} ms",
            f"Billed Duration: {math.ceil(outcome.duration_ms + (init_ms or 0.0))} ms",
            f"Memory Size: {spec.memory_mb} MB",
            f"Max Memory Used: {max(1, round(outcome.max_memory_mb))} MB",
        ]
        if init_ms is not None:
            parts.append(f"Init Duration: {init_ms:.2f} ms")
        if outcome.fatal:
            parts.append(f"Status: {'timeout' if outcome.status == 'timeout' else 'error'}")
            if outcome.error:
                parts.append(f"Error Type: {outcome.error.get('errorType')}")
        return "\t".join(parts) + "\t"

    def _log_lines(
        self, spec: FunctionSpec, request_id: str, outcome: Outcome, init_ms: float | None
    ) -> list[tuple[str, str]]:
        """(phase, message) pairs in the order Lambda writes them."""
        lines: list[tuple[str, str]] = []
        if outcome.status == "init_error":
            lines += [("init", line) for line in outcome.output.split("\n") if line.strip()]
            error = outcome.error or {}
            lines.append(("init", f"[ERROR] {error.get('errorType')}: {error.get('errorMessage')}"))
        lines.append(("start", f"START RequestId: {request_id} Version: {spec.version}"))
        if outcome.status != "init_error":
            lines += [("handler", line) for line in outcome.output.split("\n") if line.strip()]
        lines.append(("end", f"END RequestId: {request_id}"))
        lines.append(("end", self._report(spec, request_id, outcome, init_ms)))
        if outcome.status == "timeout":
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            lines.append(("end", f"{now} {request_id} Task timed out after {spec.timeout_s:.2f} seconds"))
        elif outcome.status == "oom" and outcome.error:
            lines.append(("end", f"{outcome.error['errorMessage']}\n{outcome.error['errorType']}"))
        return lines

    def _write_logs(
        self,
        environment: Environment,
        spec: FunctionSpec,
        request_id: str,
        started: datetime,
        ended: float,
        outcome: Outcome,
        init_ms: float | None,
    ) -> list[str]:
        """Write the invocation's log lines (START at `started`, END and REPORT at `ended`); returns them."""
        start_ms = int(started.timestamp() * 1000)
        end_ms = max(start_ms, int(ended * 1000))
        events = [
            (start_ms if phase in ("init", "start") else end_ms, message)
            for phase, message in self._log_lines(spec, request_id, outcome, init_ms)
        ]
        self.sink.log_events(spec.log_group, environment.log_stream, events)
        return [message for _, message in events]

    def _concurrency_metric(self, spec: FunctionSpec, when: datetime, busy_function: int, busy_account: int) -> None:
        self.sink.metrics(
            "AWS/Lambda",
            [
                Datum("ConcurrentExecutions", busy_function, "Count", {"FunctionName": spec.name}, when),
                Datum("ConcurrentExecutions", busy_account, "Count", {}, when),
            ],
        )

    def _metrics(
        self,
        spec: FunctionSpec,
        when: datetime,
        *,
        outcome: Outcome | None = None,
        throttled: bool = False,
        init_ms: float | None = None,
    ) -> None:
        dims = {"FunctionName": spec.name}
        data: list[Datum] = []
        if throttled:
            data += [Datum("Throttles", 1, "Count", dims, when), Datum("Throttles", 1, "Count", {}, when)]
        elif outcome is not None:
            failed = 1 if outcome.error is not None else 0
            for dimensions in (dims, {}):
                data += [
                    Datum("Invocations", 1, "Count", dimensions, when),
                    Datum("Errors", failed, "Count", dimensions, when),
                    Datum("Duration", round(outcome.duration_ms, 3), "Milliseconds", dimensions, when),
                ]
        self.sink.metrics("AWS/Lambda", data)


def staged(target: Path, fill: Callable[[Path], None]) -> None:
    """Fill a fresh folder next to target, then swap it in (readers never see half a package)."""
    temporary = target.with_name(target.name + f".tmp{os.getpid()}{threading.get_ident()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        fill(temporary)
        (temporary / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        temporary.rename(target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def check_member(name: str, size: int, total: int) -> int:
    """Refuse absolute or parent paths and more than 250 MB in all; returns the new total."""
    if name.startswith("/") or ".." in Path(name).parts:
        raise ValueError(f"unsafe path in deployment package: {name}")
    total += size
    if total > MAX_UNZIPPED_BYTES:
        raise ValueError("deployment package is larger than 250 MB unzipped")
    return total


def unpack(code: bytes, target: Path) -> None:
    """Unzip a deployment package safely (no absolute or parent paths, no links, size capped)."""

    from scaleorfail.emulator.packages import validate

    def fill(folder: Path) -> None:
        validate(code)  # no absolute or parent paths, no symbolic links, 250 MB at most
        with zipfile.ZipFile(io.BytesIO(code)) as archive:
            total = 0
            for info in archive.infolist():
                total = check_member(info.filename, info.file_size, total)
            archive.extractall(folder)

    staged(target, fill)
