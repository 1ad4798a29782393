"""sof harvest / compare / report / sweep: argument adapters over scaleorfail.usecases."""

from __future__ import annotations

import argparse
import sys

from scaleorfail import paths, terminal
from scaleorfail.evidence import analysis, compare
from scaleorfail.record.model import HarvestRecord
from scaleorfail.usecases.compare import Compared, compare_records, fit_model, select, writable, write_report
from scaleorfail.usecases.harvest import harvest_runs


def harvest(args: argparse.Namespace) -> int:
    skipped: list[str] = []
    damaged: list[str] = []
    records = harvest_runs(
        args.runs,
        refresh=args.refresh,
        wait_s=args.wait,
        skipped=skipped,
        wait_metrics=args.wait_metrics,
        damaged=damaged,
    )
    code = 1 if skipped or damaged else 0
    unbalanced = [r.run_id for r in records if not r.reconciliation.balanced]
    if unbalanced:
        print(f"warning: not every started execution is accounted for in {', '.join(unbalanced)}", file=sys.stderr)
        code = 1
    for record in records:
        missing = record.reconciliation.missing
        if missing:
            print(
                f"error: run {record.run_id}: the evidence of {len(missing)} execution(s) is gone - "
                f"{missing[0].reason}",
                file=sys.stderr,
            )
            code = 1
    partial = [r.run_id for r in records if not r.final]
    if partial:
        print(f"note: {', '.join(partial)} not over yet: harvest again later for the final record", file=sys.stderr)
        code = 1
    return code


def _compared(args: argparse.Namespace, skipped: list[str]) -> Compared:
    selectors = select(args.runs, args.last, getattr(args, "all", False))
    return compare_records(
        selectors, args.wait, getattr(args, "quiet", False), args.baseline, skipped, args.mixed_tickets, bool(args.runs)
    )


def compare_command(args: argparse.Namespace) -> int:
    skipped: list[str] = []
    runs, records, baseline = _compared(args, skipped)
    wide = args.wide or args.format != "simple"
    print(compare.table(runs, args.format, wide=wide))
    notes = compare.footnotes(runs, baseline) + ([] if wide else [compare.narrow_note()])
    for note in notes:
        print(terminal.fill(f"  - {note}"))
    if args.steps:
        print_steps(runs, records)
    out = writable(args.output or paths.runs_dir() / "compare")
    written = compare.write(runs, baseline, out)
    print(terminal.fill(f"written: {paths.shown(written['md'])} (and .csv, .json)"))
    for line in compare.lost(runs):
        print(terminal.fill(f"error: {line}"), file=sys.stderr)
    if skipped:
        print(f"{len(skipped)} run(s) skipped (above); the others are compared", file=sys.stderr)
        return 1
    return 1 if compare.lost(runs) else 0


def report_command(args: argparse.Namespace) -> int:
    skipped: list[str] = []
    compared = _compared(args, skipped)
    out = writable(args.output or paths.runs_dir() / "report")
    written = write_report(compared, fit_model(compared.runs), out)
    print(compare.table(compared.runs, "simple", wide=False))
    for note in compare.footnotes(compared.runs, compared.baseline)[:1]:  # which run is the baseline, and why
        print(terminal.fill(f"  - {note}"))
    print(terminal.fill(f"report: {paths.shown(written['html'])} (and {written['md'].name}, PNG plots)"))
    return 1 if skipped else 0


def sweep_command(args: argparse.Namespace) -> int:
    from scaleorfail.evidence import report
    from scaleorfail.usecases.sweep import parse_concurrency, sweep

    settings = parse_concurrency(args.concurrency, args.map_mode)
    done = sweep(
        args.target, args.region, args.n, settings, args.output, args.wait, args.baseline, map_mode=args.map_mode
    )
    runs = done.compared.runs
    print(compare.table(runs, "simple", wide=False))
    for warning in done.warnings:
        print(f"warning: {warning}")
    if done.model is None:
        print("(the scaling model needs three or more settings)")
        print(f"report: {done.out / 'report.html'}")
        return 0
    for mode, model in (done.models or {"inline": done.model}).items():
        mine = [r for r in runs if r.map_mode == mode or not done.models]
        print()
        if len({r.map_mode for r in runs}) > 1:
            print(f"{mode} Map:")
        for line in report.model_summary(model, min(settings), max(settings)):
            if line and not line.startswith("#"):
                print(line)
        print("setting  measured tickets/s  model tickets/s")
        for run in mine:
            predicted = model.throughput(run.max_concurrency or 1)
            print(f"{run.max_concurrency:>7}  {run.throughput or 0:>18.2f}  {predicted:>15.2f}")
    if args.target_throughput:
        n, x, reached = done.model.recommend(args.target_throughput, done.limit)
        verdict = "reaches" if reached else "cannot reach; best is"
        goal = f"for {args.target_throughput:g} tickets/s within concurrency {done.limit}"
        print(f"{goal}: max_concurrency {n} ({verdict} {x:.1f}/s)")
    print(f"report: {done.out / 'report.html'}")
    return 0


def print_steps(runs: list[analysis.RunStats], records: list[HarvestRecord]) -> None:
    """Where the time goes, per step: state against function time, and the running-versus-in-flight gap."""
    from scaleorfail.evidence import steps

    names = compare.display_names(runs)
    pairs = [(names[run.run_id], record, run) for run, record in zip(runs, records, strict=True)]
    print()
    print(terminal.fill("Where the time goes, per step (the gap between state and function is orchestration):"))
    print(steps.table(pairs))
    print(terminal.fill(f"  - {steps.EXPLAINED}"))
    for name, record, _ in pairs:
        line = steps.caption(record, name)
        if line:
            print(terminal.fill(f"  - {line}"))
