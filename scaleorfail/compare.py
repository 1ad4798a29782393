"""`sof compare`: one row per run, side by side, with speed-up against a baseline run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tabulate import tabulate

from scaleorfail.analysis import STEP_ORDER, RunStats

COLUMNS = [
    ("label", "run"),
    ("target", "target"),
    ("profile", "profile"),
    ("max_concurrency", "max conc."),
    ("backend", "Embed on"),
    ("executions", "exec ok/failed"),
    ("tickets", "tickets"),
    ("wall_s", "wall s"),
    ("throughput", "tickets/s"),
    ("execution", "exec p50/p95/p99 s"),
    ("pre", "Preprocess p50/p95 ms"),
    ("embed", "Embed p50/p95 ms"),
    ("post", "Postprocess p50/p95 ms"),
    ("queue_wait_p95_s", "queue wait p95 s"),
    ("throttles", "throttles"),
    ("retries", "retries"),
    ("peak", "peak conc."),
    ("speedup", "speed-up"),
    ("efficiency", "efficiency"),
    ("little", "Little L (ratio)"),
    ("cost", "$/1k tickets"),
]


def with_baseline(runs: list[RunStats], baseline: str | None = None) -> RunStats | None:
    """Set speed-up and scaling efficiency against the baseline (default: lowest max_concurrency)."""
    candidates = [r for r in runs if r.throughput]
    if not candidates:
        return None
    if baseline:
        chosen = next((r for r in runs if baseline in (r.run_id, r.label)), None)
        if chosen is None:
            from scaleorfail.errors import UserError

            raise UserError(f"no run {baseline!r} to use as the baseline", "pass a run id or label from the table")
    else:
        chosen = min(candidates, key=lambda r: (r.max_concurrency or 10**6, r.run_id))
    for run in runs:
        if run.throughput and chosen.throughput:
            run.speedup = round(run.throughput / chosen.throughput, 3)
            if run.max_concurrency and chosen.max_concurrency:
                run.efficiency = round(run.speedup / (run.max_concurrency / chosen.max_concurrency), 3)
    return chosen


def _num(value: float | None, digits: int = 1, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"


def row(run: RunStats) -> dict[str, str]:
    steps = [run.step_ms.get(s, {}) for s in STEP_ORDER]
    little = "-" if run.little_l is None else f"{run.little_l:.1f} ({run.little_ratio:.2f})"
    if run.little_flag:
        little += " !"
    return {
        "label": run.label,
        "target": run.target,
        "profile": run.profile,
        "max_concurrency": "-" if run.max_concurrency is None else str(run.max_concurrency),
        "backend": "lambda"
        if run.embed_backend != "sagemaker"
        else f"endpoint (max {run.endpoint_max_concurrency if run.endpoint_max_concurrency else '?'})",
        "executions": f"{run.executions_ok}/{run.executions_failed}"
        + (f" +{run.executions_running} running" if run.executions_running else ""),
        "tickets": str(run.tickets),
        "wall_s": _num(run.wall_s, 1),
        "throughput": _num(run.throughput, 2),
        "execution": "/".join(_num(run.execution_ms.get(p), 1, 1000.0) for p in ("p50", "p95", "p99")),
        "pre": f"{_num(steps[0].get('p50'), 0)}/{_num(steps[0].get('p95'), 0)}",
        "embed": f"{_num(steps[1].get('p50'), 0)}/{_num(steps[1].get('p95'), 0)}",
        "post": f"{_num(steps[2].get('p50'), 0)}/{_num(steps[2].get('p95'), 0)}",
        "queue_wait_p95_s": _num(run.queue_wait_ms.get("p95"), 1, 1000.0),
        "throttles": str(run.throttles)
        + (f" + {run.endpoint_throttles} rejected" if run.embed_backend == "sagemaker" else ""),
        "retries": str(run.retries),
        "peak": str(run.peak_concurrency),
        "speedup": "-" if run.speedup is None else f"{run.speedup:.2f}x",
        "efficiency": "-" if run.efficiency is None else f"{run.efficiency * 100:.0f}%",
        "little": little,
        "cost": "-"
        if run.cost is None or run.cost.usd_per_1000_tickets is None
        else f"{run.cost.usd_per_1000_tickets:.4f}",
    }


def table(runs: list[RunStats], fmt: str = "simple") -> str:
    rows = [row(r) for r in runs]
    return tabulate([[r[k] for k, _ in COLUMNS] for r in rows], headers=[h for _, h in COLUMNS], tablefmt=fmt)


def footnotes(runs: list[RunStats], baseline: RunStats | None) -> list[str]:
    notes = []
    if baseline is not None:
        notes.append(f"speed-up and efficiency against {baseline.label} (max_concurrency {baseline.max_concurrency})")
    timings = sorted({r.timing or "unknown" for r in runs if r.target == "local"})
    if timings:
        notes.append(
            f"emulator timing profile: {', '.join(timings)}"
            + (
                " - runs of different profiles are not comparable (speed-ups included)"
                if len(timings) > 1
                else " (aws: calibrated to the workshop's AWS run; ideal: no modelled latency; docs/emulator.md)"
            )
        )
    notes.append("throttles, retries and peak conc. (tasks running at once) come from the histories")
    notes.append(
        "Little L = throughput x mean item latency; (ratio) = L / effective Map concurrency; "
        "! flags a measurement problem"
    )
    if any(r.embed_backend == "sagemaker" for r in runs):
        notes.append(
            "Embed on an endpoint: a request above its MaxConcurrency is rejected (ThrottlingException), not queued; "
            "'rejected' counts those attempts, the Map's own queue shows in queue wait"
        )
    for run in runs:
        if run.little_flag:
            notes.append(f"{run.label}: {run.little_flag}")
        if run.final_errors:
            errors = ", ".join(f"{k} x{v}" for k, v in run.final_errors.items())
            notes.append(f"{run.label}: failed executions ended with {errors}")
        cw = run.cloudwatch_throttles
        if cw is not None and int(cw) != run.throttles:
            notes.append(
                f"{run.label}: CloudWatch counted {int(cw)} throttles in the run's minutes (other traffic in the same "
                f"minutes counts too), the histories {run.throttles}"
            )
        if run.missing or run.failed_starts:
            notes.append(f"{run.label}: {run.missing} executions missing, {run.failed_starts} failed to start")
        if run.pending:
            notes.append(
                f"{run.label}: partial - {', '.join(run.pending)}; its numbers will change on the next harvest"
            )
    return notes


def write(runs: list[RunStats], baseline: RunStats | None, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = footnotes(runs, baseline)
    paths = {
        "md": out_dir / "comparison.md",
        "csv": out_dir / "comparison.csv",
        "json": out_dir / "comparison.json",
    }
    paths["md"].write_text(table(runs, "github") + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([key for key, _ in COLUMNS])
    for run in runs:
        values = row(run)
        writer.writerow([values[key] for key, _ in COLUMNS])
    paths["csv"].write_text(buffer.getvalue())
    document: dict[str, Any] = {
        "baseline": baseline.run_id if baseline else None,
        "runs": [r.to_json() for r in runs],
        "notes": notes,
    }
    paths["json"].write_text(json.dumps(document, indent=2) + "\n")
    return paths
