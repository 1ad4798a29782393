"""`sof report`: the comparison as Markdown, PNG plots and one self-contained HTML page.

A pure function of the runs' harvest records. Plot labels never overprint: the latency
plot has one panel per run, the throughput points' values are staggered where points
are close, and a label that repeats is shown with its run id. The timeline panels share
one time axis (and both count axes), so the wall at c=2 is visibly longer than the fix.
"""

from __future__ import annotations

import base64
import html
import math
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from scaleorfail.evidence import analysis, compare, steps
from scaleorfail.evidence.analysis import RunStats
from scaleorfail.evidence.scaling import USL
from scaleorfail.markdown import to_html
from scaleorfail.pipeline import MAP_LIMIT, STEPS
from scaleorfail.record.model import HarvestRecord

DPI = 110


def save_figure(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def _title(text: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


MODE_STYLE = {"inline": ("tab:blue", "inline Map"), "distributed": ("tab:green", "Distributed Map")}


def plot_throughput(runs: list[RunStats], model: USL | None, path: Path) -> Path | None:
    """Throughput by max_concurrency, one measured line per map mode, the ideal line and the USL fit."""
    modes = sorted({r.map_mode for r in runs if r.max_concurrency and r.throughput})
    points = sorted((r.max_concurrency, r.throughput) for r in runs if r.max_concurrency and r.throughput)
    if not points:
        return None
    figure, axis = plt.subplots(figsize=(7, 4.2))
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    inline = [p for p in points if any(r.map_mode == "inline" and (r.max_concurrency, r.throughput) == p for r in runs)]
    base_c, base_x = (inline or points)[0]
    top = max(xs)
    ideal_x = list(range(1, top + 1))
    axis.plot(
        ideal_x, [base_x * c / base_c for c in ideal_x], "--", color="grey", label="ideal (linear from the lowest)"
    )
    if model is not None:
        curve = [model.throughput(c) for c in range(1, max(top, MAP_LIMIT) + 1)]
        fitted = " - inline" if len(modes) > 1 else ""
        how = f"through {model.points} points (exact)" if model.exact else f"(R² {model.r2:.2f})"
        fit = f"USL fit{fitted} {how}"
        axis.plot(range(1, len(curve) + 1), curve, color="tab:orange", label=fit)
    for mode in modes:
        mine = sorted(
            (r.max_concurrency, r.throughput) for r in runs if r.map_mode == mode and r.max_concurrency and r.throughput
        )
        color, name = MODE_STYLE.get(mode, ("tab:blue", mode))
        axis.plot(
            [p[0] for p in mine],
            [p[1] for p in mine],
            "o-",
            color=color,
            label="measured" if len(modes) == 1 else f"measured, {name}",
            zorder=3,
        )
    flagged = [
        (r.max_concurrency, r.throughput) for r in runs if r.emulator_flag and r.max_concurrency and r.throughput
    ]
    if flagged:  # measured, but the emulator's ceiling: circled, and left out of the fit
        axis.plot(
            [p[0] for p in flagged], [p[1] for p in flagged], "o", markersize=13, markerfacecolor="none",
            color="tab:red", label="emulator-bound (not AWS; left out of the fit)", zorder=4,
        )  # fmt: skip
    span = max(top, 10) + 1
    previous_x: float | None = None
    stagger = 0
    for x, y in points:  # values of points close together go above and below in turn, not on top of each other
        stagger = stagger + 1 if previous_x is not None and x - previous_x < span / 12 else 0
        offset = (4, -12) if stagger % 2 == 0 else (4, 6)
        axis.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=offset, fontsize=8)
        previous_x = x
    axis.set_xlabel("Map max_concurrency")
    axis.set_ylabel("throughput (tickets/s)")
    axis.set_title("Throughput vs max_concurrency")
    axis.set_xlim(0, span)
    axis.set_ylim(0, max(ys) * 1.6)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def plot_latency(runs: list[RunStats], records: list[HarvestRecord], path: Path) -> Path | None:
    """Per-step latency distributions, one panel per run (sharing the latency axis)."""
    names = compare.display_names(runs)
    panels: list[tuple[str, list[list[float]], list[str]]] = []
    for run, record in zip(runs, records, strict=True):
        visits = analysis.step_durations(record.items)
        steps = [step for step in STEPS if visits.get(step)]
        if steps:
            panels.append((names[run.run_id], [visits[step] for step in steps], steps))
    if not panels:
        return None
    figure, axes = plt.subplots(1, len(panels), figsize=(max(7.0, 2.8 * len(panels)), 4.4), sharey=True, squeeze=False)
    for axis, (name, data, steps) in zip(axes[0], panels, strict=True):
        axis.boxplot(data, showfliers=True, whis=(5, 95))
        axis.set_xticks(range(1, len(steps) + 1), steps, fontsize=7, rotation=30, ha="right")
        axis.set_title(_title(name, 24), fontsize=8)
        axis.set_yscale("log")
        axis.grid(alpha=0.3, axis="y")
    axes[0, 0].set_ylabel("state entered -> exited, retries included\n(ms, log scale, whiskers p5-p95)", fontsize=8)
    return save_figure(figure, path)


def plot_timelines(runs: list[RunStats], records: list[HarvestRecord], path: Path) -> Path | None:
    """Concurrency against the knob (left axis) and the Map's queue (right axis), one panel per run.

    Every panel shares the time scale and both count scales, so the wall at c=2 is visibly longer
    than the fix at c=10, and each run's concurrency is drawn against its own max_concurrency.
    """
    if not records:
        return None
    figure, axes = plt.subplots(
        len(records), 1, figsize=(10, 2.6 * len(records)), squeeze=False, sharex=True, sharey=True
    )
    queue_axes: list[Any] = []
    names = compare.display_names(runs)
    for axis, run, record in zip(axes[:, 0], runs, records, strict=True):
        series = analysis.timeline(record)
        axis.step(series["t_s"], series["tasks"], where="post", label="running Lambda tasks", color="tab:blue")
        axis.step(
            series["t_s"], series["in_flight"], where="post", label="items in flight", color="tab:green", alpha=0.7
        )
        if run.max_concurrency:
            axis.axhline(
                run.max_concurrency, color="black", linestyle=":", linewidth=1,
                label=f"the knob: max_concurrency {run.max_concurrency}",
            )  # fmt: skip
        queue = axis.twinx()
        if queue_axes:
            queue.sharey(queue_axes[0])
        queue_axes.append(queue)
        queue.step(
            series["t_s"], series["queued"], where="post", label="items queued (right axis)", color="tab:red", alpha=0.6
        )
        queue.set_ylabel("queued", color="tab:red")
        axis.set_title(f"{names[run.run_id]}: concurrency and queue depth over time", fontsize=9)
        axis.set_ylabel("running")
        axis.grid(alpha=0.3)
        handles = axis.get_legend_handles_labels()
        extra = queue.get_legend_handles_labels()
        # beside the panel, not on it: the knob's line runs along the top of the panel
        axis.legend(
            handles[0] + extra[0], handles[1] + extra[1], fontsize=7, loc="upper left", bbox_to_anchor=(1.1, 1.0)
        )
    knobs = [r.max_concurrency or 0 for r in runs] + [r.peak_concurrency for r in runs]
    axes[0, 0].set_ylim(0, max([*knobs, 1]) * 1.2)  # room above the knob's line
    axes[0, 0].set_xlim(0, max(timeline_horizon_s(records), 0.1))  # shared by every panel (sharex)
    queue_axes[0].set_ylim(bottom=0)
    axes[-1, 0].set_xlabel("seconds since the run's first execution started (the same scale for every run)")
    return save_figure(figure, path)


def timeline_horizon_s(records: list[HarvestRecord]) -> float:
    """The shared time axis of the timeline panels: the longest run (first start -> last stop), in seconds,
    rounded up to a tenth."""
    spans = []
    for record in records:
        starts = [e.start_ms for e in record.executions]
        stops = [e.stop_ms for e in record.executions if e.stop_ms is not None]
        if starts:
            spans.append((max(stops or starts) - min(starts)) / 1000.0)
    return math.ceil(max(spans, default=0.0) * 10) / 10


def plot_throttles(runs: list[RunStats], records: list[HarvestRecord], path: Path) -> Path | None:
    """Throttled invokes per second, per run; with none, the empty axes say so (no line through the words)."""
    figure, axis = plt.subplots(figsize=(8, 3.2))
    names = compare.display_names(runs)
    series = [analysis.timeline(record, resolution_ms=1000.0) for record in records]
    any_data = any(sum(s["throttles"]) for s in series)
    if any_data:
        for run, points in zip(runs, series, strict=True):
            axis.plot(points["t_s"], points["throttles"], label=f"{names[run.run_id]} ({run.throttles} total)")
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        axis.set_ylim(bottom=0)
    else:
        axis.set_ylim(0, 1)
        axis.set_yticks([0, 1])
        shown = ", ".join(names[run.run_id] for run in runs)
        axis.text(
            0.5, 0.5, f"no throttling in these runs ({shown}: 0 throttles)", transform=axis.transAxes,
            ha="center", va="center", color="grey", wrap=True,
        )  # fmt: skip
    axis.set_xlim(0, max(timeline_horizon_s(records), 0.1))
    axis.set_title("Throttles over time (429 TooManyRequests seen by Step Functions, per second)")
    axis.set_xlabel("seconds since the run's first execution started")
    axis.set_ylabel("throttled invokes / s")
    axis.grid(alpha=0.3)
    return save_figure(figure, path)


def build(
    runs: list[RunStats], records: list[HarvestRecord], baseline: RunStats | None, model: USL | None, out_dir: Path
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = {
        "throughput": plot_throughput(runs, model, out_dir / "throughput.png"),
        "latency": plot_latency(runs, records, out_dir / "latency.png"),
        "timeline": plot_timelines(runs, records, out_dir / "timeline.png"),
        "throttles": plot_throttles(runs, records, out_dir / "throttles.png"),
    }
    notes = compare.footnotes(runs, baseline)
    settings = [r.max_concurrency for r in runs if r.max_concurrency]
    model_lines = model_summary(model, min(settings, default=1), max(settings, default=MAP_LIMIT))
    title = "scale-or-fail run report"
    made = datetime.now(UTC).isoformat(timespec="seconds")
    names = compare.display_names(runs)
    gaps = [c for r, rec in zip(runs, records, strict=True) if (c := steps.caption(rec, names[r.run_id]))]
    captions = {
        "throughput": "Throughput against the Map's max_concurrency, with the ideal linear line.",
        "latency": "Per-step latency distributions, one panel per run.",
        "timeline": "Concurrency against the knob and queue depth over time (from the execution histories); "
        f"the {len(records)} panel(s) share one time axis, 0-{timeline_horizon_s(records):.1f} s. Running Lambda "
        "tasks stay below the items in flight: " + "; ".join(gaps) + ".",
        "throttles": "Throttles over time.",
    }
    pairs = [(names[r.run_id], rec, r) for r, rec in zip(runs, records, strict=True)]
    steps_md = [
        "## Where the time goes, per step",
        "",
        steps.table(pairs, "github"),
        "",
        steps.EXPLAINED,
        "",
    ]
    md = [f"# {title}", "", f"Generated {made} from {len(runs)} run(s).", "", compare.table(runs, "github"), ""]
    md += [f"- {n}" for n in notes] + [""]
    md += steps_md
    md += model_lines
    for key, plot in plots.items():
        if plot is not None:
            md += [f"## {captions[key]}", "", f"![{key}]({plot.name})", ""]
    paths = {"md": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["md"].write_text("\n".join(md) + "\n")
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Generated {html.escape(made)} from {len(runs)} run(s).</p>",
        *(f"<div class=wide>{table}</div>" for table in compare.page_tables(runs)),
        "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>",
        to_html("\n".join(steps_md)),
    ]
    if model_lines:
        body.append(to_html("\n".join(model_lines)))
    for key, plot in plots.items():
        if plot is not None:  # the file's stem is the key: the alt text
            body.append(
                f"<figure id={key}>{embed_image(plot)}<figcaption>{html.escape(captions[key])}</figcaption></figure>"
            )
    css = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 5px}"
        "td{white-space:nowrap}th{vertical-align:bottom}"
        ".wide{overflow-x:auto}.wide th{white-space:normal;min-width:3.5em}"
        "img{max-width:100%}figure{margin:1.5em 0}"
    )
    paths["html"].write_text(html_page(title, css, body))
    for key, plot in plots.items():
        if plot is not None:
            paths[key] = plot
    return paths


