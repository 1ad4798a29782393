"""The lab's own pages: runs/ as the console shows it, with the evidence code's numbers.

Everything here reads what the other commands wrote: the run manifests (scaleorfail.runs),
the harvest records (scaleorfail.harvest.store), and computes nothing new - the comparison
rows are scaleorfail.compare's, the RCA is scaleorfail.rca's, the plots scaleorfail.report's.
A live run's progress uses the load harness's own arithmetic (scaleorfail.load.progress)
on the console's cached history of its execution, so the page and the progress lines agree.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from scaleorfail import paths, runs
from scaleorfail.console import markdown
from scaleorfail.console.executions import Executions
from scaleorfail.errors import UserError
from scaleorfail.load import progress
from scaleorfail.record.manifest import Manifest
from scaleorfail.record.manifest import load as load_manifest

PLOTS = ("timeline", "latency", "throttles", "throughput")


def listing() -> list[dict[str, Any]]:
    found = runs.listing(paths.runs_dir())
    return [
        {
            "run_id": info.run_id,
            "label": info.label,
            "status": info.status,
            "profile": info.profile,
            "target": info.target,
            "executions": info.executions,
            "tickets": info.tickets,
            "max_concurrency": info.max_concurrency,
            "started_at": info.started_at,
            "harvested": (info.path / "harvest.json").is_file(),
        }
        for info in reversed(found)
    ]


def run_dir(selector: str) -> Path:
    """A run id or label (its latest run); never a path given by the browser."""
    if not selector or "/" in selector or selector.startswith("."):
        raise UserError(f"no run {selector!r}", "open /runs for the list")
    return runs.resolve(selector, paths.runs_dir())


def _epoch(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(str(iso)).timestamp() if iso else None
    except ValueError:
        return None


class LivePace:
    """One Pace per live run: the ETA over the last half minute, as the harness computes it."""

    def __init__(self) -> None:
        self.paces: dict[str, progress.Pace] = {}

    def of(self, run_id: str) -> progress.Pace:
        return self.paces.setdefault(run_id, progress.Pace())


def live_progress(manifest: Manifest, executions: Executions, paces: LivePace) -> dict[str, Any] | None:
    """A running run's progress, the same numbers as its progress lines; None when it is not running."""
    if manifest.status != "running":
        return None
    started_at = _epoch(manifest.started_at) or time.time()
    elapsed = max(0.0, time.time() - started_at)
    pace = paces.of(manifest.run_id)
    single = manifest.profile == "single-batch"
    if single and manifest.executions:
        first = manifest.executions[0]
        tracked = executions.get(first.arn)
        model = tracked.model
        counts = progress.MapCounts()
        for run in model.maps.values():
            counts.started += len(run.iterations)
            counts.ended += sum(run.ended.values())
            counts.failed += run.ended["failed"] + run.ended["aborted"]
        if model.status != "RUNNING":
            counts.execution_end = {
                "SUCCEEDED": "ExecutionSucceeded",
                "FAILED": "ExecutionFailed",
                "TIMED_OUT": "ExecutionTimedOut",
                "ABORTED": "ExecutionAborted",
            }.get(model.status)
        snapshot = progress.batch_snapshot(counts, first.batch_size, elapsed, pace)
    elif single:
        return {"line": "waiting for the execution to start", "snapshot": None}
    else:
        planned = int(manifest.parameters.get("executions_planned") or len(manifest.executions))
        seen = len(manifest.finished) if manifest.completion_tracking else len(manifest.executions)
        snapshot = progress.stream_snapshot(
            planned, len(manifest.executions), len(manifest.failed_starts), seen, elapsed, pace
        )
    return {"line": progress.render(snapshot), "snapshot": snapshot.__dict__ | {"complete": snapshot.complete}}


