"""Starting the emulator for tests: real server processes on free loopback ports."""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from waiting import QUIET_S, history_length, wait_for

from scaleorfail.emulator import control
from scaleorfail.emulator.settings import EmulatorSettings, resolve
from scaleorfail.target import Target

FAST = {"simulated_infer_ms": 20, "infer_jitter_sigma_ms": 0}
# Embed calls long enough to overlap however busy the machine is: 20 ms ones, dispatched by a starved
# orchestrator, can run one after the other (the Map's slots or an endpoint's never all taken at once).
OVERLAP_MS = 500
OVERLAP = {"simulated_infer_ms": OVERLAP_MS}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Emulator:
    settings: EmulatorSettings
    state_dir: Path
    url: str

    @property
    def target(self) -> Target:
        """The target as `sof` builds it: the access token and the instance id of the running emulator."""
        current = control.read_state(self.state_dir)
        token = current.token if current else None
        return Target(
            "local", self.settings.region, self.url, access_key=token or "test", instance=current and current.instance
        )

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.target.client(service, **kwargs)

    @property
    def pids(self) -> list[int]:
        """The server's process (its Lambda environments are its children): what works while a request waits."""
        current = control.read_state(self.state_dir)
        return [current.pid] if current else []


@contextmanager
def running_emulator(state_dir: Path, **overrides: Any) -> Any:
    """An emulator process for the duration of the block; SOF_STATE_DIR points at it.

    Tests run the `ideal` timing profile (no modelled latency, no modelled cold start) unless
    they ask for `timing="aws"`, where the calibrated latencies are the point."""
    timing = overrides.pop("timing", "ideal")
    settings = replace(resolve(profile=overrides.pop("profile", "default"), timing=timing), port=free_port())
    settings = replace(settings, **overrides)
    previous = os.environ.get("SOF_STATE_DIR")
    os.environ["SOF_STATE_DIR"] = str(state_dir)
    current = control.up(settings, state_dir, state_dir / "emulator.log")
    try:
        yield Emulator(settings, state_dir, current.url)
    finally:
        control.down(state_dir)
        if previous is None:
            os.environ.pop("SOF_STATE_DIR", None)
        else:
            os.environ["SOF_STATE_DIR"] = previous


@contextmanager
def lab(root: Path) -> Any:
    """An emulator whose runs go under root/runs (SOF_RUNS_DIR), for a test module's fixture."""
    os.environ["SOF_RUNS_DIR"] = str(root / "runs")
    try:
        with running_emulator(root / "state") as emulator:
            yield emulator
    finally:
        os.environ.pop("SOF_RUNS_DIR", None)


def deploy(emulator: Emulator, **variables: Any) -> dict[str, Any]:
    from scaleorfail.deploy import local

    result = local.deploy(emulator.target, overrides={**FAST, **variables})
    return result.outputs


def run(
    emulator: Emulator, outputs: dict[str, Any], payload: dict[str, Any], timeout: float = QUIET_S, poll_s: float = 0.1
) -> dict[str, Any]:
    """Start an execution and wait for its end; returns DescribeExecution plus the history.

    Polled every poll_s; it fails when the history has not grown for `timeout` seconds
    (a deadline that follows the execution's progress, not the machine's load)."""
    sfn = emulator.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=outputs["state_machine_arn"], input=json.dumps(payload))["executionArn"]
    return dict(finished(sfn, arn, quiet_s=timeout, poll_s=poll_s), events=history(sfn, arn))


def finished(sfn: Any, arn: str, quiet_s: float = QUIET_S, poll_s: float = 0.1) -> dict[str, Any]:
    """DescribeExecution once the execution has ended (and its parsed output as `result`).

    It fails when the execution stays RUNNING while its history does not grow for quiet_s."""

    def ended() -> dict[str, Any] | None:
        description = dict(sfn.describe_execution(executionArn=arn))
        return None if description["status"] == "RUNNING" else description

    description: dict[str, Any] = wait_for(
        ended, f"the end of {arn}", observe=lambda: history_length(sfn, arn), quiet_s=quiet_s, interval=poll_s
    )
    if description.get("output"):
        description["result"] = json.loads(description["output"])
    return description


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = sfn.get_execution_history(executionArn=arn, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def tickets(count: int, prefix: str = "T") -> list[dict[str, str]]:
    texts = [
        "I was charged twice for my subscription, please refund the duplicate payment",
        "My parcel never arrived and the tracking page has not updated in a week",
        "The app crashes with an error 500 every time I try to log in",
        "Please cancel my membership and close the account at the end of the month",
    ]
    return [{"ticket_id": f"{prefix}-{i:04d}", "text": texts[i % len(texts)]} for i in range(count)]


def metric(
    emulator: Emulator,
    namespace: str,
    name: str,
    stat: str,
    dimensions: dict[str, str],
    minutes: int = 30,
    since: datetime | None = None,
) -> float | None:
    """The statistic over the last `minutes` (or since a moment, e.g. an execution's start)."""
    now = datetime.now(UTC)
    start = since.replace(microsecond=0) if since else now - timedelta(minutes=minutes - 1)
    # CloudWatch rounds StartTime down to the minute for periods of a minute or more; to count only
    # what happened since a moment, read 1-second periods (the emulator keeps each datapoint's time).
    period = 1 if since else minutes * 60
    result = emulator.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    },
                    "Period": period,
                    "Stat": stat,
                },
            }
        ],
        StartTime=start,
        EndTime=now + timedelta(minutes=1),
    )
    values = result["MetricDataResults"][0]["Values"]
    if not values:
        return None
    if stat in ("Maximum",):
        return float(max(values))
    return float(sum(values))


def insights(emulator: Emulator, groups: list[str], query: str) -> list[dict[str, str]]:
    logs = emulator.client("logs")
    now = int(time.time())
    query_id = logs.start_query(logGroupNames=groups, startTime=now - 3600, endTime=now + 60, queryString=query)[
        "queryId"
    ]

    def complete() -> dict[str, Any] | None:
        result = logs.get_query_results(queryId=query_id)
        return dict(result) if result["status"] not in ("Scheduled", "Running") else None

    result = wait_for(complete, f"the end of query {query_id}")  # the emulator's queries end at once
    assert result["status"] == "Complete", result
    return [{field["field"]: field["value"] for field in row} for row in result["results"]]


def task_failures(events: list[dict[str, Any]]) -> list[str]:
    return [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]


# An inline Map of Pass states (40 at once): history events and state transitions with no Lambda in them.
PASS_MAP = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Map",
            "MaxConcurrency": 40,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "P",
                "States": {"P": {"Type": "Pass", "End": True}},
            },
            "End": True,
        }
    },
}