def embed_image(path: Path) -> str:
    """A PNG inlined in the page (the HTML stays one self-contained file)."""
    return f'<img alt="{path.stem}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'


def html_page(title: str, css: str, body: list[str]) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{css}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def model_summary(model: USL | None, low: float = 1.0, high: float = MAP_LIMIT) -> list[str]:
    """The fitted model in words - and what a fit on these few points can and cannot tell;
    `low`..`high` is the range of settings it was fitted over."""
    if model is None:
        return []
    knee = model.knee(low, high)
    peak = model.peak_concurrency
    if knee is None:
        where = f"no knee between {low:g} and {high:g}: throughput keeps scaling almost linearly"
    else:
        where = f"returns diminish past max_concurrency ~{knee} (the knee of the fitted curve over {low:g}..{high:g})"
    if peak is not None and low <= peak <= high:
        top = f"the fitted curve peaks at max_concurrency ~{peak:.0f} ({model.throughput(peak):.1f} tickets/s)"
    else:
        top = (
            f"at {high:g}, the highest setting measured, the fitted curve still rises "
            f"({model.throughput(high):.1f} tickets/s): no ceiling within the measured range, and beyond it the "
            "curve is an extrapolation"
        )
    lines = [
        "## Scaling model (Universal Scalability Law)",
        "",
        f"lambda = {model.lam:.2f} tickets/s per unit of concurrency, sigma (contention) = {model.sigma:.4f}, "
        f"kappa (coherency) = {model.kappa:.5f}, R² = {model.r2:.3f}",
        "",
        f"{where}; {top}.",
        "",
    ]
    if model.exact:
        lines += [
            f"Fitted on {model.points} settings with {model.parameters} parameters: the curve passes through every "
            "point by construction, so R² = 1 says nothing about how well the law fits, and the knee and the curve "
            "between the points are a guess. It can show the shape the measured points suggest; where returns "
            "really diminish needs more settings (`make sweep N=500` runs seven).",
            "",
        ]
    elif model.points and model.points < 5:
        lines += [
            f"Fitted on {model.points} settings: read the knee as a rough guide (`make sweep N=500` runs seven).",
            "",
        ]
    return lines
