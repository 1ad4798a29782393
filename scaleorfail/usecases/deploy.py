"""Deploy the stack to a target (the emulator, or AWS with Terraform) with a set of variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scaleorfail import target as targets


def deploy(target: targets.Target, variables: dict[str, Any], auto_approve: bool, tfvars: Path | None = None) -> None:
    if target.name == "local":
        from scaleorfail.deploy import local

        local.deploy(target, tfvars, variables)
    else:
        from scaleorfail.deploy import aws

        aws.deploy(target, tfvars, variables, auto_approve)
