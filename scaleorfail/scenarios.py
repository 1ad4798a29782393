"""Fault scenarios: each reproduces one incident with the project's own knobs.

A scenario sets Terraform variables (documented below, the same on both targets),
runs a small load, harvests it and restores the variables that were deployed before it
(scaleorfail.usecases.scenario). Only `throttled` needs an
account limit: on the emulator the account concurrency is set to 10 for the run (the
sandbox account) and put back; on AWS a sandbox account (limit 10) throttles by itself,
and on a larger account Embed's reserved concurrency plays that role - where AWS allows
it (at least min(100, account limit) must stay unreserved; see aws_throttle_variables).
`endpoint` (Activity 9) deploys Embed as a SageMaker serverless endpoint
(embed_backend = "sagemaker", MaxConcurrency 2) - on AWS that creates an endpoint, a
model and a bucket for the duration of the scenario.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.executions import named_bad_inputs
from scaleorfail.load.batches import read_tickets


@dataclass(frozen=True)
class RunSpec:
    label: str
    tickets: int
    max_concurrency: int
    variables: dict[str, Any] = field(default_factory=dict)
    batch: str = "dataset"  # dataset | oversized | mixed


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    expected: tuple[str, ...]  # the classification of each run (the last one for the runs after it)
    runs: tuple[RunSpec, ...]
    account_concurrency: int | None = None


# Where and how the stack is deployed: kept from the current deployment while a scenario runs (every
# other variable is the scenario's: the module's default, or what the scenario sets).
PLACEMENT_VARIABLES = (
    "name_prefix",
    "region",
    "tags",
    "emulator_endpoint",
    "lambda_runtime",
    "log_retention_days",
    "alarm_email",
    "enable_xray",
    "sagemaker_image_uri",
    "state_machine_log_level",
    "state_machine_include_execution_data",
    "embed_p95_alarm_threshold_ms",
)
NO_RETRY = {"lambda_retry": {"max_attempts": 0}}
SAGEMAKER = {"embed_backend": "sagemaker", "sagemaker_max_concurrency": 2}
QUEUEING = "THROTTLED (queueing at the Map's max_concurrency (throughput-bound))"
SHORT_RETRY = {"lambda_retry": {"max_attempts": 2, "interval_seconds": 1, "backoff_rate": 2, "jitter_strategy": "NONE"}}


def catalogue(scale: float = 1.0) -> dict[str, Scenario]:
    def n(value: int) -> int:
        return max(1, round(value * scale))

    return {
        "queueing": Scenario(
            "queueing",
            "max_concurrency 2 under a burst: throughput-bound, no 429s",
            (QUEUEING,),
            (RunSpec("queueing-c2", n(200), 2),),
        ),
        "throttled": Scenario(
            "throttled",
            "account concurrency 10, Map concurrency 20: 429s, without and with retry; the fix: Map 10 queues",
            ("THROTTLED (hard limit (429))", "THROTTLED (hard limit (429))", QUEUEING),
            (  # more tickets than the limit of 10, whatever the scale
                RunSpec("throttled-c20", max(30, n(40)), 20, NO_RETRY),
                RunSpec("throttled-retry-c20", max(30, n(40)), 20),
                RunSpec("throttled-fix-c10", max(30, n(40)), 10, NO_RETRY),  # the knob matched to the limit
            ),
            account_concurrency=10,
        ),
        "exhausted": Scenario(
            "exhausted",
            "the model needs more memory than Embed has: out-of-memory failures",
            ("EXHAUSTED (out of memory)",),
            (RunSpec("exhausted-mem128", n(10), 2, {"model_memory_mb": 200, "embed_memory_mb": 128, **NO_RETRY}),),
        ),
        "timeout": Scenario(
            "timeout",
            "a slow feature service: DependencyTimeout, retries, growing duration",
            ("TIMED OUT (dependency)",),
            (
                RunSpec(
                    "timeout-dep", n(4), 2, {"dependency_latency_ms": 600, "dependency_timeout_ms": 200, **SHORT_RETRY}
                ),
            ),
        ),
        "bad-input": Scenario(
            "bad-input",
            "an oversized ticket fails the execution; a mixed batch under quarantine succeeds",
            ("BAD INPUT (failed the execution)", "BAD INPUT (quarantined)"),
            (
                RunSpec("bad-input-oversized", 1, 2, batch="oversized"),
                RunSpec("bad-input-quarantine", n(10), 5, {"bad_input_policy": "quarantine"}, batch="mixed"),
            ),
        ),
        "endpoint": Scenario(
            "endpoint",
            "Embed on a SageMaker serverless endpoint (MaxConcurrency 2): Map concurrency 2 queues, 4 is rejected",
            (
                QUEUEING,
                "THROTTLED (dependency limit: the Embed endpoint's MaxConcurrency (rejected, not queued))",
            ),
            (
                RunSpec("endpoint-c2", max(12, n(60)), 2, SAGEMAKER),
                RunSpec("endpoint-c4", max(12, n(60)), 4, SAGEMAKER),
            ),
        ),
    }


MIN_UNRESERVED = 100  # AWS keeps min(100, account limit) of the account concurrency unreserved


def aws_throttle_variables(wanted: int, account_limit: int | None, unreserved: int | None) -> dict[str, Any]:
    """The variables that reproduce an account limit of `wanted` concurrent Lambdas on real AWS.

    A sandbox account already limited to `wanted` or less throttles by itself: nothing to set.
    Otherwise Embed's reserved concurrency plays the limit - which AWS only accepts while at
    least min(100, account limit) stays unreserved (InvalidParameterValueException otherwise).
    """
    if account_limit is None:
        raise UserError(
            "cannot read this account's Lambda concurrency (GetAccountSettings)",
            "check the credentials can call lambda:GetAccountSettings, then run the scenario again",
        )
    if account_limit <= wanted:
        return {}
    minimum = min(MIN_UNRESERVED, account_limit)
    free = account_limit if unreserved is None else unreserved
    if free - wanted < minimum:
        raise UserError(
            f"this account cannot reserve {wanted} for Embed: its Lambda concurrency is {account_limit} with "
            f"{free} unreserved, and AWS keeps at least {minimum} unreserved",
            "release other reservations or raise the quota (Service Quotas: Lambda concurrent executions), "
            "or run the scenario on the emulator: --target local",
        )
    return {"embed_reserved_concurrency": wanted}


def ticket_file(kind: str, count: int) -> tuple[Path | None, int]:
    """A JSON-lines ticket file for the run (None: the dataset itself) and the batch size to use.

    The file is written under .sof/scenario-tickets/; the caller deletes it once the run is over.
    """
    if kind == "dataset":
        return None, count
    if kind == "oversized":
        rows = named_bad_inputs("oversized_text_5100")
    elif kind == "mixed":
        bad = named_bad_inputs("oversized_text_5100", "numeric_text")
        rows = read_tickets(paths.tickets_file(), limit=max(1, count - len(bad))) + bad
    else:
        raise UserError(f"unknown batch kind {kind!r}", "use dataset, oversized or mixed")
    folder = paths.state_dir() / "scenario-tickets"  # under .sof/, removed by the caller after the run
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        "w", suffix=".jsonl", prefix=f"{kind}-", dir=folder, delete=False, encoding="utf-8"
    )
    with handle:
        for row in rows:
            handle.write(json.dumps({k: v for k, v in row.items() if k in ("ticket_id", "text")}) + "\n")
    return Path(handle.name), len(rows)
