"""sof runs: the runs under runs/, or the ones selectors name (run ids, directories or labels)."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from scaleorfail import paths, runs


def runs_command(args: argparse.Namespace) -> int:
    root = paths.runs_dir()
    known = runs.listing(root)
    named = [runs.read_info(runs.resolve(selector, root, known)) for selector in args.runs]
    chosen = named if args.runs else known
    if args.show:
        for info in chosen:
            value = getattr(info, args.show)
            print("" if value is None else value)
        return 0
    if not chosen:
        print(f"no runs under {root} (start one: make burst N=500 MAX_CONCURRENCY=2)")
        return 0
    rows = [
        (
            info.run_id,
            info.label,
            info.status,
            info.profile,
            info.target,
            info.executions,
            info.tickets,
            "" if info.max_concurrency is None else info.max_concurrency,
            info.started_at[:19].replace("T", " "),
        )
        for info in chosen
    ]
    headers = ["run id", "label", "status", "profile", "target", "executions", "tickets", "max conc.", "started (UTC)"]
    print(tabulate(rows, headers=headers, tablefmt="simple"))
    if not args.runs:
        print(f"\n{len(chosen)} runs in {root}; a label names its latest run wherever a run id is asked for")
    return 0
