"""Compare runs: which runs, their statistics in max_concurrency order, the baseline, the report files.

By default `sof compare` and `sof report` take the latest run of each label in runs/ (a
label run twice is the same experiment repeated: the newer one counts); `--all` takes every
run, `--last N` the N newest, and named runs are taken as given.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NamedTuple

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.evidence import analysis, compare, scaling
from scaleorfail.harvest import collect
from scaleorfail.record.model import HarvestRecord
from scaleorfail.terminal import hint
from scaleorfail.usecases.harvest import harvest_runs


class Compared(NamedTuple):
    runs: list[analysis.RunStats]
    records: list[HarvestRecord]
    baseline: analysis.RunStats | None


def _identity(run_dir: Path) -> tuple[str, str]:
    """A run's label and start time from its manifest (the folder's name when it cannot be read)."""
    try:
        data = json.loads((run_dir / "manifest.json").read_text())
        return str(data.get("label") or run_dir.name), str(data.get("started_at") or "")
    except (OSError, ValueError, AttributeError):
        return run_dir.name, ""


def latest_per_label(run_dirs: list[Path]) -> list[Path]:
    """The newest run of each label, in the order of the runs given."""
    newest: dict[str, tuple[str, Path]] = {}
    for run_dir in run_dirs:
        label, started = _identity(run_dir)
        if label not in newest or (started, run_dir.name) > (newest[label][0], newest[label][1].name):
            newest[label] = (started, run_dir)
    kept = {path for _, path in newest.values()}
    return [d for d in run_dirs if d in kept]


def select(selectors: list[str], last: int | None = None, every: bool = False) -> list[str]:
    """The runs to compare: those named; else the `last` newest; else every run (`every`) or the latest per label."""
    if selectors:
        return selectors
    found = collect.run_dirs([], paths.runs_dir())
    if last:
        found = sorted(found, key=lambda d: (d / "manifest.json").stat().st_mtime)[-last:]
    elif not every:
        found = latest_per_label(found)
    return [str(d) for d in found]


def compare_records(
    selectors: list[str],
    wait_s: float = 900.0,
    quiet: bool = False,
    baseline: str | None = None,
    skipped: list[str] | None = None,
    mixed_tickets: bool = False,
    named: bool = False,
) -> Compared:
    """Harvest (or read the caches of) runs: their stats and records by max_concurrency, and the baseline
    (with `named`, the runs were named by the learner: the first one named is the baseline).

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
            problem = f"{record.run_id}: skipped: its harvest record is damaged ({type(error).__name__}: {error})"
            if skipped is None:
                raise UserError(problem, f"re-harvest it: {hint('sof harvest --refresh ' + record.run_id)}") from None
            skipped.append(problem + f" - re-harvest it: {hint('sof harvest --refresh ' + record.run_id)}")
            print(skipped[-1], file=sys.stderr)
    if not runs and skipped:
        raise UserError("no run could be compared", "see the lines above")
    order = sorted(range(len(runs)), key=lambda i: (runs[i].max_concurrency or 0, runs[i].run_id))
    ordered_runs = [runs[i] for i in order]
    ordered_records = [usable[i] for i in order]
    first = runs[0].run_id if named and runs else None
    chosen = compare.with_baseline(ordered_runs, baseline, mixed_tickets, first)
    return Compared(ordered_runs, ordered_records, chosen)


def fit_model(runs: list[analysis.RunStats]) -> scaling.USL | None:
    """The Universal Scalability Law fitted to the runs' throughput by max_concurrency (one map mode:
    the inline runs when they mix; three settings or more; a run the emulator itself paced is left out)."""
    if len({r.map_mode for r in runs}) > 1:
        runs = [r for r in runs if r.map_mode == "inline"]
    runs = [r for r in runs if not r.emulator_flag]  # the emulator's ceiling, not the service's curve
    points = {r.max_concurrency: r.throughput for r in runs if r.max_concurrency and r.throughput}
    if len(points) < 3:
        return None
    return scaling.fit(sorted(points.items()))


def write_report(compared: Compared, model: scaling.USL | None, out: Path) -> dict[str, Path]:
    """The report (Markdown, plots, HTML) and the comparison files, in one folder."""
    from scaleorfail.evidence import report

    written = report.build(compared.runs, compared.records, compared.baseline, model, out)
    compare.write(compared.runs, compared.baseline, out)
    return written


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
