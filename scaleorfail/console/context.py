"""One running console: its target's Api, its execution cursors, its port and refresh settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scaleorfail.console.aws import Api
from scaleorfail.console.executions import Executions
from scaleorfail.console.labruns import LivePace

LIVE_REFRESH_MS = 2000  # a live page's polling interval: the quality bar is "at least every 2 s"


@dataclass
class Console:
    api: Api
    port: int
    host: str = "127.0.0.1"
    executions: Executions = field(init=False)
    paces: LivePace = field(default_factory=LivePace)
    dashboard_refresh_s: int = 2

    def __post_init__(self) -> None:
        self.executions = Executions(self.api)
        if self.api.target.name != "local":
            self.dashboard_refresh_s = 60  # GetMetricData is billed per metric read on AWS

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("127.0.0.1", "0.0.0.0") else self.host
        return f"http://{shown}:{self.port}"

    def info(self) -> dict[str, Any]:
        target = self.api.target
        return {
            "target": target.name,
            "region": target.region,
            "endpoint": target.endpoint_url,
            "read_only": self.api.read_only,
            "refresh_ms": LIVE_REFRESH_MS,
            "dashboard_refresh_s": self.dashboard_refresh_s,
            "quotas": {api: {"burst": q[0], "per_s": q[1]} for api, q in self.api.limiter.quotas.items()},
            "calls": dict(self.api.calls),
            "skipped": dict(self.api.skipped),
        }
