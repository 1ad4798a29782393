"""Emulator settings: defaults, the sandbox profile, the timing profiles, environment variables.

Two independent choices:

* the **account profile** (``default``: Lambda account concurrency 1000 and the Region's published
  Step Functions quotas; ``sandbox``: 10, as in the workshop's short-lived accounts, with a new
  account's lower StartExecution and StateTransition quotas); every quota can be set on its own
  (``SOF_START_EXECUTION_BUCKET`` ...);
* the **timing profile** (``aws``: the calibrated model of AWS's latencies that reproduces the
  published scaling curve, the default; ``ideal``: no modelled service latency at all, which is
  what the emulator-overhead benchmark measures against). Every timing knob can also be set on
  its own (``SOF_<KNOB>`` environment variables); the profile a run used is then reported as
  ``aws+custom``. docs/emulator.md gives each knob's source and arithmetic.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from scaleorfail.errors import UserError


@dataclass(frozen=True)
class AccountProfile:
    """What an account may do: Lambda concurrency and the rate quotas (token buckets: size, refill per second).

    A Step Functions quota of (0, 0) is the Region's published default (scaleorfail/data/sfn_api_quotas.json).
    """

    account_concurrency: int
    start_execution: tuple[float, float] = (0.0, 0.0)
    state_transition: tuple[float, float] = (0.0, 0.0)
    lambda_scaling: tuple[float, float] = (1000.0, 100.0)  # per function: 1,000 environments per 10 s


PROFILES = {
    "default": AccountProfile(1000),
    # A workshop sandbox: a new account. Lambda's 10 is the workshop's; AWS does not publish a new
    # account's reduced Step Functions quotas, so these two are assumptions (docs/emulator.md, "Quotas").
    "sandbox": AccountProfile(10, start_execution=(100.0, 10.0), state_transition=(500.0, 100.0)),
}
DEFAULT_PORT = 4566
ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class Timing:
    """The modelled service latencies (milliseconds), all spent sleeping - never CPU."""

    history_write_ms: float  # base cost of one serialised write of an execution's history
    history_event_ms: float  # added per event the write carries (events arriving meanwhile join it)
    task_dispatch_ms: float  # Step Functions -> Lambda dispatch, between TaskScheduled and TaskStarted
    invoke_overhead_ms: float  # Lambda's per-request round trip, not part of REPORT Duration
    cold_start_ms: float  # REPORT Init Duration at least this (the real process start + import counts towards it)
    placement_ms: float  # cold start time Lambda does not report: placement, code download, microVM start
    execution_start_ms: float  # after ExecutionStarted, before the first state (a per-execution latency)


TIMING_PROFILES: dict[str, Timing] = {
    # Fitted to every published AWS point (bench/timing_fit.py, bench/results/timing_fit.md); docs/emulator.md.
    "aws": Timing(
        history_write_ms=7.0,
        history_event_ms=2.0,
        task_dispatch_ms=15.0,
        invoke_overhead_ms=15.0,
        cold_start_ms=120.0,
        placement_ms=1200.0,
        execution_start_ms=0.0,
    ),
    # No modelled latency: what the emulator itself costs (the overhead benchmark's reference).
    "ideal": Timing(
        history_write_ms=0.0,
        history_event_ms=0.0,
        task_dispatch_ms=0.0,
        invoke_overhead_ms=0.0,
        cold_start_ms=0.0,  # a cold start is then only the real process start + import
        placement_ms=0.0,
        execution_start_ms=0.0,
    ),
}
DEFAULT_TIMING = "aws"
TIMING_KNOBS = tuple(f.name for f in fields(Timing))


@dataclass(frozen=True)
class EmulatorSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    region: str = "us-east-1"
    profile: str = "default"
    account_concurrency: int = PROFILES["default"].account_concurrency
    # Rate quotas (token buckets); a Step Functions 0 is the Region's published default.
    start_execution_bucket: float = 0.0
    start_execution_rate: float = 0.0
    state_transition_bucket: float = 0.0
    state_transition_rate: float = 0.0
    lambda_scaling_bucket: float = PROFILES["default"].lambda_scaling[0]
    lambda_scaling_rate: float = PROFILES["default"].lambda_scaling[1]
    timing: str = DEFAULT_TIMING
    history_write_ms: float = TIMING_PROFILES[DEFAULT_TIMING].history_write_ms
    history_event_ms: float = TIMING_PROFILES[DEFAULT_TIMING].history_event_ms
    task_dispatch_ms: float = TIMING_PROFILES[DEFAULT_TIMING].task_dispatch_ms
    invoke_overhead_ms: float = TIMING_PROFILES[DEFAULT_TIMING].invoke_overhead_ms
    cold_start_ms: float = TIMING_PROFILES[DEFAULT_TIMING].cold_start_ms
    placement_ms: float = TIMING_PROFILES[DEFAULT_TIMING].placement_ms
    execution_start_ms: float = TIMING_PROFILES[DEFAULT_TIMING].execution_start_ms
    idle_expiry_s: float = 300.0  # a warm environment idle this long is shut down
    max_environments: int = 400  # hard cap on worker processes, whatever the limits say
    lambda_spawn: str = "fork"  # fork: environments forked by a running runtime (emulator/zygote.py); exec: fresh
    # Retention (docs/emulator.md "Memory and retention"): what finished work the emulator keeps.
    retain_executions: int = 5000  # finished executions kept (oldest evicted first)
    retain_execution_mb: float = 256.0  # their packed histories + inputs + outputs, at most this many MB
    retain_log_events: int = 250_000  # CloudWatch Logs events kept, all groups together (oldest dropped)
    retain_metric_points: int = 250_000  # CloudWatch metric data points kept (oldest dropped)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def timing_knobs(self) -> Timing:
        return Timing(**{name: getattr(self, name) for name in TIMING_KNOBS})

    @property
    def timing_label(self) -> str:
        """The timing profile, with `+custom` when a knob was set away from it."""
        return timing_label(self.timing, self.timing_knobs)

    def with_timing(self, name: str) -> EmulatorSettings:
        """These settings with every knob of the named timing profile."""
        if name not in TIMING_PROFILES:
            raise UserError(f"unknown timing profile {name!r}", f"use one of: {', '.join(TIMING_PROFILES)}")
        return replace(self, timing=name, **asdict(TIMING_PROFILES[name]))


def timing_label(name: str, knobs: Timing) -> str:
    base = TIMING_PROFILES.get(name)
    return name if base is None or base == knobs else f"{name}+custom"


def describe_timing(settings: dict[str, Any]) -> str:
    """One line naming the timing profile and its knobs (from a settings record, e.g. /_sof/health)."""
    name = str(settings.get("timing", "?"))
    try:
        knobs = Timing(**{k: float(settings[k]) for k in TIMING_KNOBS})
    except (KeyError, TypeError, ValueError):
        return f"timing {name}"
    parts = ", ".join(f"{k.removesuffix('_ms').replace('_', ' ')} {getattr(knobs, k):g} ms" for k in TIMING_KNOBS)
    return f"timing {timing_label(name, knobs)} ({parts})"


QUOTA_FIELDS = (
    "start_execution_bucket",
    "start_execution_rate",
    "state_transition_bucket",
    "state_transition_rate",
    "lambda_scaling_bucket",
    "lambda_scaling_rate",
)


def describe_quotas(settings: dict[str, Any], published: dict[str, tuple[float, float]]) -> str:
    """One line naming the rate quotas a settings record enforces (published: the Region's defaults)."""

    def bucket(name: str, key: str) -> str:
        size, rate = float(settings.get(f"{key}_bucket", 0) or 0), float(settings.get(f"{key}_rate", 0) or 0)
        source = ""
        if size == 0 and rate == 0 and name in published:
            (size, rate), source = published[name], " published"
        return f"{name} {size:,.0f} burst / {rate:,.4g} per s{source}"

    return "quotas: " + ", ".join(
        [
            bucket("StartExecution", "start_execution"),
            bucket("StateTransition", "state_transition"),
            bucket("Lambda scaling (per function)", "lambda_scaling"),
        ]
    )


ENV_VARS = {
    "SOF_EMULATOR_HOST": ("host", str),
    "SOF_EMULATOR_PORT": ("port", int),
    "SOF_ACCOUNT_CONCURRENCY": ("account_concurrency", int),
    "SOF_HISTORY_WRITE_MS": ("history_write_ms", float),
    "SOF_HISTORY_EVENT_MS": ("history_event_ms", float),
    "SOF_TASK_DISPATCH_MS": ("task_dispatch_ms", float),
    "SOF_INVOKE_OVERHEAD_MS": ("invoke_overhead_ms", float),
    "SOF_COLD_START_MS": ("cold_start_ms", float),
    "SOF_PLACEMENT_MS": ("placement_ms", float),
    "SOF_EXECUTION_START_MS": ("execution_start_ms", float),
    "SOF_IDLE_EXPIRY_S": ("idle_expiry_s", float),
    "SOF_START_EXECUTION_BUCKET": ("start_execution_bucket", float),
    "SOF_START_EXECUTION_RATE": ("start_execution_rate", float),
    "SOF_STATE_TRANSITION_BUCKET": ("state_transition_bucket", float),
    "SOF_STATE_TRANSITION_RATE": ("state_transition_rate", float),
    "SOF_LAMBDA_SCALING_BUCKET": ("lambda_scaling_bucket", float),
    "SOF_LAMBDA_SCALING_RATE": ("lambda_scaling_rate", float),
    "SOF_LAMBDA_SPAWN": ("lambda_spawn", str),
    "SOF_RETAIN_EXECUTIONS": ("retain_executions", int),
    "SOF_RETAIN_EXECUTION_MB": ("retain_execution_mb", float),
    "SOF_RETAIN_LOG_EVENTS": ("retain_log_events", int),
    "SOF_RETAIN_METRIC_POINTS": ("retain_metric_points", int),
}
TIMING_ENV_VAR = "SOF_TIMING"
LAMBDA_SPAWN_MODES = ("fork", "exec")


def resolve(
    *,
    profile: str | None = None,
    timing: str | None = None,
    port: int | None = None,
    host: str | None = None,
    account_concurrency: int | None = None,
    environ: dict[str, str] | None = None,
) -> EmulatorSettings:
    """Defaults, then the profiles, then SOF_* environment variables, then explicit options."""
    env = os.environ if environ is None else environ
    settings = EmulatorSettings()
    chosen = profile or env.get("SOF_PROFILE") or "default"
    if chosen not in PROFILES:
        raise UserError(f"unknown profile {chosen!r}", f"use one of: {', '.join(PROFILES)}")
    account = PROFILES[chosen]
    settings = replace(
        settings,
        profile=chosen,
        account_concurrency=account.account_concurrency,
        start_execution_bucket=account.start_execution[0],
        start_execution_rate=account.start_execution[1],
        state_transition_bucket=account.state_transition[0],
        state_transition_rate=account.state_transition[1],
        lambda_scaling_bucket=account.lambda_scaling[0],
        lambda_scaling_rate=account.lambda_scaling[1],
    )
    settings = settings.with_timing(timing or env.get(TIMING_ENV_VAR) or DEFAULT_TIMING)
    for name, (field, kind) in ENV_VARS.items():
        if env.get(name):
            try:
                settings = replace(settings, **{field: kind(env[name])})
            except ValueError:
                raise UserError(f"{name}={env[name]!r} is not a valid {kind.__name__}", "unset it or fix it") from None
    if port is not None:
        settings = replace(settings, port=port)
    if host is not None:
        settings = replace(settings, host=host)
    if account_concurrency is not None:
        settings = replace(settings, account_concurrency=account_concurrency)
    if not 1 <= settings.port <= 65535:
        raise UserError(f"port {settings.port} is out of range", "choose a port between 1024 and 65535")
    if settings.account_concurrency < 1:
        raise UserError("account concurrency must be at least 1", "use e.g. --account-concurrency 10")
    negative = [name for name in TIMING_KNOBS if getattr(settings, name) < 0]
    if negative:
        raise UserError(f"timing knobs cannot be negative: {', '.join(negative)}", "set them to 0 or more")
    quotas = [name for name in QUOTA_FIELDS if not getattr(settings, name) >= 0]
    if quotas:
        raise UserError(f"quotas cannot be negative: {', '.join(quotas)}", "set them to 0 (the published) or more")
    if settings.lambda_scaling_bucket < 1 or settings.lambda_scaling_rate <= 0:
        raise UserError("the Lambda scaling rate needs a bucket of at least 1 and a rate above 0", "unset them")
    if settings.lambda_spawn not in LAMBDA_SPAWN_MODES:
        raise UserError(
            f"SOF_LAMBDA_SPAWN={settings.lambda_spawn!r} is not a way to start Lambda environments",
            f"use one of: {', '.join(LAMBDA_SPAWN_MODES)}",
        )
    if min(settings.retain_executions, settings.retain_log_events, settings.retain_metric_points) < 1:
        raise UserError("the SOF_RETAIN_* counts must be at least 1", "unset them for the defaults")
    if settings.retain_execution_mb <= 0:
        raise UserError("SOF_RETAIN_EXECUTION_MB must be above 0", "unset it for the default (256)")
    return settings
