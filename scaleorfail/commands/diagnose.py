"""sof scenario / sof rca."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scaleorfail import analysis, insights, paths, rca, scenarios
from scaleorfail import target as targets
from scaleorfail.commands.evidence import harvest_runs
from scaleorfail.errors import UserError
from scaleorfail.harvest import collect

LOG_QUERIES = ("bad-input", "memory-used", "throttled-retried", "errors-by-type")


def gather_logs(
    target: targets.Target, outputs: dict[str, Any], record: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The Logs Insights rows the RCA cites, for the run's time window (and its executions, where logged)."""
    known = insights.catalogue()
    start, stop = insights.record_window(record)
    run_id = record["run_id"]
    rows: dict[str, Any] = {}
    notes: list[str] = []
    for key in LOG_QUERIES:
        query = known[key]
        text = query.text
        if query.log_groups == "state_machine":  # execution log lines name their execution
            text = f"filter execution_arn like /{run_id}/\n| {text}"
        try:
            rows[key] = insights.run(target, text, insights.groups_for(query.log_groups, outputs), start, stop)
        except Exception as error:  # logs are supporting evidence: the RCA goes on without them
            notes.append(f"logs not read ({key}): {error}")
    return rows, notes


def diagnose_run(
    run_dir: Path, use_logs: bool = True, quiet: bool = False, record: dict[str, Any] | None = None
) -> rca.Diagnosis:
    """Classify a run; `record` is its harvest when the caller already has it."""
    if record is None:
        (record,) = harvest_runs([str(run_dir)], quiet=quiet)
    stats = analysis.stats(record)
    logs: dict[str, Any] = {}
    notes: list[str] = []
    limit = None
    try:
        target = targets.resolve(record["target"], record.get("region"))
        outputs = targets.load_outputs(target.name, target)
        if use_logs:
            logs, notes = gather_logs(target, outputs, record)
        limit = record.get("parameters", {}).get("account_concurrency") or targets.account_concurrency(target)
    except UserError as error:
        notes.append(f"the target is not reachable, so no logs or account settings: {error.cause}")
    diagnosis = rca.diagnose(record, stats, logs, limit, record["target"])
    diagnosis.notes += notes
    return diagnosis


def rca_command(args: argparse.Namespace) -> int:
    (run_dir,) = collect.run_dirs([args.run], paths.runs_dir())
    diagnosis = diagnose_run(run_dir, use_logs=not args.no_logs)
    md, js = rca.write(diagnosis, run_dir)
    print(rca.to_markdown(diagnosis))
    print(f"written: {md} and {js}")
    return 0


@contextmanager
def account_limit(target: targets.Target, value: int | None) -> Any:
    """The emulator's account concurrency for the scenario, restored afterwards."""
    if value is None or target.name != "local":
        yield
        return
    from scaleorfail.emulator import control

    current = control.running(paths.state_dir())
    if current is None:
        raise UserError("the emulator is not running", "start it: make local-up (or make deploy TARGET=local)")
    before = int(current.record.get("account_concurrency", 1000))
    url = target.endpoint_url or current.local_url
    info = control.health(url, token=current.token) or {}
    before = int(info.get("settings", {}).get("account_concurrency", before))
    control.set_account_concurrency(url, value, current.token)
    try:
        yield
    finally:
        control.set_account_concurrency(url, before, current.token)


def deploy(target: targets.Target, variables: dict[str, Any], auto_approve: bool) -> None:
    if target.name == "local":
        from scaleorfail.deploy import local

        local.deploy(target, None, variables)
    else:
        from scaleorfail.deploy import aws

        aws.deploy(target, None, variables, auto_approve)


