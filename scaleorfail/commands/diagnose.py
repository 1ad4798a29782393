"""sof scenario / sof rca / sof portfolio: argument adapters over scaleorfail.usecases."""

from __future__ import annotations

import argparse

from scaleorfail import consolelink, paths
from scaleorfail import target as targets
from scaleorfail.evidence import rca
from scaleorfail.harvest import collect
from scaleorfail.terminal import fill, hint
from scaleorfail.usecases.diagnose import diagnose_run


def rca_command(args: argparse.Namespace) -> int:
    (run_dir,) = collect.run_dirs([args.run], paths.runs_dir())
    diagnosis = diagnose_run(run_dir, use_logs=not args.no_logs)
    md, js = rca.write(diagnosis, run_dir)
    print(fill(rca.to_markdown(diagnosis)))
    print(fill(f"written: {paths.shown(md)} and {js.name}"))
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
    labels = [record.label or record.run_id for record in done.records]
    print()
    print(fill("next: " + ", ".join(hint(f"make rca RUN={label}") for label in labels)))
    if len(labels) > 1:
        print(fill(f"side by side: {hint('make compare RUNS=' + chr(34) + ' '.join(labels) + chr(34))}", subsequent=""))
    return 0


def portfolio_command(args: argparse.Namespace) -> int:
    from scaleorfail.usecases.portfolio import Picks, build

    md, page, checks = build(Picks(args.wall, args.fix, args.bad_input, args.happy), args.output)
    for check in checks:
        todo = "" if check.done else f" - {hint(check.how)}"
        print(fill(f"[{'x' if check.done else ' '}] {check.item}{todo}", subsequent="    "))
    print(fill(f"\nportfolio: {paths.shown(page)} (and {md.name})"))
    return 0
