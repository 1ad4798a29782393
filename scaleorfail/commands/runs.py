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
    """The runs as a table fitted to `columns`: the columns that tell runs apart first (the start time is in the
    run id); the target only when the runs have several; what does not fit is left out, not cut."""
    fields: list[tuple[str, str]] = [("run_id", "run id"), ("label", "label"), ("status", "status")]
    optional = [("profile", "profile")]
    if len({info.target for info in chosen}) > 1:
        optional.append(("target", "target"))
    optional.append(("executions", "executions"))
    tail = [("tickets", "tickets"), ("max_concurrency", "max conc.")]
    extra = [("started_at", "started (UTC)")]
    layouts = [fields + kept + tail + last for kept in (optional, optional[:-1], []) for last in (extra, [])]
    layouts.append([fields[0], fields[1], *tail])  # the status too, before any name is cut
    for layout in layouts:
        text = _render(chosen, layout, 10**6)  # as wide as it is
        if max(map(len, text.splitlines()), default=0) <= columns:
            return text
    return _render(chosen, layouts[-1], columns)


def _render(chosen: list[runs.RunInfo], fields: list[tuple[str, str]], columns: int) -> str:
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
