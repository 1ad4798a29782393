"""`sof compare`: one row per run, side by side, with speed-up against a baseline run.

The terminal table fits 120 columns (NARROW: the columns that tell the story; a long run
name is shortened in its middle); ``--wide`` prints every column, as the Markdown, CSV and
JSON files always have. Speed-up and efficiency are only computed between runs of the same
ticket count (a 200-ticket burst is not a 500-ticket one: cold starts and the ramp weigh
differently) unless asked with ``mixed_tickets``. Where a label repeats, the run id tells
the rows apart.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import tabulate as tabulate_module
from tabulate import tabulate

from scaleorfail.errors import UserError
from scaleorfail.evidence.analysis import STEP_ORDER, RunStats

WIDTH = 120
NO_SPEEDUP = "no speed-up"

COLUMNS = [
    ("label", "run"),
    ("target", "target"),
    ("profile", "profile"),
    ("max_concurrency", "max conc."),
    ("map_mode", "Map"),
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
# The terminal default: what the workshop's comparison needs, in 120 columns.
NARROW = [
    ("label", "run"),
    ("max_concurrency", "max conc."),
    ("map_mode", "Map"),
    ("executions", "ok/failed"),
    ("tickets", "tickets"),
    ("wall_s", "wall s"),
    ("throughput", "tickets/s"),
    ("queue_wait_p95_s", "wait p95 s"),
    ("throttles", "throttles"),
    ("peak", "peak"),
    ("speedup", "speed-up"),
    ("efficiency", "eff."),
]
NARROW_NOTE = (
    "wait p95 s: the Map's queue wait p95; peak: most invocations running at once; eff.: scaling efficiency "
    "(sof compare --wide, or comparison.md, for every column)"
)


def with_baseline(runs: list[RunStats], baseline: str | None = None, mixed_tickets: bool = False) -> RunStats | None:
    """Set speed-up and scaling efficiency against the baseline (default: lowest max_concurrency).

    Only runs of the baseline's ticket count get them, unless mixed_tickets: the others say why not.
    """
    candidates = [r for r in runs if r.throughput]
    if not candidates:
        return None
    if baseline:
        chosen = next((r for r in runs if baseline in (r.run_id, r.label)), None)
        if chosen is None:
            raise UserError(f"no run {baseline!r} to use as the baseline", "pass a run id or label from the table")
    else:
        sizes = Counter(r.tickets for r in candidates)
        common = max(sizes, key=lambda size: (sizes[size], size))  # the usual burst; ties: the bigger one
        chosen = min(
            candidates, key=lambda r: (r.tickets != common and not mixed_tickets, r.max_concurrency or 10**6, r.run_id)
        )
    for run in runs:
        run.speedup = run.efficiency = None
        run.notes[:] = [n for n in run.notes if not n.startswith(NO_SPEEDUP)]
        if not (run.throughput and chosen.throughput):
            continue
        if run.tickets != chosen.tickets and not mixed_tickets:
            run.notes.append(
                f"{NO_SPEEDUP} against {chosen.label}: {run.tickets} tickets here, {chosen.tickets} there - bursts of "
                "different sizes are not comparable (cold starts and the ramp weigh differently); "
                "--mixed-tickets computes it anyway"
            )
            continue
        run.speedup = round(run.throughput / chosen.throughput, 3)
        if run.max_concurrency and chosen.max_concurrency:
            run.efficiency = round(run.speedup / (run.max_concurrency / chosen.max_concurrency), 3)
    return chosen


def display_names(runs: list[RunStats]) -> dict[str, str]:
    """What the run column shows: the label, or the run id where the label repeats."""
    counts = Counter(r.label for r in runs)
    return {r.run_id: r.run_id if counts[r.label] > 1 else r.label for r in runs}


def _num(value: float | None, digits: int = 1, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"


def row(run: RunStats, name: str | None = None) -> dict[str, str]:
    steps = [run.step_ms.get(s, {}) for s in STEP_ORDER]
    little = "-" if run.little_l is None else f"{run.little_l:.1f} ({run.little_ratio:.2f})"
    if run.little_flag:
        little += " !"
    return {
        "label": name or run.label,
        "target": run.target,
        "profile": run.profile,
        "max_concurrency": "-" if run.max_concurrency is None else str(run.max_concurrency),
        "map_mode": "inline" if run.map_mode != "distributed" else "dist",
        "backend": "lambda"
        if run.embed_backend != "sagemaker"
        else f"endpoint (max {run.endpoint_max_concurrency if run.endpoint_max_concurrency else '?'})",
        "executions": f"{run.executions_ok}/{run.executions_failed}"
        + (f" +{run.executions_running} running" if run.executions_running else "")
        + (f" !{run.missing} LOST" if run.missing else ""),
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
        "peak": f"{run.peak_concurrency}{'' if run.peak_from_logs else '*'}",
        "speedup": "-" if run.speedup is None else f"{run.speedup:.2f}x",
        "efficiency": "-" if run.efficiency is None else f"{run.efficiency * 100:.0f}%",
        "little": little,
        "cost": "-"
        if run.cost is None or run.cost.usd_per_1000_tickets is None
        else f"{run.cost.usd_per_1000_tickets:.4f}",
    }


def table(runs: list[RunStats], fmt: str = "simple", wide: bool | None = None, width: int = WIDTH) -> str:
    """The comparison table: in the terminal's format (simple) the NARROW columns fitted to `width`
    characters unless `wide`; in the others (Markdown, HTML ...) every column."""
    if wide is None:
        wide = fmt != "simple"
    names = display_names(runs)
    rows = [row(r, names[r.run_id]) for r in runs]
    columns = COLUMNS if wide else NARROW
    text = _tabulate(rows, columns, fmt)
    if wide or _width(text) <= width:
        return text
    longest = max((len(r["label"]) for r in rows), default=0)
    room = max(8, longest - (_width(text) - width))
    for r in rows:
        r["label"] = shorten(r["label"], room)
    return _tabulate(rows, columns, fmt)


def _tabulate(rows: list[dict[str, str]], columns: list[tuple[str, str]], fmt: str) -> str:
    """The table; in the terminal's format without tabulate's extra padding of the headers (MIN_PADDING)."""
    padding = tabulate_module.MIN_PADDING
    if fmt == "simple":
        tabulate_module.MIN_PADDING = 0
    try:
        return tabulate([[r[k] for k, _ in columns] for r in rows], headers=[h for _, h in columns], tablefmt=fmt)
    finally:
        tabulate_module.MIN_PADDING = padding


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def shorten(text: str, room: int) -> str:
    """Cut the middle out of a long name (a run id keeps its timestamp and its random end)."""
    if len(text) <= room:
        return text
    head = (room - 1) // 2 + (room - 1) % 2
    return f"{text[:head]}~{text[len(text) - (room - 1 - head) :]}"


def footnotes(runs: list[RunStats], baseline: RunStats | None) -> list[str]:
    notes = []
    if baseline is not None:
        notes.append(
            f"speed-up and efficiency against {baseline.label} (max_concurrency {baseline.max_concurrency}, "
            f"{baseline.tickets} tickets)"
        )
    repeated = sorted({r.label for r in runs if display_names(runs)[r.run_id] != r.label})
    if repeated:
        notes.append(f"label(s) {', '.join(repeated)} repeat: those rows show their run id")
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
    notes.append(
        "throttles and retries come from the histories; peak: most Lambda invocations between their START and END "
        "log lines at once, where the concurrency limit applies"
        + (
            " (runs marked * had no such lines: their histories' task windows, which also hold dispatch and the "
            "history write)"
            if any(not r.peak_from_logs for r in runs)
            else ""
        )
    )
    if any(r.map_mode == "distributed" for r in runs):
        children = ", ".join(f"{r.label} {r.child_executions:,}" for r in runs if r.map_mode == "distributed")
        notes.append(
            "Map: inline = every ticket in its execution's one history (at most 40 at once); dist = a Distributed "
            f"Map, each ticket (or batch) a child execution with its own history - children: {children}; its "
            "queue wait is a child's start after the Map Run's, its cost counts the children"
        )
    notes.append(
        "Little L = throughput x mean item latency; (ratio) = L / effective Map concurrency; "
        "! flags a measurement problem"
    )
    if any(r.embed_backend == "sagemaker" for r in runs):
        notes.append(
            "Embed on an endpoint: a request above its MaxConcurrency is rejected (ThrottlingException), not queued; "
            "'rejected' counts those attempts, the Map's own queue shows in queue wait"
        )
    names = display_names(runs)
    for run in runs:
        notes += [f"{names[run.run_id]}: {note}" for note in run.notes]
        if run.little_flag:
            notes.append(f"{run.label}: {run.little_flag}")
        if run.final_errors:
            errors = ", ".join(f"{k} x{v}" for k, v in run.final_errors.items())
            notes.append(f"{run.label}: failed executions ended with {errors}")
        cw = run.cloudwatch_throttles
        if cw is not None and int(cw) != run.throttles:
            shared = (
                f"; {run.metrics_shared_with} other execution(s) of the state machine ran in those minutes"
                if run.metrics_shared_with
                else ""
            )
            notes.append(
                f"{run.label}: CloudWatch counted {int(cw)} throttles in the run's minutes (other traffic in the same "
                f"minutes counts too{shared}), the histories {run.throttles}: the table shows the histories'"
            )
        if run.missing or run.failed_starts:
            throttled = (
                f" ({run.throttled_starts} throttled: StartExecution's quota, ThrottlingException)"
                if run.throttled_starts
                else ""
            )
            notes.append(
                f"{run.label}: {run.missing} executions missing, {run.failed_starts} failed to start{throttled}"
                + (" - its numbers leave the lost executions out (LOST)" if run.missing else "")
            )
        if run.start_pace is not None and run.start_pace.short:
            notes.append(f"{run.label}: starts fell short - {run.start_pace.sentence()}")
        if run.pending:
            notes.append(
                f"{run.label}: partial - {', '.join(run.pending)}; its numbers will change on the next harvest"
            )
    return notes


def lost(runs: list[RunStats]) -> list[str]:
    """One line per run whose executions were lost: its row cannot be trusted (`sof compare` exits 1)."""
    return [
        f"run {run.label}: {run.missing} execution(s) lost ({run.executions_ok} ok, {run.executions_failed} failed "
        "harvested): its row leaves them out - see `sof harvest` for why"
        for run in runs
        if run.missing
    ]


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
    writer.writerow(["run_id", *(key for key, _ in COLUMNS)])
    for run in runs:
        values = row(run)
        writer.writerow([run.run_id, *(values[key] for key, _ in COLUMNS)])
    paths["csv"].write_text(buffer.getvalue())
    document: dict[str, Any] = {
        "baseline": baseline.run_id if baseline else None,
        "runs": [r.to_json() for r in runs],
        "notes": notes,
    }
    paths["json"].write_text(json.dumps(document, indent=2) + "\n")
    return paths
