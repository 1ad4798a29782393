"""Emulator settings: defaults, the sandbox profile, environment variables."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from scaleorfail.errors import UserError

PROFILES = {"default": 1000, "sandbox": 10}
DEFAULT_PORT = 4566
ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class EmulatorSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    region: str = "us-east-1"
    profile: str = "default"
    account_concurrency: int = PROFILES["default"]
    cold_start_ms: float = 200.0  # modelled init time added to the real process start + import
    idle_expiry_s: float = 300.0  # a warm environment idle this long is shut down
    invoke_overhead_ms: float = 0.0  # modelled per-invoke service overhead
    max_environments: int = 400  # hard cap on worker processes, whatever the limits say
    # Retention (docs/emulator.md "Memory and retention"): what finished work the emulator keeps.
    retain_executions: int = 5000  # finished executions kept (oldest evicted first)
    retain_execution_mb: float = 256.0  # their packed histories + inputs + outputs, at most this many MB
    retain_log_events: int = 250_000  # CloudWatch Logs events kept, all groups together (oldest dropped)
    retain_metric_points: int = 250_000  # CloudWatch metric data points kept (oldest dropped)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


ENV_VARS = {
    "SOF_EMULATOR_HOST": ("host", str),
    "SOF_EMULATOR_PORT": ("port", int),
    "SOF_ACCOUNT_CONCURRENCY": ("account_concurrency", int),
    "SOF_COLD_START_MS": ("cold_start_ms", float),
    "SOF_IDLE_EXPIRY_S": ("idle_expiry_s", float),
    "SOF_INVOKE_OVERHEAD_MS": ("invoke_overhead_ms", float),
    "SOF_RETAIN_EXECUTIONS": ("retain_executions", int),
    "SOF_RETAIN_EXECUTION_MB": ("retain_execution_mb", float),
    "SOF_RETAIN_LOG_EVENTS": ("retain_log_events", int),
    "SOF_RETAIN_METRIC_POINTS": ("retain_metric_points", int),
}


def resolve(
    *,
    profile: str | None = None,
    port: int | None = None,
    host: str | None = None,
    account_concurrency: int | None = None,
    environ: dict[str, str] | None = None,
) -> EmulatorSettings:
    """Defaults, then the profile, then SOF_* environment variables, then explicit options."""
    env = os.environ if environ is None else environ
    settings = EmulatorSettings()
    chosen = profile or env.get("SOF_PROFILE") or "default"
    if chosen not in PROFILES:
        raise UserError(f"unknown profile {chosen!r}", f"use one of: {', '.join(PROFILES)}")
    settings = replace(settings, profile=chosen, account_concurrency=PROFILES[chosen])
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
    if min(settings.retain_executions, settings.retain_log_events, settings.retain_metric_points) < 1:
        raise UserError("the SOF_RETAIN_* counts must be at least 1", "unset them for the defaults")
    if settings.retain_execution_mb <= 0:
        raise UserError("SOF_RETAIN_EXECUTION_MB must be above 0", "unset it for the default (256)")
    return settings
