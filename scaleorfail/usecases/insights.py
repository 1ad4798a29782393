"""The time window of a run for `sof insights --run RUN`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from scaleorfail.evidence import insights
from scaleorfail.harvest.collect import read_cached
from scaleorfail.record.manifest import load


def run_window(run_dir: Path) -> tuple[datetime, datetime]:
    """The harvested window of the run (2 s either side), else its manifest's start to 15 minutes after its end."""
    record = read_cached(run_dir)
    if record is not None:
        return insights.record_window(record)
    manifest = load(run_dir)
    start = datetime.fromisoformat(manifest.started_at) - timedelta(seconds=2)
    if manifest.stopped_at:
        stop = datetime.fromisoformat(manifest.stopped_at) + timedelta(minutes=15)
    else:
        stop = datetime.now(UTC)
    return start, stop
