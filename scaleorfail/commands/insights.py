"""sof insights."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from scaleorfail import paths, runs, terminal
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.evidence import insights
from scaleorfail.record import queries
from scaleorfail.usecases.insights import run_window


def insights_command(args: argparse.Namespace) -> int:
    known = queries.catalogue()
    if args.list:
        for key, entry in known.items():
            print(terminal.fill(f"{key:18} {entry.title} [{entry.log_groups}]", subsequent=" " * 19))
        print(f"run one: {terminal.sof()} insights NAME (or make insights QUERY=NAME); any text: --query '...'")
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
    title = f"{query.key}: {len(rows)} rows - {query.title}" if query else f"custom query: {len(rows)} rows"
    print(terminal.fill(f"# {title}"))
    print(terminal.fill(f"  from {start:%H:%M:%S} to {stop:%H:%M:%S} UTC in {', '.join(groups)}", subsequent="  "))
    source = f" (terraform/queries/{query.key}.logsinsights)" if query else ""
    print(f"  query{source}:")
    for line in text.strip().splitlines():
        print(terminal.fill(line, indent="    ", subsequent="        "))
    print(insights.render(rows))
    return 0
