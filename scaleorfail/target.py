"""Targets (AWS or the local emulator), their boto3 clients and their stack outputs.

Everything after deploy talks to AWS APIs through these clients; the only difference
between the targets is the endpoint and the credentials.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from scaleorfail import paths
from scaleorfail.errors import UserError

OUTPUTS_SCHEMA = 1


@dataclass(frozen=True)
class Target:
    name: str
    region: str
    endpoint_url: str | None = None
    access_key: str = "test"  # the emulator's access token when it requires one (sof local up --allow-remote)
    instance: str | None = None  # the emulator instance answering at endpoint_url (a restart changes it)

    def client(self, service: str, *, max_attempts: int = 3, read_timeout: float = 70.0) -> Any:
        """A boto3 client making at most `max_attempts` attempts per call; 1 means no hidden SDK retries.

        (botocore's own ``max_attempts`` counts retries, not attempts: ``total_max_attempts`` is the total.)"""
        config = Config(
            region_name=self.region,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            read_timeout=read_timeout,
            connect_timeout=5,
            max_pool_connections=64,
        )
        if self.endpoint_url:
            return boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key,
                aws_secret_access_key="test",
                config=config,
            )
        return boto3.client(service, config=config)


def local_target(region: str | None = None) -> Target:
    from scaleorfail.emulator.control import health, running

    current = running(paths.state_dir())
    if current is None:
        raise UserError(
            "the local emulator is not running",
            "start it with `make local-up` (`make deploy` starts it too)",
        )
    url = current.local_url
    info = health(url, token=current.token)
    if info is None:
        raise UserError(
            f"the local emulator (pid {current.pid}) does not answer at {url}",
            "restart it: `make local-down local-up`, then `make deploy`",
        )
    return Target(
        "local",
        region or str(current.record.get("region", "us-east-1")),
        url,
        access_key=current.token or "test",
        instance=str(info.get("instance") or current.instance or "") or None,
    )


def aws_target(region: str | None = None) -> Target:
    chosen = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not chosen:
        stored = read_outputs_file("aws")
        chosen = str(stored["outputs"].get("region")) if stored else "us-east-1"
    return Target("aws", chosen)


def resolve(name: str, region: str | None = None) -> Target:
    if name == "local":
        return local_target(region)
    if name == "aws":
        return aws_target(region)
    raise UserError(f"unknown target {name!r}", "use --target local or --target aws")


def outputs_path(target_name: str) -> Path:
    return paths.state_dir() / f"stack-outputs-{target_name}.json"


def read_outputs_file(target_name: str) -> dict[str, Any] | None:
    path = outputs_path(target_name)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path} is not valid JSON", f"re-run `make deploy TARGET={target_name}`") from None
    if not isinstance(data, dict) or "outputs" not in data:
        raise UserError(f"{path} is not a stack-outputs file", f"re-run `make deploy TARGET={target_name}`")
    return data


def _refresh_from_terraform() -> None:
    """AWS applied with plain `terraform apply`: store `terraform output -json` when the state is newer.

    The variables of such an apply are not known (Terraform's state does not keep them).
    """
    state = paths.terraform_dir() / "terraform.tfstate"
    stored = outputs_path("aws")
    if not state.is_file() or (stored.is_file() and stored.stat().st_mtime >= state.stat().st_mtime):
        return
    from scaleorfail.terraform_cli import output_values

    values = output_values()
    if "state_machine_arn" in values:
        write_outputs(aws_target(), values)


def load_outputs(target_name: str, target: Target | None = None) -> dict[str, Any]:
    """The stack outputs of a deployed target, or a 'deploy first' error.

    Given the running emulator's target, outputs written for another emulator instance
    are refused: a restart took the deployed pipeline with it.
    """
    if target_name == "aws":
        _refresh_from_terraform()
    data = read_outputs_file(target_name)
    if data is None:
        raise UserError(
            f"no stack outputs for target {target_name} ({outputs_path(target_name)})",
            f"deploy first: make deploy TARGET={target_name}",
        )
    deployed_on = data.get("emulator_instance")
    if target is not None and target.name == "local" and deployed_on and target.instance not in (None, deployed_on):
        raise UserError(
            f"the emulator was restarted since the pipeline was deployed (deployed on instance {deployed_on} at "
            f"{data.get('written_at', '?')}, now instance {target.instance}): the state machine and functions are gone",
            "deploy again: `make deploy`",
        )
    return dict(data["outputs"])


def write_outputs(target: Target, outputs: dict[str, Any], variables: dict[str, Any] | None = None) -> Path:
    """Store a deploy's stack outputs; `variables`: the input variables it applied (None: not known)."""
    path = outputs_path(target.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "schema": OUTPUTS_SCHEMA,
        "target": target.name,
        "endpoint_url": target.endpoint_url,
        "emulator_instance": target.instance,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "outputs": outputs,
        "variables": variables,
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)
    return path


def deployed_variables(target_name: str) -> dict[str, Any] | None:
    """The input variables of the current deployment (None: not known, e.g. applied outside `sof deploy`)."""
    data = read_outputs_file(target_name)
    variables = (data or {}).get("variables")
    return dict(variables) if isinstance(variables, dict) else None


def account_limits(target: Target) -> tuple[int | None, int | None]:
    """The account's Lambda concurrency limit and what of it is unreserved (None: unreadable)."""
    try:
        limits = target.client("lambda", max_attempts=1).get_account_settings()["AccountLimit"]
        return int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"])
    except Exception:
        return account_concurrency(target), None


def account_concurrency(target: Target) -> int | None:
    """The target's Lambda account concurrency limit (None when it cannot be read)."""
    try:
        settings = target.client("lambda", max_attempts=1).get_account_settings()
        return int(settings["AccountLimit"]["ConcurrentExecutions"])
    except Exception:
        if target.name == "local":
            from scaleorfail.emulator.control import running

            current = running(paths.state_dir())
            return int(current.record["account_concurrency"]) if current else None
        return None


REAL_AWS_TIMING = "real AWS"


def timing(target: Target) -> dict[str, Any]:
    """Which service timing a run on this target sees: the emulator's timing profile and knobs, or real AWS."""
    if target.name != "local" or not target.endpoint_url:
        return {"profile": REAL_AWS_TIMING}
    from scaleorfail.emulator.control import health
    from scaleorfail.emulator.settings import TIMING_KNOBS

    info = health(target.endpoint_url) or {}
    settings = info.get("settings") or {}
    return {"profile": str(info.get("timing") or settings.get("timing") or "unknown")} | {
        knob: settings[knob] for knob in TIMING_KNOBS if knob in settings
    }


def emulator_cpu(target: Target, start: float, end: float) -> dict[str, Any] | None:
    """The emulator's CPU over a run's window (epoch seconds), for record/cpu.py's verdict; None on AWS."""
    if target.name != "local" or not target.endpoint_url:
        return None
    from scaleorfail.emulator.control import cpu_window

    token = target.access_key if target.access_key != "test" else None
    return cpu_window(target.endpoint_url, start, end, token=token)
