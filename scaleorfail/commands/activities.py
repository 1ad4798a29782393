"""sof invoke-one (Activity 2) and sof bad-input (Activity 6)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from scaleorfail import executions, paths, terminal
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.pipeline import STEPS


def _shown(arn: str) -> str:
    """An execution by its name and state machine (its ARN is wider than a terminal)."""
    parts = arn.split(":")
    return f"{parts[-1]} (state machine {parts[-2]})" if len(parts) >= 8 else arn


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    middle = statistics.median(values)
    return f"{middle:.1f}" if middle < 10 else f"{middle:.0f}"


def _print_durations(report: executions.ExecutionReport, times: dict[str, executions.FunctionTime]) -> None:
    """Per state: its time in the history against the function's own (REPORT), cold starts on their own rows."""
    groups: dict[tuple[str, bool], list[tuple[float, float | None, float | None]]] = {}
    for visit in report.visits:
        if visit.duration_ms is None:
            continue
        invoked = [times[a.request_id] for a in visit.attempts if a.request_id and a.request_id in times]
        cold = any(t.init_ms is not None for t in invoked)
        function = sum(t.duration_ms for t in invoked) if invoked else None
        init = next((t.init_ms for t in invoked if t.init_ms is not None), None)
        groups.setdefault((visit.step, cold), []).append((visit.duration_ms, function, init))
    order = [*STEPS, *sorted({step for step, _ in groups} - set(STEPS))]
    rows = []
    for step in order:
        for cold in (True, False):
            found = groups.get((step, cold))
            if not found:
                continue
            state = [v[0] for v in found]
            own = [v[1] for v in found if v[1] is not None]
            gap = [v[0] - v[1] for v in found if v[1] is not None]
            inits = [v[2] for v in found if v[2] is not None]
            name = f"{step} (cold start)" if cold else step
            rows.append([name, str(len(found)), _ms(state), _ms(own), _ms(gap), _ms(inits)])
    if not rows:
        return
    small = terminal.narrow()
    headers = (
        ["state", "visits", "state\nms", "function\nms", "orches-\ntration ms", "init\nms"]
        if small
        else ["state", "visits", "state ms", "function ms", "orchestration ms", "init ms"]
    )
    print(terminal.table(rows, headers, numparse=False, align=["left"] + ["right"] * 5))
    print(
        terminal.fill(
            "  state: entered -> exited in the execution's history; function: the REPORT line's Duration (the "
            "handler's own work); the rest is orchestration - Step Functions scheduling the task, Lambda's invoke "
            "round trip and, on a cold start, starting the function (init). Medians."
        )
    )


def invoke_one(args: argparse.Namespace) -> int:
    """Activity 2: a small batch through the load harness (a run labelled happy-path), then its history."""
    from scaleorfail.load.options import check_label
    from scaleorfail.record.manifest import load

    check_label(args.label)
    target = targets.resolve(args.target, args.region)
    outputs = targets.load_outputs(target.name, target)
    tickets = executions.sample_tickets(args.n, args.tickets)
    run_dir = harness_run(target, tickets, args.label, args.max_concurrency)
    manifest = load(run_dir)
    if not manifest.executions:
        failed = manifest.failed_starts[0] if manifest.failed_starts else None
        why = f"{failed.error}: {failed.message[:200]}" if failed else "see its manifest"
        raise UserError(f"the execution of run {run_dir.name} did not start ({why})", f"look at {run_dir}")
    report = executions.describe(target, manifest.executions[0].arn, args.timeout)
    groups = [outputs["log_group_names"][step.lower()] for step in STEPS if step.lower() in outputs["log_group_names"]]
    times = executions.function_times(target, groups, report)
    print(terminal.fill(f"run:       {run_dir.name} (label {args.label}) in {paths.shown(run_dir.parent)}"))
    print(terminal.fill(f"execution: {_shown(report.arn)}", subsequent=" " * 11))
    print(f"status:    {report.status}  ({report.duration_s:.2f} s, {report.events} history events)")
    _print_durations(report, times)
    if report.status == "SUCCEEDED":
        print("output:")
        print(json.dumps(report.output, indent=2))
        return 0
    print(terminal.fill(f"error:     {report.error}", subsequent=" " * 11))
    print(terminal.fill(f"cause:     {report.cause}", subsequent=" " * 11))
    return 1


