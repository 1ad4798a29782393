"""sof harvest / compare / report / sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scaleorfail import analysis, compare, paths, scaling
from scaleorfail.errors import UserError
from scaleorfail.harvest import collect
from scaleorfail.load.options import MAP_LIMIT


def harvest_runs(
    selectors: list[str],
    refresh: bool = False,
    wait_s: float = 900.0,
    quiet: bool = False,
    skipped: list[str] | None = None,
    wait_metrics: bool = False,
) -> list[dict[str, Any]]:
    """Harvest records of runs. With `skipped`, a run that cannot be harvested is one line there, not an error."""
    records = []
    for run_dir in collect.run_dirs(selectors, paths.runs_dir()):
        cached = None if refresh else collect.read_cached(run_dir)
        try:
            options = collect.Options(wait_s=wait_s, refresh=refresh, quiet=quiet, wait_metrics=wait_metrics)
            record = cached or collect.harvest(run_dir, options)  # a partial record's finished parts are reused
        except UserError as error:
            if skipped is None:
                raise
            skipped.append(f"{run_dir.name}: skipped: {error.cause}" + (f" ({error.fix})" if error.fix else ""))
            print(skipped[-1], file=sys.stderr)
            continue
        records.append(record)
        if not quiet:
            print(summary_line(record, cached is not None), file=sys.stderr)
    return records


def summary_line(record: dict[str, Any], cached: bool) -> str:
    recon = record["reconciliation"]
    statuses = ", ".join(f"{n} {s}" for s, n in recon["harvested_by_status"].items()) or "no executions"
    calls = ", ".join(f"{k} {v}" for k, v in record["api_calls"].items())
    missing = recon["missing"]
    if missing:
        reasons = sorted({m["reason"] for m in missing})
        balance = f"{len(missing)} missing ({'; '.join(reasons)[:300]})"
    else:
        balance = "reconciled" if recon["balanced"] else "NOT reconciled"
    source = "cached" if cached else f"harvested in {record['harvest_seconds']:.1f} s ({calls})"
    line = f"{record['run_id']}: {statuses}; {balance}; {source}"
    if not record.get("final", True):
        line += f"; partial: {', '.join(record.get('pending', []))} - not cached, read again on the next harvest"
    return line


def harvest(args: argparse.Namespace) -> int:
    skipped: list[str] = []
    records = harvest_runs(
        args.runs, refresh=args.refresh, wait_s=args.wait, skipped=skipped, wait_metrics=args.wait_metrics
    )
    code = 1 if skipped else 0
    unbalanced = [r["run_id"] for r in records if not r["reconciliation"]["balanced"]]
    if unbalanced:
        print(f"warning: not every started execution is accounted for in {', '.join(unbalanced)}", file=sys.stderr)
        code = 1
    lost = [r for r in records if r["reconciliation"]["missing"]]
    for record in lost:
        missing = record["reconciliation"]["missing"]
        print(
            f"error: run {record['run_id']}: the evidence of {len(missing)} execution(s) is gone - "
            f"{missing[0]['reason']}",
            file=sys.stderr,
        )
        code = 1
    partial = [r["run_id"] for r in records if not r.get("final", True)]
    if partial:
        print(f"note: {', '.join(partial)} not over yet: harvest again later for the final record", file=sys.stderr)
        code = 1
    return code


def select_last(selectors: list[str], last: int | None) -> list[str]:
    if selectors or not last:
        return selectors
    runs = sorted(paths.runs_dir().glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    return [str(p.parent) for p in runs[-last:]]


Compared = tuple[list[analysis.RunStats], list[dict[str, Any]], Any]


def compare_records(
    selectors: list[str], wait_s: float, quiet: bool, baseline: str | None = None, skipped: list[str] | None = None
) -> Compared:
    """Harvest (or read the caches of) runs: their stats and records by max_concurrency, and the baseline.

    With `skipped`, a run that cannot be harvested or read is one line there, and the others are compared.
    """
    records = harvest_runs(selectors, wait_s=wait_s, quiet=quiet, skipped=skipped)
    runs = []
    usable = []
    for record in records:
        try:
            runs.append(analysis.stats(record))
            usable.append(record)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            problem = (
                f"{record.get('run_id', '?')}: skipped: its harvest record is damaged ({type(error).__name__}: {error})"
            )
            if skipped is None:
                raise UserError(problem, "re-harvest it: sof harvest --refresh RUN") from None
            skipped.append(problem + " - re-harvest it: sof harvest --refresh RUN")
            print(skipped[-1], file=sys.stderr)
    records = usable
    if not runs and skipped:
        raise UserError("no run could be compared", "see the lines above")
    order = sorted(range(len(runs)), key=lambda i: (runs[i].max_concurrency or 0, runs[i].run_id))
    runs = [runs[i] for i in order]
    records = [records[i] for i in order]
    return runs, records, compare.with_baseline(runs, baseline)


def compare_runs(args: argparse.Namespace, skipped: list[str] | None = None) -> Compared:
    selectors = select_last(args.runs, args.last)
    return compare_records(selectors, args.wait, getattr(args, "quiet", False), args.baseline, skipped)


def write_report(compared: Compared, model: scaling.USL | None, out: Path) -> dict[str, Path]:
    """The report (Markdown, plots, HTML) and the comparison files, in one folder."""
    from scaleorfail import report

    runs, records, baseline = compared
    written = report.build(runs, records, baseline, model, out)
    compare.write(runs, baseline, out)
    return written


def fit_model(runs: list[analysis.RunStats]) -> scaling.USL | None:
    points = {r.max_concurrency: r.throughput for r in runs if r.max_concurrency and r.throughput}
    if len(points) < 3:
        return None
    return scaling.fit(sorted(points.items()))


def writable(folder: Path) -> Path:
    """Create an output folder, or say in one line why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write {folder}: {error.strerror or error}", "choose another --output folder") from None
    return folder