def detail(selector: str, executions: Executions, paces: LivePace) -> dict[str, Any]:
    directory = run_dir(selector)
    info = runs.read_info(directory)
    try:
        manifest = load_manifest(directory / runs.MANIFEST)
    except UserError as error:
        return {"run_id": info.run_id, "status": "unreadable", "problem": error.cause}
    out: dict[str, Any] = {
        "run_id": manifest.run_id,
        "label": manifest.label,
        "status": manifest.status,
        "profile": manifest.profile,
        "target": manifest.target,
        "region": manifest.region,
        "started_at": manifest.started_at,
        "stopped_at": manifest.stopped_at,
        "parameters": {k: v for k, v in manifest.parameters.items() if not isinstance(v, dict)},
        "notes": list(manifest.notes),
        "failure": manifest.failure,
        "executions": [
            {"name": e.name, "arn": e.arn, "started_at": e.started_at, "tickets": e.batch_size}
            for e in manifest.executions[:200]
        ],
        "executions_total": len(manifest.executions),
        "failed_starts": len(manifest.failed_starts),
        "finished": {f.name: f.status for f in manifest.finished[:200]},
    }
    try:
        out["progress"] = live_progress(manifest, executions, paces)
    except Exception as error:  # progress is a courtesy, as in the harness: the page still shows the run
        out["progress"] = {"line": f"progress unavailable: {error}", "snapshot": None}
    out |= evidence(directory)
    return out


def evidence(directory: Path) -> dict[str, Any]:
    """The harvest record's comparison row, RCA and plot names (nothing when not harvested)."""
    from scaleorfail.evidence import analysis, compare, rca
    from scaleorfail.harvest import store

    record = store.read_any(directory)
    if record is None:
        return {"harvested": False}
    stats = analysis.stats(record)
    compare.with_baseline([stats])
    diagnosis = rca.diagnose(record, stats)
    return {
        "harvested": True,
        "final": record.final,
        "pending": list(record.pending),
        "row": compare.row(stats),
        "columns": [[key, title] for key, title in compare.COLUMNS],
        "notes": list(stats.notes),
        "rca": {
            "classification": list(diagnosis.classification),
            "markdown": markdown.tree(rca.to_markdown(diagnosis)),
        },
        "plots": list(PLOTS[:3]),
    }


def comparison(selectors: list[str]) -> dict[str, Any]:
    from scaleorfail.evidence import analysis, compare
    from scaleorfail.harvest import store

    stats = []
    missing = []
    for selector in selectors[:12]:
        record = store.read_any(run_dir(selector))
        if record is None:
            missing.append(selector)
            continue
        stats.append(analysis.stats(record))
    stats.sort(key=lambda r: (r.max_concurrency or 0, r.run_id))
    baseline = compare.with_baseline(stats)
    names = compare.display_names(stats)
    return {
        "columns": [[key, title] for key, title in compare.COLUMNS],
        "rows": [compare.row(r, names[r.run_id]) | {"run_id": r.run_id} for r in stats],
        "notes": compare.footnotes(stats, baseline),
        "not_harvested": missing,
    }


def plot(selector: str, name: str) -> Path:
    """A run's plot as PNG, drawn by the report's code once and kept in .sof/console/plots/."""
    from scaleorfail.evidence import analysis, report
    from scaleorfail.harvest import store

    if name not in PLOTS:
        raise UserError(f"no plot {name!r}", f"one of {', '.join(PLOTS)}")
    directory = run_dir(selector)
    record = store.read_any(directory)
    if record is None:
        raise UserError(f"run {selector} is not harvested", f"sof harvest {selector}")
    out = paths.state_dir() / "console" / "plots" / directory.name
    target = out / f"{name}.png"
    source = directory / "harvest.json"
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    out.mkdir(parents=True, exist_ok=True)
    stats = [analysis.stats(record)]
    drawn = {
        "timeline": lambda: report.plot_timelines(stats, [record], target),
        "latency": lambda: report.plot_latency(stats, [record], target),
        "throttles": lambda: report.plot_throttles(stats, [record], target),
        "throughput": lambda: report.plot_throughput(stats, None, target),
    }[name]()
    if drawn is None:
        raise UserError(f"run {selector} has nothing to draw as {name}", "")
    return drawn
