"""`sof deploy --target aws`: terraform apply, then store `terraform output -json`.

Before anything runs: AWS credentials must be found (offline check, no API call) and
Terraform >= 1.6 installed. Terraform's own output goes to the terminal as it runs;
when a Terraform command fails, its error text is repeated in one line with the fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.packaging import build_model_bundle
from scaleorfail.target import Target, write_outputs
from scaleorfail.terminal import hint
from scaleorfail.terraform_cli import check_terraform, output_values, run_terraform

__all__ = ["check_credentials", "check_terraform", "deploy", "destroy", "run_terraform", "store_outputs"]


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
    return store_outputs(target, deployed_variables(tfvars, overrides))


def deployed_variables(tfvars: Path | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The variables an apply was given (a tfvars file's values, then -var overrides): what `sof scenario`
    restores afterwards."""
    from scaleorfail.tf.instance import load_tfvars

    values: dict[str, Any] = dict(load_tfvars(str(tfvars))) if tfvars else {}
    values.update(overrides)
    return values


def store_outputs(target: Target, variables: dict[str, Any] | None = None) -> Path:
    """Store `terraform output -json` as the stack outputs (with the variables applied, when known)."""
    values = output_values()
    if "state_machine_arn" not in values:
        raise UserError(
            "terraform has no outputs for this stack (not applied yet, or another state)",
            "apply it: make deploy TARGET=aws (or terraform -chdir=terraform apply)",
        )
    return write_outputs(target, values, variables)


def destroy(tfvars: Path | None, overrides: dict[str, Any], auto_approve: bool) -> None:
    check_credentials()
    check_terraform()
    if not (paths.terraform_dir() / ".terraform").is_dir():
        raise UserError(
            f"{paths.terraform_dir()} is not initialised (no .terraform folder): Terraform cannot read what it applied",
            f"run `terraform -chdir=terraform init`, then {hint('sof destroy --target aws')} again",
        )
    _terraform("destroy", tfvars, overrides, auto_approve)
