"""`sof deploy --target aws`: terraform apply, then store `terraform output -json`.

Before anything runs: AWS credentials must be found (offline check, no API call) and
Terraform >= 1.6 installed. Terraform's own output goes to the terminal as it runs;
when a Terraform command fails, its error text is repeated in one line with the fix.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.packaging import build_model_bundle
from scaleorfail.target import Target, terraform_output_values, write_outputs

MIN_TERRAFORM = (1, 6)
ERROR_TAIL_LINES = 200
_BOX = re.compile(r"^[\s│╷╵]+")


def check_credentials() -> None:
    """AWS credentials are configured somewhere boto3 looks (no network call is made)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        credentials = boto3.Session().get_credentials()
    except BotoCoreError as error:  # e.g. AWS_PROFILE names a profile that does not exist
        raise UserError(f"the AWS configuration is not usable: {error}", "fix AWS_PROFILE or ~/.aws/config") from None
    if credentials is None:
        raise UserError(
            "no AWS credentials found (environment, ~/.aws/credentials, SSO or an instance role)",
            "configure them (aws configure, or export AWS_PROFILE=...), or use --target local",
        )


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        raise UserError(
            "terraform is not installed (the AWS target is applied with Terraform >= 1.6)",
            "install it from https://developer.hashicorp.com/terraform/install, or use --target local",
        )
    return binary


def check_terraform() -> str:
    """The terraform binary, if it is Terraform >= 1.6."""
    binary = terraform_binary()
    done = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, check=False, timeout=60)
    try:
        version = str(json.loads(done.stdout)["terraform_version"])
        numbers = tuple(int(part) for part in version.split("-", maxsplit=1)[0].split(".")[:2])
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"{binary} does not report a Terraform version ({(done.stderr or done.stdout).strip()[:200]})",
            "install Terraform >= 1.6 from https://developer.hashicorp.com/terraform/install",
        ) from None
    if numbers < MIN_TERRAFORM:
        raise UserError(
            f"Terraform {version} is too old (this module needs >= 1.6)",
            "upgrade it: https://developer.hashicorp.com/terraform/install",
        )
    return binary


def error_summary(lines: list[str]) -> str:
    """Terraform's error text in one line: its first `Error:` and the line of detail after it."""
    clean = [_BOX.sub("", line).strip() for line in lines]
    clean = [line for line in clean if line]
    for index, line in enumerate(clean):
        if line.startswith("Error:"):
            detail = next((other for other in clean[index + 1 : index + 4] if not other.startswith("on ")), "")
            return f"{line} {detail}".strip()[:400]
    return (clean[-1] if clean else "no error text")[:400]


def run_terraform(arguments: list[str], verb: str, fix: str) -> None:
    """Run terraform with its output on this terminal; a failure becomes one UserError line."""
    command = [terraform_binary(), f"-chdir={paths.terraform_dir()}", *arguments]
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    try:
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace")
    except OSError as error:
        raise UserError(
            f"cannot run terraform: {error.strerror or error}", "check the terraform installation"
        ) from None
    assert process.stderr is not None

    def relay() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            tail.append(line.rstrip("\n"))

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    code = process.wait()
    reader.join(timeout=5)
    if code != 0:
        raise UserError(f"terraform {verb} failed (exit {code}): {error_summary(list(tail))}", fix)


def var_arguments(tfvars: Path | None, overrides: dict[str, Any]) -> list[str]:
    args = [f"-var-file={tfvars.resolve()}"] if tfvars else []
    for key, value in overrides.items():
        rendered = value if isinstance(value, str) else json.dumps(value)
        args.append(f"-var={key}={rendered}")
    return args


def _terraform(verb: str, tfvars: Path | None, overrides: dict[str, Any], auto_approve: bool) -> None:
    """`terraform apply|destroy` of the root module with the variables given."""
    arguments = [verb, "-input=false", *var_arguments(tfvars, overrides)]
    if auto_approve:
        arguments.append("-auto-approve")
    run_terraform(arguments, verb, "read Terraform's error above; fix it (credentials, region, quotas ...) and re-run")


def deploy(target: Target, tfvars: Path | None, overrides: dict[str, Any], auto_approve: bool) -> Path:
    check_credentials()
    check_terraform()
    # embed_backend = "sagemaker" uploads build/model.tar.gz, which Terraform cannot build itself
    build_model_bundle(paths.lambda_src_dir(), paths.build_dir() / "model.tar.gz")
    run_terraform(
        ["init", "-input=false"], "init", "read Terraform's error above (provider downloads need the network)"
    )
    _terraform("apply", tfvars, overrides, auto_approve)
    return store_outputs(target)


def store_outputs(target: Target) -> Path:
    terraform = terraform_binary()
    done = subprocess.run(
        [terraform, f"-chdir={paths.terraform_dir()}", "output", "-json"], check=False, capture_output=True, text=True
    )
    try:
        values = terraform_output_values(json.loads(done.stdout or "{}")) if done.returncode == 0 else {}
    except (ValueError, AttributeError):
        values = {}
    if "state_machine_arn" not in values:
        raise UserError(
            "terraform has no outputs for this stack (not applied yet, or another state)",
            "apply it: make deploy TARGET=aws (or terraform -chdir=terraform apply)",
        )
    return write_outputs(target, values)


def destroy(tfvars: Path | None, overrides: dict[str, Any], auto_approve: bool) -> None:
    check_credentials()
    check_terraform()
    if not (paths.terraform_dir() / ".terraform").is_dir():
        raise UserError(
            f"{paths.terraform_dir()} is not initialised (no .terraform folder): Terraform cannot read what it applied",
            "run `terraform -chdir=terraform init`, then `sof destroy --target aws` again",
        )
    _terraform("destroy", tfvars, overrides, auto_approve)
