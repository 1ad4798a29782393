"""sof deploy / sof destroy: argument adapters (the verification of a destroy: scaleorfail.usecases.deploy)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tabulate import tabulate

from scaleorfail import paths, terminal
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.terminal import hint
from scaleorfail.usecases.deploy import leftover_resources


def parse_vars(pairs: list[str] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--var {pair!r} is not NAME=VALUE", "e.g. --var default_max_concurrency=10")
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return values


def deploy(args: argparse.Namespace) -> int:
    overrides = parse_vars(args.var)
    if args.target == "local":
        from scaleorfail.deploy import local

        target = targets.local_target(args.region)
        result = local.deploy(target, args.var_file, overrides)
        counts: dict[str, int] = {}
        for applied in result.applied:
            counts[applied.action] = counts.get(applied.action, 0) + 1
        if args.verbose:
            rows = [(a.action, a.address, a.id) for a in result.applied]
            print(tabulate(rows, headers=["action", "resource", "id"]))
        summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
        print(
            terminal.fill(
                f"deployed to the emulator at {target.endpoint_url}: {len(result.applied)} resources ({summary})"
            )
        )
        print(f"state machine: {result.outputs['state_machine_name']}")
        print(f"stack outputs: {paths.shown(result.outputs_path) if result.outputs_path else '-'}")
        return 0
    from scaleorfail.deploy import aws

    path = aws.deploy(targets.aws_target(args.region), args.var_file, overrides, args.auto_approve)
    print(f"stack outputs: {path}")
    return 0


def outputs_command(args: argparse.Namespace) -> int:
    """The stack outputs one a line: `key: value`, or the key and, below it, a value too long to share its line."""
    target = targets.resolve(args.target, args.region)
    outputs = targets.load_outputs(target.name, target)
    width = terminal.width()
    print(terminal.fill(f"Stack outputs of {target.name} ({paths.shown(targets.outputs_path(target.name))}; every key: "
                        "docs/stack-outputs.md):"))  # fmt: skip
    for key, value in _flat(outputs):
        line = f"  {key}: {value}"
        print(line if len(line) <= width else f"  {key}:\n    {value}")
    return 0


def _flat(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            found += _flat(value, f"{prefix}{key}.")
        else:
            found.append((f"{prefix}{key}", json.dumps(value) if not isinstance(value, str) else value))
    return found


def destroy(args: argparse.Namespace) -> int:
    if args.target == "local":
        from scaleorfail.deploy import local

        target = targets.local_target(args.region)
        removed = local.destroy(target)
        print(f"removed {len(removed)} resources from the emulator")
    else:
        from scaleorfail.deploy import aws

        target = targets.aws_target(args.region)
        aws.destroy(args.var_file, parse_vars(args.var), args.auto_approve)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        leftovers = leftover_resources(target)
    except (BotoCoreError, ClientError) as error:
        raise UserError(
            f"the destroy ran, but listing what is left failed: {error}",
            f"check your credentials and network, then run {hint('make destroy TARGET=' + target.name)} again "
            "to verify",
        ) from None
    if leftovers:
        print(terminal.fill("still present: " + ", ".join(leftovers)))
        return 1
    targets.outputs_path(target.name).unlink(missing_ok=True)
    print(
        terminal.fill(
            "verified: nothing of the pipeline is left (functions, state machine, endpoint, bucket, logs, alarms ...)"
        )
    )
    return 0
