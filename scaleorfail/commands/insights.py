"""sof insights."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from scaleorfail import paths, runs
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.evidence import insights
from scaleorfail.record import queries
from scaleorfail.usecases.insights import run_window


def insights_command(args: argparse.Namespace) -> int:
    known = queries.catalogue()
    if args.list:
        for key, entry in known.items():
            print(f"{key:20} {entry.title}  [{entry.log_groups}]")
        return 0
    if bool(args.name) == bool(args.query):
        raise UserError("give a query name or --query TEXT (not both)", f"names: {', '.join(known)}")
    if args.name and args.name not in known:
        raise UserError(f"no query named {args.name!r}", f"use one of: {', '.join(known)} (or --list)")
    target = targets.resolve(args.target, args.region)
    outputs = targets.load_outputs(target.name, target)
    query = known[args.name] if args.name else None
    text = query.text if query else args.query
    groups = insights.groups_for(args.log_groups or (query.log_groups if query else "lambda"), outputs)
    if args.run:
        run_dir = runs.resolve(args.run, paths.runs_dir())
        start, stop = run_window(run_dir)
    else:
        stop = datetime.now(UTC)
        start = stop - insights.parse_since(args.since)
    rows = insights.run(target, text, groups, start, stop)
    title = query.title if query else "custom query"
    print(f"# {title}: {len(rows)} rows, {start:%H:%M:%S}-{stop:%H:%M:%S} UTC, {', '.join(groups)}")
    print(insights.render(rows))
    return 0
