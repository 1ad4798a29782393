"""sof scenario / sof rca / sof portfolio: argument adapters over scaleorfail.usecases."""

from __future__ import annotations

import argparse

from scaleorfail import consolelink, paths
from scaleorfail import target as targets
from scaleorfail.evidence import rca
from scaleorfail.harvest import collect
from scaleorfail.usecases.diagnose import diagnose_run


def rca_command(args: argparse.Namespace) -> int:
    (run_dir,) = collect.run_dirs([args.run], paths.runs_dir())
    diagnosis = diagnose_run(run_dir, use_logs=not args.no_logs)
    md, js = rca.write(diagnosis, run_dir)
    print(rca.to_markdown(diagnosis))
    print(f"written: {md} and {js}")
    link = consolelink.line(consolelink.run_path(diagnosis.run_id))
    if link:
        print(link)
    return 0


def scenario_command(args: argparse.Namespace) -> int:
    from scaleorfail.usecases.scenario import run_scenario

    target = targets.resolve(args.target, args.region)
    if target.name == "aws" and not args.auto_approve:
        print(
            "note: on AWS each run applies Terraform variables (and restores them); add --auto-approve to skip prompts"
        )
    done = run_scenario(args.name, target, args.scale, args.auto_approve)
    for run_dir, record in zip(done.run_dirs, done.records, strict=False):
        by_status = record.reconciliation.harvested_by_status
        print(f"{run_dir.name}: {', '.join(f'{v} {k}' for k, v in by_status.items()) or 'nothing harvested'}")
    if not done.run_dirs:
        return 1
    made = done.run_dirs
    print(f"\nnext: sof rca {made[0].name}" + (f"  (and sof rca {made[-1].name})" if len(made) > 1 else ""))
    return 0


def portfolio_command(args: argparse.Namespace) -> int:
    from scaleorfail.usecases.portfolio import Picks, build

    md, page, checks = build(Picks(args.wall, args.fix, args.bad_input, args.happy), args.output)
    for check in checks:
        print(f"[{'x' if check.done else ' '}] {check.item}" + ("" if check.done else f"  -> {check.how}"))
    print(f"\nportfolio: {page} (and {md.name})")
    return 0