def compare_command(args: argparse.Namespace) -> int:
    skipped: list[str] = []
    runs, _, baseline = compare_runs(args, skipped)
    print(compare.table(runs, args.format))
    for note in compare.footnotes(runs, baseline):
        print(f"  - {note}")
    out = writable(args.output or paths.runs_dir() / "compare")
    written = compare.write(runs, baseline, out)
    print(f"written: {written['md']}, {written['csv']}, {written['json']}")
    if skipped:
        print(f"{len(skipped)} run(s) skipped (above); the others are compared", file=sys.stderr)
        return 1
    return 0


def report_command(args: argparse.Namespace) -> int:
    skipped: list[str] = []
    compared = compare_runs(args, skipped)
    runs = compared[0]
    out = writable(args.output or paths.runs_dir() / "report")
    written = write_report(compared, fit_model(runs), out)
    print(compare.table(runs, "simple"))
    print(f"report: {written['html']} (and {written['md'].name}, PNG plots) in {out}")
    return 1 if skipped else 0


def parse_concurrency(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise UserError(
            f"--concurrency {text!r} is not a list of whole numbers", "e.g. --concurrency 1,2,5,10"
        ) from None
    if not values or values[0] < 1 or values[-1] > MAP_LIMIT:
        raise UserError(
            f"--concurrency values must be between 1 and {MAP_LIMIT}", "e.g. --concurrency 1,2,5,10,20,30,40"
        )
    return values


def sweep_command(args: argparse.Namespace) -> int:
    from scaleorfail import report
    from scaleorfail import target as targets
    from scaleorfail.load import runner

    settings = parse_concurrency(args.concurrency)
    target = targets.resolve(args.target, args.region)
    targets.load_outputs(target.name, target)
    run_dirs: list[str] = []
    for c in settings:
        print(f"sweep: {args.n} tickets at max_concurrency {c} ...", file=sys.stderr, flush=True)
        run_dirs.append(str(runner.burst(args.target, args.n, c, f"sweep-c{c}")))
    compared = compare_records(run_dirs, args.wait, False, args.baseline)
    runs = compared[0]
    model = fit_model(runs) if len(settings) >= 3 else None
    print(compare.table(runs, "simple"))
    out = args.output or paths.runs_dir() / f"sweep-{Path(run_dirs[0]).name}"
    write_report(compared, model, out)
    if model is None:
        print("(the scaling model needs three or more settings)")
        return 0
    limit = min(MAP_LIMIT, targets.account_concurrency(target) or MAP_LIMIT)
    print()
    for line in report.model_summary(model, min(settings), max(settings)):
        if line and not line.startswith("#"):
            print(line)
    print("setting  measured tickets/s  model tickets/s")
    for run in runs:
        predicted = model.throughput(run.max_concurrency or 1)
        print(f"{run.max_concurrency:>7}  {run.throughput or 0:>18.2f}  {predicted:>15.2f}")
    if args.target_throughput:
        n, x, reached = model.recommend(args.target_throughput, limit)
        verdict = "reaches" if reached else "cannot reach; best is"
        goal = f"for {args.target_throughput:g} tickets/s within concurrency {limit}"
        print(f"{goal}: max_concurrency {n} ({verdict} {x:.1f}/s)")
    print(f"report: {out / 'report.html'}")
    return 0
