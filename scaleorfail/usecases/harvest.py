"""Harvest runs: their records, from the cache when final, else read from the target."""

from __future__ import annotations

import sys

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.harvest import collect
from scaleorfail.record.manifest import journal_problems
from scaleorfail.record.model import HarvestRecord
from scaleorfail.terminal import fill


def harvest_runs(
    selectors: list[str],
    refresh: bool = False,
    wait_s: float = 900.0,
    quiet: bool = False,
    skipped: list[str] | None = None,
    wait_metrics: bool = False,
    damaged: list[str] | None = None,
) -> list[HarvestRecord]:
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
            unreadable = collect.harvest_path(run_dir).exists() and collect.read_any(run_dir) is None
            why = (
                "its harvest record is damaged or of another version, and it cannot be harvested again: "
                if unreadable
                else ""
            )
            skipped.append(f"{run_dir.name}: skipped: {why}{error.cause}" + (f" ({error.fix})" if error.fix else ""))
            print(fill(skipped[-1]), file=sys.stderr)
            continue
        records.append(record)
        for problem in journal_problems(run_dir):  # one line each: the records on those lines are not in the harvest
            line = f"{run_dir.name}: damaged journal: {problem}"
            print(line, file=sys.stderr)
            if damaged is not None:
                damaged.append(line)
        if not quiet:
            print(fill(summary_line(record, cached is not None)), file=sys.stderr)
    return records


def summary_line(record: HarvestRecord, cached: bool) -> str:
    recon = record.reconciliation
    statuses = ", ".join(f"{n} {s}" for s, n in recon.harvested_by_status.items()) or "no executions"
    calls = f"{sum(record.api_calls.values())} API calls"  # each call by name: api_calls in harvest.json
    if recon.missing:
        reasons = sorted({m.reason for m in recon.missing})
        balance = f"{len(recon.missing)} missing ({'; '.join(reasons)[:300]})"
    else:
        balance = "reconciled" if recon.balanced else "NOT reconciled"
    source = "cached" if cached else f"harvested in {record.harvest_seconds:.1f} s, {calls}"
    line = f"{record.run_id}: {statuses}; {balance}; {source}"
    if not record.final:
        line += f"; partial: {', '.join(record.pending)} - not cached, read again on the next harvest"
    return line