def scenario_command(args: argparse.Namespace) -> int:
    from scaleorfail.load import runner

    known = scenarios.catalogue(args.scale)
    if args.name not in known:
        raise UserError(f"no scenario named {args.name!r}", f"use one of: {', '.join(known)}")
    scenario = known[args.name]
    target = targets.resolve(args.target, args.region)
    targets.load_outputs(target.name, target)
    if target.name == "aws" and not args.auto_approve:
        print(
            "note: on AWS each run applies Terraform variables (and restores them); add --auto-approve to skip prompts"
        )
    extra: dict[str, Any] = {}
    if target.name == "aws" and scenario.account_concurrency:  # the sandbox limit, reproduced on AWS
        limit, unreserved = targets.account_limits(target)
        extra.update(scenarios.aws_throttle_variables(scenario.account_concurrency, limit, unreserved))
    made: list[Path] = []
    records: list[dict[str, Any]] = []
    print(f"scenario {scenario.name}: {scenario.description}", file=sys.stderr)
    try:
        with account_limit(target, scenario.account_concurrency):
            for spec in scenario.runs:
                variables = {**spec.variables, **extra}
                shown = ", ".join(f"{k}={v}" for k, v in variables.items()) or "defaults"
                print(f"  {spec.label}: {spec.tickets} tickets at max_concurrency {spec.max_concurrency} ({shown})",
                      file=sys.stderr, flush=True)  # fmt: skip
                deploy(target, variables, args.auto_approve)
                tickets, size = scenarios.ticket_file(spec.batch, spec.tickets)
                try:
                    made.append(runner.burst(target.name, size, spec.max_concurrency, spec.label, ticket_file=tickets))
                finally:
                    if tickets is not None:
                        tickets.unlink(missing_ok=True)
                records.append(harvest_runs([str(made[-1])], quiet=True)[0])
    finally:
        print("  restoring the default variables", file=sys.stderr, flush=True)
        deploy(target, {}, args.auto_approve)
    for run_dir, record in zip(made, records, strict=False):
        by_status = record["reconciliation"]["harvested_by_status"]
        print(f"{run_dir.name}: {', '.join(f'{v} {k}' for k, v in by_status.items()) or 'nothing harvested'}")
    if not made:
        return 1
    print(f"\nnext: sof rca {made[0].name}" + (f"  (and sof rca {made[-1].name})" if len(made) > 1 else ""))
    return 0


def _pick(records: list[dict[str, Any]], test: Any) -> dict[str, Any] | None:
    chosen = [r for r in records if test(r)]
    return max(chosen, key=lambda r: r["window"]["start"]) if chosen else None


def _single_ok(record: dict[str, Any], c: int) -> bool:
    return (
        record.get("parameters", {}).get("max_concurrency") == c
        and bool(record["executions"])
        and all(e["status"] == "SUCCEEDED" for e in record["executions"])
        and len(record["executions"]) == 1
    )


def portfolio_command(args: argparse.Namespace) -> int:
    from scaleorfail import compare, portfolio, report

    def one(selector: str | None) -> dict[str, Any] | None:
        if not selector:
            return None
        return harvest_runs([selector], quiet=True)[0]

    found = {m.parent: collect.read_cached(m.parent) for m in sorted(paths.runs_dir().glob("*/manifest.json"))}
    unharvested = [str(d) for d, record in found.items() if record is None]
    fresh = iter(harvest_runs(unharvested, quiet=True) if unharvested else [])
    cached = [record if record is not None else next(fresh) for record in found.values()]
    wall = one(args.wall) or _pick(cached, lambda r: _single_ok(r, 2))
    fix = one(args.fix) or _pick(cached, lambda r: _single_ok(r, 10))
    bad = one(args.bad_input) or _pick(
        cached, lambda r: any(e.get("error") == "PayloadTooLarge" for e in r["executions"])
    )
    happy = one(args.happy) or wall or fix
    out = args.output or paths.runs_dir() / "portfolio"
    out.mkdir(parents=True, exist_ok=True)
    pair = [r for r in (wall, fix) if r is not None]
    comparison = None
    plots: dict[str, Path] = {}
    if pair:
        stats = [analysis.stats(r) for r in pair]
        baseline = compare.with_baseline(stats)
        comparison = compare.table(stats, "github")
        built = report.build(stats, pair, baseline, None, out / "plots")
        plots = {k: v for k, v in built.items() if k in ("throughput", "timeline", "latency", "throttles")}
    reports: dict[str, str] = {}
    insights_text = None
    for key, record in (("wall", wall), ("bad-input", bad)):
        if record is not None:
            run_dir = paths.runs_dir() / record["run_id"]
            reports[key] = rca.to_markdown(diagnose_run(run_dir, quiet=True, record=record))
    source = wall or happy
    if source is not None:
        try:
            target = targets.resolve(source["target"], source.get("region"))
            outputs = targets.load_outputs(target.name, target)
            query = insights.catalogue()["duration-by-step"]
            start, stop = insights.record_window(source)
            rows = insights.run(target, query.text, insights.groups_for("lambda", outputs), start, stop)
            insights_text = f"sof insights duration-by-step --run {source['run_id']}\n\n" + insights.render(rows)
        except UserError as error:
            print(f"note: no Logs Insights output ({error.cause})", file=sys.stderr)
    outputs_file = next((p for p in (targets.outputs_path("local"), targets.outputs_path("aws")) if p.exists()), None)
    md, page, checks = portfolio.build(
        out, happy, comparison, plots, bad, insights_text, reports, outputs_file, wall is not None, fix is not None
    )
    for check in checks:
        print(f"[{'x' if check.done else ' '}] {check.item}" + ("" if check.done else f"  -> {check.how}"))
    print(f"\nportfolio: {page} (and {md.name})")
    return 0
