"""sof invoke-one (Activity 2) and sof bad-input (Activity 6)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from tabulate import tabulate

from scaleorfail import executions, paths
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.pipeline import STEPS


def _print_durations(report: executions.ExecutionReport) -> None:
    rows = []
    for step in (*STEPS, *sorted(set(report.step_durations_ms) - set(STEPS))):
        values = report.step_durations_ms.get(step)
        if values:
            rows.append((step, len(values), f"{statistics.median(values):.1f}", f"{max(values):.1f}"))
    if rows:
        print(tabulate(rows, headers=["state", "visits", "median ms", "max ms"], tablefmt="simple"))


def invoke_one(args: argparse.Namespace) -> int:
    target = targets.resolve(args.target, args.region)
    outputs = targets.load_outputs(target.name, target)
    tickets = executions.sample_tickets(args.n, args.tickets)
    payload: dict[str, object] = {"tickets": tickets}
    if args.max_concurrency is not None:
        payload["max_concurrency"] = args.max_concurrency
    report = executions.run_one(target, outputs["state_machine_arn"], payload, args.timeout)
    print(f"execution: {report.arn}")
    print(f"status:    {report.status}  ({report.duration_s:.2f} s, {report.events} history events)")
    _print_durations(report)
    if report.status == "SUCCEEDED":
        print("output:")
        print(json.dumps(report.output, indent=2))
        return 0
    print(f"error:     {report.error}")
    print(f"cause:     {report.cause}")
    return 1


def bad_input_run(target: targets.Target, ticket: Any, label: str) -> Path:
    """Send one bad ticket through the load harness, so it is a run like any other (`sof rca <label>`)."""
    from scaleorfail.load import runner

    folder = paths.state_dir() / "bad-input-tickets"
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        "w", suffix=".jsonl", prefix="bad-input-", dir=folder, delete=False, encoding="utf-8"
    )
    with handle:
        handle.write(json.dumps(ticket) + "\n")
    try:
        return runner.burst(target.name, 1, None, label, ticket_file=Path(handle.name))
    finally:
        Path(handle.name).unlink(missing_ok=True)


def bad_input(args: argparse.Namespace) -> int:
    from scaleorfail.load.options import check_label
    from scaleorfail.record.manifest import load

    check_label(args.label)
    target = targets.resolve(args.target, args.region)
    outputs = targets.load_outputs(target.name, target)
    ticket = executions.named_bad_input(args.name)
    run_dir = bad_input_run(target, ticket, args.label)
    manifest = load(run_dir)
    if not manifest.executions:
        failed = manifest.failed_starts[0] if manifest.failed_starts else None
        why = f"{failed.error}: {failed.message[:200]}" if failed else "see its manifest"
        raise UserError(f"the bad-input execution of run {run_dir.name} did not start ({why})", f"look at {run_dir}")
    report = executions.describe(target, manifest.executions[0].arn, args.timeout)
    size = len(ticket["text"]) if isinstance(ticket, dict) and isinstance(ticket.get("text"), str) else None
    print(f"input:     bad input {args.name!r}" + (f" ({size} characters of text)" if size is not None else ""))
    print(f"run:       {run_dir.name} (label {args.label}) in {run_dir.parent}")
    print(f"execution: {report.arn}")
    print(f"status:    {report.status}  ({report.duration_s:.2f} s)")
    if report.status == "SUCCEEDED":
        print("output:")
        print(json.dumps(report.output, indent=2)[:2000])
        return 0 if outputs.get("bad_input_policy") == "quarantine" else 1
    print(f"failed in: {report.failed_state or 'unknown state'}")
    print(f"error:     {report.error}")
    cause = report.cause or ""
    try:
        parsed = json.loads(cause)
        cause = f"{parsed.get('errorType')}: {parsed.get('errorMessage')}"
    except ValueError:
        pass
    print(f"cause:     {cause}")
    print(f"classify it: make rca RUN={args.label} (RCA tree leaf BAD INPUT, data); the logs: sof insights bad-input")
    return 0
