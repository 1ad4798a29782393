"""sof invoke-one (Activity 2) and sof bad-input (Activity 6)."""

from __future__ import annotations

import argparse
import json
import statistics

from tabulate import tabulate

from scaleorfail import executions
from scaleorfail import target as targets
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


def bad_input(args: argparse.Namespace) -> int:
    target = targets.resolve(args.target, args.region)
    outputs = targets.load_outputs(target.name, target)
    ticket = executions.named_bad_input(args.name)
    payload = {"tickets": [ticket]}
    report = executions.run_one(target, outputs["state_machine_arn"], payload, args.timeout)
    size = len(ticket["text"]) if isinstance(ticket, dict) and isinstance(ticket.get("text"), str) else None
    print(f"input:     bad input {args.name!r}" + (f" ({size} characters of text)" if size is not None else ""))
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
    print("classify it: RCA tree leaf BAD INPUT (data) - find it in the logs with `sof insights bad-input`")
    return 0
