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

from scaleorfail import terminal
from scaleorfail.errors import UserError
from scaleorfail.evidence.analysis import STEP_ORDER, RunStats

NO_SPEEDUP = "no speed-up"

COLUMNS = [
    ("label", "run"),
    ("target", "target"),
    ("profile", "profile"),
    ("max_concurrency", "max conc."),
    ("map_mode", "Map"),
    ("backend", "Embed on"),
    ("executions", "exec ok/failed"),
    ("rejected", "rejected"),
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
# The terminal default from 100 columns: what the workshop's comparison needs, in 120 columns.
NARROW = [
    ("label", "run"),
    ("max_concurrency", "max conc."),
    ("map_mode", "Map"),
    ("executions", "ok/failed"),
    ("rejected", "rejected"),
    ("tickets", "tickets"),
    ("wall_s", "wall s"),
    ("throughput", "tickets/s"),
    ("queue_wait_p95_s", "wait p95 s"),
    ("throttles", "throttles"),
    ("peak", "peak"),
    ("speedup", "speed-up"),
    ("efficiency", "eff."),
]
# Under 100 columns: headers on two lines, peak left to --wide; fits 80 columns with a 12-character run name.
SMALL = [
    ("label", "run"),
    ("max_concurrency", "max\nconc."),
    ("executions", "ok/\nfailed"),
    ("rejected", "rejec-\nted"),
    ("tickets", "tickets"),
    ("wall_s", "wall\ns"),
    ("throughput", "tickets\n/s"),
    ("queue_wait_p95_s", "wait\np95 s"),
    ("throttles", "throt-\ntles"),
    ("speedup", "speed\n-up"),
    ("efficiency", "eff."),
]
LEFT = {"label", "target", "profile", "backend", "executions", "execution", "pre", "embed", "post", "little"}
NARROW_NOTE = (
    "wait p95 s: the Map's queue wait p95; peak: most invocations running at once; eff.: scaling efficiency "
    "(`sof compare --wide`, or comparison.md, for every column)"
)
SMALL_NOTE = (
    "wait p95 s: the Map's queue wait p95; throttles: task attempts refused with 429; eff.: scaling efficiency "
    "(`sof compare --wide`, or comparison.md, for every column)"
)


def narrow_note(columns: int | None = None) -> str:
    note = SMALL_NOTE if terminal.narrow(columns) else NARROW_NOTE
    return note.replace("sof compare", f"{terminal.sof()} compare")


def failed(run: RunStats) -> str | None:
    """Why a run cannot be a baseline (None: it can): a failed execution, or nothing processed."""
    if run.executions_failed:
        total = run.executions_ok + run.executions_failed + run.executions_running
        return f"{run.executions_failed} of its {total} execution(s) failed"
    if not run.throughput:
        return "it processed no ticket"
    return None


def with_baseline(
    runs: list[RunStats], baseline: str | None = None, mixed_tickets: bool = False, first: str | None = None
) -> RunStats | None:
    """Set speed-up and scaling efficiency against the baseline, and return it.

    The baseline is the run asked for (`baseline`: refused when it failed), else the first run named
    (`first`, a run id), else the lowest max_concurrency (the newest of those, of the usual ticket
    count); a run with a failed execution is never chosen. Only runs of the baseline's ticket count
    get a speed-up, unless mixed_tickets: the others say why not.
    """
    for run in runs:
        run.speedup = run.efficiency = None
        run.baseline_reason = ""
        run.notes[:] = [n for n in run.notes if not n.startswith(NO_SPEEDUP)]
    if baseline:
        chosen = next((r for r in runs if baseline in (r.run_id, r.label)), None)
        if chosen is None:
            raise UserError(f"no run {baseline!r} to use as the baseline", "pass a run id or label from the table")
        why = failed(chosen)
        if why:
            raise UserError(
                f"{chosen.label} cannot be the baseline: {why}",
                "choose a run whose executions all succeeded (`--baseline RUN`), or leave the choice to compare",
            )
        chosen.baseline_reason = "asked for with --baseline"
    else:
        candidates = [r for r in runs if failed(r) is None]
        if not candidates:
            return None
        named = next((r for r in candidates if r.run_id == first), None) if first else None
        if named is not None:
            chosen, chosen.baseline_reason = named, "the first run named"
        else:
            sizes = Counter(r.tickets for r in candidates)
            common = max(sizes, key=lambda size: (sizes[size], size))  # the usual burst; ties: the bigger one
            newest_first = sorted(candidates, key=lambda r: r.run_id, reverse=True)  # run ids begin with the time
            chosen = min(
                newest_first, key=lambda r: (r.tickets != common and not mixed_tickets, r.max_concurrency or 10**6)
            )
            chosen.baseline_reason = "the lowest max_concurrency" + (
                " (the newest of those)" if sum(r.max_concurrency == chosen.max_concurrency for r in candidates) > 1
                else ""
            )  # fmt: skip
    for run in runs:
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
        "rejected": str(run.tickets_rejected),
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


def table(runs: list[RunStats], fmt: str = "simple", wide: bool | None = None, width: int | None = None) -> str:
    """The comparison table: in the terminal's format (simple) fitted to `width` characters (default: the
    terminal's) - the NARROW columns from 100 columns, the SMALL ones below - unless `wide`; in the
    others (Markdown, HTML ...) every column. The rejected column shows only where a run has rejected tickets,
    the Map column only where a run used a Distributed Map."""
    if wide is None:
        wide = fmt != "simple"
    columns_wide = width or terminal.width()
    names = display_names(runs)
    rows = [row(r, names[r.run_id]) for r in runs]
    small = not wide and terminal.narrow(columns_wide)
    columns = COLUMNS if wide else SMALL if small else NARROW
    if not wide:
        columns = _story(columns, runs)
    if small:
        for r, run in zip(rows, runs, strict=True):  # the endpoint's refusals as +N in the narrow column
            r["throttles"] = str(run.throttles) + (f"+{run.endpoint_throttles}" if run.endpoint_throttles else "")
    tight = terminal.tighten if small and fmt == "simple" else str  # one space between columns under 100
    text = tight(_tabulate(rows, columns, fmt))
    if wide or fmt != "simple" or _width(text) <= columns_wide:
        return text
    longest = max((len(r["label"]) for r in rows), default=0)
    room = max(8, longest - (_width(text) - columns_wide))
    for r, short in zip(rows, shorten_all([r["label"] for r in rows], room), strict=True):
        r["label"] = short
    return tight(_tabulate(rows, columns, fmt))


def page_tables(runs: list[RunStats], fmt: str = "html") -> tuple[str, str]:
    """The comparison for a page: the NARROW columns, then the rest beside each run's name - each one fits
    a 1,400-pixel page, where all 22 columns in one table did not."""
    names = display_names(runs)
    rows = [row(r, names[r.run_id]) for r in runs]
    details = [COLUMNS[0], *(c for c in COLUMNS if c not in NARROW)]
    return _tabulate(rows, _story(NARROW, runs), fmt), _tabulate(rows, details, fmt)


def _story(columns: list[tuple[str, str]], runs: list[RunStats]) -> list[tuple[str, str]]:
    """The columns without those that tell nothing here: rejected when nothing was, Map when every Map was inline."""
    hidden = {"rejected"} if not any(r.tickets_rejected for r in runs) else set()
    if all(r.map_mode != "distributed" for r in runs):
        hidden.add("map_mode")
    return [c for c in columns if c[0] not in hidden]


def _tabulate(rows: list[dict[str, str]], columns: list[tuple[str, str]], fmt: str) -> str:
    """The table, numbers as printed (9.0 stays 9.0) and right-aligned; in the terminal's format without
    tabulate's extra padding of the headers (MIN_PADDING)."""
    padding = tabulate_module.MIN_PADDING
    if fmt == "simple":
        tabulate_module.MIN_PADDING = 0
    try:
        return str(
            tabulate(
                [[r[k] for k, _ in columns] for r in rows],
                headers=[h for _, h in columns],
                tablefmt=fmt,
                disable_numparse=True,
                colalign=["left" if k in LEFT else "right" for k, _ in columns],
            )
        )
    finally:
        tabulate_module.MIN_PADDING = padding


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def shorten_all(names: list[str], room: int) -> list[str]:
    """Names cut to `room` characters that still tell the rows apart: the middle cut out, else the start."""
    middle = [shorten(name, room) for name in names]
    if len(set(middle)) == len(set(names)):
        return middle
    return [name if len(name) <= room else "~" + name[len(name) - room + 1 :] for name in names]


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
            f"{baseline.tickets} tickets): the baseline, {baseline.baseline_reason or 'chosen'} (`--baseline RUN` "
            "for another)"
        )
    unfit = [f"{r.label} ({why})" for r in runs if (why := failed(r)) and r is not baseline]
    if unfit:
        notes.append(f"not a baseline: {', '.join(unfit)}")
    if any(r.tickets_rejected for r in runs):
        notes.append("rejected: tickets set aside as REJECTED by the quarantine policy (bad input); the batch went on")
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
        if run.emulator_flag:
            notes.append(
                f"{run.label}: {run.emulator_flag} - {run.emulator_flag_why}; its numbers are not AWS's behaviour "
                "(a scaling fit leaves it out)"
            )
        if run.pending:
            notes.append(
                f"{run.label}: partial - {', '.join(run.pending)}; its numbers will change on the next harvest"
            )
    return notes


def lost(runs: list[RunStats]) -> list[str]:
    """One line per run whose executions were lost: its row cannot be trusted (`sof compare` exits 1)."""
    return [
        f"run {run.label}: {run.missing} execution(s) lost ({run.executions_ok} ok, {run.executions_failed} failed "
        f"harvested): its row leaves them out - {terminal.hint(f'sof harvest {run.label}')} says why"
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
