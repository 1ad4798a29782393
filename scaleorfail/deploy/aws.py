"""`sof deploy --target aws`: terraform apply, then store `terraform output -json`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.packaging import build_model_bundle
from scaleorfail.target import Target, terraform_output_values, write_outputs


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        raise UserError(
            "terraform is not installed (the AWS target is applied with Terraform >= 1.6)",
            "install it from https://developer.hashicorp.com/terraform/install, or use --target local",
        )
    return binary


def var_arguments(tfvars: Path | None, overrides: dict[str, Any]) -> list[str]:
    args = [f"-var-file={tfvars.resolve()}"] if tfvars else []
    for key, value in overrides.items():
        rendered = value if isinstance(value, str) else json.dumps(value)
        args.append(f"-var={key}={rendered}")
    return args


def _terraform(verb: str, tfvars: Path | None, overrides: dict[str, Any], auto_approve: bool) -> None:
    """`terraform apply|destroy` of the root module with the variables given."""
    command = [terraform_binary(), f"-chdir={paths.terraform_dir()}", verb, "-input=false"]
    command += var_arguments(tfvars, overrides)
    if auto_approve:
        command.append("-auto-approve")
    subprocess.run(command, check=True)


def deploy(target: Target, tfvars: Path | None, overrides: dict[str, Any], auto_approve: bool) -> Path:
    terraform = terraform_binary()
    # embed_backend = "sagemaker" uploads build/model.tar.gz, which Terraform cannot build itself
    build_model_bundle(paths.lambda_src_dir(), paths.build_dir() / "model.tar.gz")
    subprocess.run([terraform, f"-chdir={paths.terraform_dir()}", "init", "-input=false"], check=True)
    _terraform("apply", tfvars, overrides, auto_approve)
    return store_outputs(target)


def store_outputs(target: Target) -> Path:
    terraform = terraform_binary()
    done = subprocess.run(
        [terraform, f"-chdir={paths.terraform_dir()}", "output", "-json"], check=False, capture_output=True, text=True
    )
    values = terraform_output_values(json.loads(done.stdout or "{}")) if done.returncode == 0 else {}
    if "state_machine_arn" not in values:
        raise UserError(
            "terraform has no outputs for this stack (not applied yet, or another state)",
            "apply it: make deploy TARGET=aws (or terraform -chdir=terraform apply)",
        )
    return write_outputs(target, values)


def destroy(tfvars: Path | None, overrides: dict[str, Any], auto_approve: bool) -> None:
    _terraform("destroy", tfvars, overrides, auto_approve)
