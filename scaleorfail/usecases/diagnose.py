"""Diagnose a run: its RCA from its harvest record alone (the evidence was frozen at harvest)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from scaleorfail.evidence import analysis, rca
from scaleorfail.record.model import HarvestRecord, Logs
from scaleorfail.usecases.harvest import harvest_runs


def diagnose_run(
    run_dir: Path, use_logs: bool = True, quiet: bool = False, record: HarvestRecord | None = None
) -> rca.Diagnosis:
    """Classify a run; `record` is its harvest when the caller already has it. No API call after the harvest."""
    if record is None:
        (record,) = harvest_runs([str(run_dir)], quiet=quiet)
    if not use_logs:
        record = dataclasses.replace(record, logs=Logs(problems=("left out (--no-logs)",)))
    return rca.diagnose(record, analysis.stats(record))
