"""sof runs: the runs under runs/, or the ones selectors name (run ids, directories or labels)."""

from __future__ import annotations

import argparse

from scaleorfail import paths, runs, terminal


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
        print(terminal.fill(f"no runs under {paths.shown(root)} (start one: `make burst N=500 MAX_CONCURRENCY=2`)"))
        return 0
    print(listing(chosen, terminal.width()))
    if not args.runs:
        print()
        print(
            terminal.fill(
                f"{terminal.plural(len(chosen), 'run')} in {paths.shown(root)}; a label names its latest run "
                "wherever a run id is asked for"
            )
        )
    return 0


def listing(chosen: list[runs.RunInfo], columns: int) -> str:
    """The runs as a table fitted to `columns`: under 100 columns, what tells them apart (the start time is in
    the run id); the target only when the runs have several."""
    small = terminal.narrow(columns)
    fields: list[tuple[str, str]] = [("run_id", "run id"), ("label", "label"), ("status", "status")]
    if not small:
        fields += [("profile", "profile")]
        if len({info.target for info in chosen}) > 1:
            fields += [("target", "target")]
        fields += [("executions", "executions")]
    fields += [("tickets", "tickets"), ("max_concurrency", "max conc.")]
    if not small:
        fields += [("started_at", "started (UTC)")]
    rows = [[_cell(info, key) for key, _ in fields] for info in chosen]
    align = ["right" if key in ("executions", "tickets") else "left" for key, _ in fields]
    return terminal.table(rows, [header for _, header in fields], columns, numparse=False, align=align)


def _cell(info: runs.RunInfo, key: str) -> str:
    if key == "max_concurrency":
        if info.max_concurrency is None:
            return "-"
        return f"{info.max_concurrency} (default)" if info.default_concurrency else str(info.max_concurrency)
    if key == "started_at":
        return info.started_at[:16].replace("T", " ")
    return str(getattr(info, key))
