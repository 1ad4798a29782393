"""Emulator settings: defaults, the sandbox profile, the timing profiles, environment variables.

Two independent choices:

* the **account profile** (``default``: Lambda account concurrency 1000; ``sandbox``: 10, as in
  the workshop's short-lived accounts);
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

PROFILES = {"default": 1000, "sandbox": 10}
DEFAULT_PORT = 4566
ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class Timing:
    """The modelled service latencies (milliseconds), all spent sleeping - never CPU."""

    history_write_ms: float  # base cost of one serialised write of an execution's history
    history_event_ms: float  # added per event the write carries (events arriving meanwhile join it)
    task_dispatch_ms: float  # Step Functions -> Lambda dispatch, between TaskScheduled and TaskStarted
    invoke_overhead_ms: float  # Lambda's per-request round trip, not part of REPORT Duration
    cold_start_ms: float  # modelled init added to the real process start + import (REPORT Init Duration)
    placement_ms: float  # cold start time Lambda does not report: placement, code download, microVM start


TIMING_PROFILES: dict[str, Timing] = {
    # Fitted to the workshop's published AWS run (500 tickets: 126 s at 2, 41 s at 10); see docs/emulator.md.
    "aws": Timing(
        history_write_ms=4.0,
        history_event_ms=3.5,
        task_dispatch_ms=15.0,
        invoke_overhead_ms=15.0,
        cold_start_ms=80.0,
        placement_ms=250.0,
    ),
    # No modelled latency: what the emulator itself costs (the overhead benchmark's reference).
    "ideal": Timing(
        history_write_ms=0.0,
        history_event_ms=0.0,
        task_dispatch_ms=0.0,
        invoke_overhead_ms=0.0,
        cold_start_ms=0.0,  # a cold start is then only the real process start + import
        placement_ms=0.0,
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
    account_concurrency: int = PROFILES["default"]
    timing: str = DEFAULT_TIMING
    history_write_ms: float = TIMING_PROFILES[DEFAULT_TIMING].history_write_ms
    history_event_ms: float = TIMING_PROFILES[DEFAULT_TIMING].history_event_ms
    task_dispatch_ms: float = TIMING_PROFILES[DEFAULT_TIMING].task_dispatch_ms
    invoke_overhead_ms: float = TIMING_PROFILES[DEFAULT_TIMING].invoke_overhead_ms
    cold_start_ms: float = TIMING_PROFILES[DEFAULT_TIMING].cold_start_ms
    placement_ms: float = TIMING_PROFILES[DEFAULT_TIMING].placement_ms
    idle_expiry_s: float = 300.0  # a warm environment idle this long is shut down
    max_environments: int = 400  # hard cap on worker processes, whatever the limits say
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
    "SOF_IDLE_EXPIRY_S": ("idle_expiry_s", float),
    "SOF_RETAIN_EXECUTIONS": ("retain_executions", int),
    "SOF_RETAIN_EXECUTION_MB": ("retain_execution_mb", float),
    "SOF_RETAIN_LOG_EVENTS": ("retain_log_events", int),
    "SOF_RETAIN_METRIC_POINTS": ("retain_metric_points", int),
}
TIMING_ENV_VAR = "SOF_TIMING"


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
    settings = replace(settings, profile=chosen, account_concurrency=PROFILES[chosen])
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
    if min(settings.retain_executions, settings.retain_log_events, settings.retain_metric_points) < 1:
        raise UserError("the SOF_RETAIN_* counts must be at least 1", "unset them for the defaults")
    if settings.retain_execution_mb <= 0:
        raise UserError("SOF_RETAIN_EXECUTION_MB must be above 0", "unset it for the default (256)")
    return settings