def harness_run(target: targets.Target, tickets: list[Any], label: str, max_concurrency: int | None = None) -> Path:
    """Send tickets as one execution through the load harness, so it is a run like any other (`sof rca <label>`)."""
    from scaleorfail.load import runner

    folder = paths.state_dir() / "activity-tickets"
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        "w", suffix=".jsonl", prefix=f"{label}-", dir=folder, delete=False, encoding="utf-8"
    )
    with handle:
        for ticket in tickets:
            handle.write(json.dumps(ticket) + "\n")
    try:
        return runner.burst(target.name, len(tickets), max_concurrency, label, ticket_file=Path(handle.name))
    finally:
        Path(handle.name).unlink(missing_ok=True)


def bad_input(args: argparse.Namespace) -> int:
    from scaleorfail.load.options import check_label
    from scaleorfail.record.manifest import load

    check_label(args.label)
    target = targets.resolve(args.target, args.region)
    outputs = targets.load_outputs(target.name, target)
    ticket = executions.named_bad_input(args.name)
    run_dir = harness_run(target, [ticket], args.label)
    manifest = load(run_dir)
    if not manifest.executions:
        failed = manifest.failed_starts[0] if manifest.failed_starts else None
        why = f"{failed.error}: {failed.message[:200]}" if failed else "see its manifest"
        raise UserError(f"the bad-input execution of run {run_dir.name} did not start ({why})", f"look at {run_dir}")
    report = executions.describe(target, manifest.executions[0].arn, args.timeout)
    size = len(ticket["text"]) if isinstance(ticket, dict) and isinstance(ticket.get("text"), str) else None
    print(f"input:     bad input {args.name!r}" + (f" ({size} characters of text)" if size is not None else ""))
    print(terminal.fill(f"run:       {run_dir.name} (label {args.label}) in {paths.shown(run_dir.parent)}"))
    print(terminal.fill(f"execution: {_shown(report.arn)}", subsequent=" " * 11))
    print(f"status:    {report.status}  ({report.duration_s:.2f} s)")
    if report.status == "SUCCEEDED":
        results = report.output.get("results", []) if isinstance(report.output, dict) else []
        sent = ticket.get("ticket_id") if isinstance(ticket, dict) else None
        for result in results:  # one ticket sent: the one result is its (a REJECTED record names no ticket)
            if isinstance(result, dict) and result.get("status") == "REJECTED":
                print(terminal.fill(f"result:    ticket {sent or '(no id)'} REJECTED, the batch went on - "
                                    f"{result.get('error')}: {result.get('cause')}", subsequent=" " * 11))  # fmt: skip
            else:
                print(terminal.fill(f"result:    {json.dumps(result)}", subsequent=" " * 11))
        if args.label != "bad-input":  # the failed run of Activity 6 beside this one
            print(terminal.fill(f"before/after: {terminal.hint(f'sof compare bad-input {args.label}')}"))
        return 0 if outputs.get("bad_input_policy") == "quarantine" else 1
    print(f"failed in: {report.failed_state or 'unknown state'}")
    print(f"error:     {report.error}")
    cause = report.cause or ""
    try:
        parsed = json.loads(cause)
        cause = f"{parsed.get('errorType')}: {parsed.get('errorMessage')}"
    except ValueError:
        pass
    print(terminal.fill(f"cause:     {cause}", subsequent=" " * 11))
    classify = terminal.hint(f"make rca RUN={args.label}")
    print(
        terminal.fill(
            f"classify it: {classify} (RCA leaf BAD INPUT); its logs: {terminal.hint('make insights QUERY=bad-input')}"
        )
    )
    return 0
