"""Running the terraform binary: version check, commands with their output on this terminal, outputs.

Used by the AWS deploy (scaleorfail.deploy.aws) and by the stack outputs (scaleorfail.target,
which refreshes them from `terraform output -json` when the Terraform state is newer).
When a Terraform command fails, its error text is repeated in one line with the fix.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from typing import Any

from scaleorfail import paths
from scaleorfail.errors import UserError

MIN_TERRAFORM = (1, 6)
ERROR_TAIL_LINES = 200
_BOX = re.compile(r"^[\s│╷╵]+")


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


def terraform_output_values(raw: dict[str, Any]) -> dict[str, Any]:
    """`terraform output -json` wraps each output in {value, type, sensitive}."""
    return {
        key: entry["value"] if isinstance(entry, dict) and "value" in entry else entry for key, entry in raw.items()
    }


def output_values() -> dict[str, Any]:
    """The root module's outputs from `terraform output -json` ({} when there are none or it fails)."""
    done = subprocess.run(
        [terraform_binary(), f"-chdir={paths.terraform_dir()}", "output", "-json"],
        check=False,
        capture_output=True,
        text=True,
    )
    try:
        return terraform_output_values(json.loads(done.stdout or "{}")) if done.returncode == 0 else {}
    except (ValueError, AttributeError):
        return {}
