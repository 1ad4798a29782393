"""`sof portfolio`: Activity 8's evidence portfolio, without screenshots.

One Markdown + one self-contained HTML bundle: the happy-path execution graph drawn as
an image (states coloured by status, with their durations), the wall (c=2) and the fix
(c=10) table and plots, the bad-input FAILED evidence, a Logs Insights query output (run
at harvest over the run's window, frozen in its record), the incident reports, and the
evidence checklist - each item ticked only when its artefact exists and is not empty,
otherwise with the command that produces it. The HTML page renders the Markdown
(markdown-it-py): tables as tables, reports as headings and lists.
"""

from __future__ import annotations

import html
import json
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from scaleorfail.evidence.analysis import STEP_ORDER, step_durations
from scaleorfail.evidence.report import embed_image, html_page, save_figure
from scaleorfail.markdown import to_html
from scaleorfail.pipeline import APPLY_DEFAULTS, DEFAULT_MAX_CONCURRENCY, PROCESS_TICKETS, QUARANTINE
from scaleorfail.record.model import Execution, HarvestRecord

# What produces each artefact: the README's activity commands (the checklist's hints for a missing one).
ACTIVITY = {
    1: "scripts/01-deploy.sh",
    2: "scripts/02-invoke-one.sh",
    3: "scripts/03-burst.sh",
    4: "scripts/04-scale-up.sh",
    6: "scripts/06-bad-input.sh",
}
COLOURS = {"SUCCEEDED": "#8fd18f", "FAILED": "#f08a8a", "NOT RUN": "#dddddd", "REJECTED": "#f5c26b"}


@dataclass
class Check:
    item: str
    done: bool
    artefact: str
    how: str


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _step_outcomes(execution: Execution) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Per step inside the Map: the durations of its visits, and its status (FAILED wins)."""
    visits = step_durations(execution.items)
    outcome: dict[str, str] = {}
    for item in execution.items:
        for visit in item.visits:
            status = "FAILED" if any(a.error for a in visit.attempts[-1:]) else "SUCCEEDED"
            if visit.step == QUARANTINE:
                status = "REJECTED"
            if outcome.get(visit.step) != "FAILED":
                outcome[visit.step] = status
    return visits, outcome


def execution_graph(record: HarvestRecord, path: Path) -> Path:
    """The pipeline's states, coloured by what the first execution of the run did, with durations."""
    execution = record.executions[0]
    top = {s.step: s for s in execution.states}
    visits, outcome = _step_outcomes(execution)
    figure, axis = plt.subplots(figsize=(7, 6.4))
    axis.set_xlim(0, 10)
    axis.set_ylim(0, 11)
    axis.axis("off")

    def box(x: float, y: float, w: float, h: float, label: str, status: str, detail: str = "") -> None:
        axis.add_patch(
            FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", facecolor=COLOURS[status], edgecolor="#444")
        )
        axis.text(x + w / 2, y + h / 2 + (0.15 if detail else 0), label, ha="center", va="center", fontsize=10)
        if detail:
            axis.text(x + w / 2, y + h / 2 - 0.28, detail, ha="center", va="center", fontsize=8, color="#333")

    def arrow(x1: float, y1: float, x2: float, y2: float) -> None:
        axis.annotate("", xy=(x2, y2), xytext=(x1, y1), arrowprops={"arrowstyle": "->", "color": "#444"})

    def top_state(name: str) -> tuple[str, str]:
        state = top.get(name)
        if state is None:
            return "NOT RUN", "not entered"
        took = state.duration_ms
        return ("SUCCEEDED" if state.exited is not None else "FAILED"), "-" if took is None else f"{took:.0f} ms"

    status, detail = top_state(APPLY_DEFAULTS)
    box(3, 9.6, 4, 0.9, f"{APPLY_DEFAULTS} (Choice)", status, detail)
    status, detail = top_state(DEFAULT_MAX_CONCURRENCY)
    box(6.2, 8.3, 3.4, 0.9, DEFAULT_MAX_CONCURRENCY, status, detail)
    arrow(5, 9.6, 5, 8.0)  # max_concurrency given: straight to the Map
    arrow(6.5, 9.6, 7.6, 9.2)  # none given: set the default first
    arrow(7.9, 8.3, 7.2, 7.95)  # ... then the Map
    map_status = {"SUCCEEDED": "SUCCEEDED"}.get(execution.status, "FAILED")
    took = (execution.stop_ms or execution.start_ms) - execution.start_ms
    axis.add_patch(FancyBboxPatch((1, 0.6), 8, 7.2, boxstyle="round,pad=0.1", facecolor="white", edgecolor="#444"))
    axis.text(
        5, 7.45, f"{PROCESS_TICKETS} (Map) - {execution.map_length or '?'} items, execution {execution.status} "
        f"in {took / 1000:.2f} s", ha="center", fontsize=9,
        color="#226622" if map_status == "SUCCEEDED" else "#aa2222",
    )  # fmt: skip
    steps = STEP_ORDER
    for index, step in enumerate(steps):
        y = 5.6 - index * 1.8
        median = _median(visits.get(step, []))
        detail = (
            "not entered" if step not in outcome else f"median {median:.0f} ms ({len(visits.get(step, []))} visits)"
        )
        box(
            3,
            y,
            4,
            1.1,
            f"{step} (Lambda)",
            outcome.get(step, "NOT RUN"),
            detail if median or step not in outcome else "",
        )
        if index:
            arrow(5, y + 1.8, 5, y + 1.15)
    if QUARANTINE in outcome:
        box(7.3, 3.0, 1.6, 0.9, QUARANTINE, "REJECTED", f"{len(visits.get(QUARANTINE, []))}x")
    axis.text(0.1, 0.05, "green: succeeded  red: failed  grey: not run  amber: rejected", fontsize=8, color="#555")
    return save_figure(figure, path)


def build(
    out_dir: Path,
    happy: HarvestRecord | None,
    comparison_md: str | None,
    plots: dict[str, Path],
    bad_input: HarvestRecord | None,
    insights_md: str | None,
    reports: dict[str, str],
    stack_outputs: Path | None,
    have_wall: bool,
    have_fix: bool,
) -> tuple[Path, Path, list[Check]]:
    """Write portfolio.md and portfolio.html; `insights_md` is the Insights output as Markdown (None: no rows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = execution_graph(happy, out_dir / "execution-graph.png") if happy and happy.executions else None
    bad = bad_input.executions[0] if bad_input and bad_input.executions else None
    reports = {key: text for key, text in reports.items() if text.strip()}
    checks = [
        Check("Stack outputs: state machine, functions, dashboard", stack_outputs is not None,
              str(stack_outputs or ""), ACTIVITY[1]),
        Check("Happy path: execution graph with per-state durations", graph is not None,
              "execution-graph.png", ACTIVITY[2]),
        Check("The wall: burst at max_concurrency 2 (batch duration, plateau)", have_wall,
              "comparison + timeline.png", ACTIVITY[3]),
        Check("The fix: the same burst at max_concurrency 10", have_fix,
              "comparison table", ACTIVITY[4]),
        Check("Side-by-side table and throughput plot",
              have_wall and have_fix and bool(comparison_md and comparison_md.strip()) and "throughput" in plots,
              "throughput.png", ACTIVITY[4]),
        Check("Logs Insights query output",
              bool(insights_md and insights_md.strip()), "insights section", ACTIVITY[3]),
        Check("Bad input: execution FAILED in Preprocess with PayloadTooLarge",
              bool(bad and bad.error == "PayloadTooLarge"), "bad-input section", ACTIVITY[6]),
        Check("Incident report: bad input", "bad-input" in reports, "rca section", ACTIVITY[6]),
        Check("Incident report: the scaling wall (evidence vs hypothesis)", "wall" in reports, "rca section",
              ACTIVITY[3]),
    ]  # fmt: skip
    made = datetime.now(UTC).isoformat(timespec="seconds")
    md = [
        "# Evidence portfolio - Scale or Fail",
        "",
        f"Generated {made}.",
        "",
        "## Checklist",
        "",
    ]
    md += [f"- [{'x' if c.done else ' '}] {c.item}" + ("" if c.done else f" - produce it: `{c.how}`") for c in checks]
    sections: list[tuple[str, str, Path | None]] = []
    if graph is not None:
        assert happy is not None
        drawn = f"run {happy.run_id}" + (f" (label {happy.label})" if happy.label else "")
        sections.append(
            ("Happy path: the execution graph", f"States coloured by status, with durations: {drawn}.", graph)
        )
    if comparison_md and comparison_md.strip():
        sections.append(("The wall and the fix, side by side", comparison_md, None))
    for key in ("throughput", "timeline", "latency", "throttles"):
        if key in plots:
            sections.append((f"Plot: {key}", "", plots[key]))
    if bad is not None:
        cause = _cause(bad.cause or "")
        sections.append(
            (
                "Bad input: FAILED immediately",
                f"Execution `{bad.name}` ended **{bad.status}** with error **{bad.error}** "
                f"{((bad.stop_ms or bad.start_ms) - bad.start_ms):.0f} ms after it started.\n\n"
                f"Cause: `{cause}`",
                None,
            )
        )
    if insights_md and insights_md.strip():
        sections.append(("Logs Insights: average and max duration by step", insights_md, None))
    for key, text in reports.items():
        sections.append((f"Incident report ({key})", _demote(text), None))
    sections.append(
        (
            'The 03:00 page: "The ML pipeline is slow and customers are waiting. What do you check first?"',
            "1. The dashboard: saturation and throttling (ConcurrentExecutions plateau, Throttles, Errors, "
            "Embed p95) - see the plots above.\n2. The execution graph: where it is slow or failing - see the graph "
            "and the step latencies.\n3. The logs of the failing step - see the Logs Insights output.\n"
            "4. Write evidence and hypothesis separately before acting - see the incident reports; then one "
            "safe, reversible action and a verification run.",
            None,
        )
    )
    for title, text, image in sections:
        md += ["", f"## {title}", ""]
        if text:
            md.append(text)
        if image is not None:
            md.append(f"![{image.stem}]({image.name})")
    md_path = out_dir / "portfolio.md"
    md_path.write_text("\n".join(md) + "\n")
    body = [
        "<h1>Evidence portfolio - Scale or Fail</h1>",
        f"<p>Generated {html.escape(made)}.</p>",
        "<h2>Checklist</h2><ul class=checklist>",
    ]
    for check in checks:
        mark = "&#9745;" if check.done else "&#9744;"
        extra = "" if check.done else f" <code>{html.escape(check.how)}</code>"
        body.append(f"<li class={'done' if check.done else 'todo'}>{mark} {html.escape(check.item)}{extra}</li>")
    body.append("</ul>")
    for title, text, image in sections:
        body.append(f"<section><h2>{html.escape(title)}</h2>")
        if text:
            body.append(to_html(text))
        if image is not None:
            body.append(embed_image(image))
        body.append("</section>")
    html_path = out_dir / "portfolio.html"
    css = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px}pre{white-space:pre-wrap;"
        "background:#f6f6f6;padding:1em}img{max-width:100%}li.todo{color:#a33}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "ul.checklist{list-style:none;padding-left:0}"
    )
    html_path.write_text(html_page("Evidence portfolio", css, body))
    return md_path, html_path, checks


def _cause(text: str) -> str:
    """A failure's cause as its error type and message: the JSON payload and stack trace of a Lambda error left out."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:600]
    if isinstance(payload, dict) and "errorMessage" in payload:
        return f"{payload.get('errorType', 'Error')}: {payload['errorMessage']}"[:600]
    return text[:600]


def _demote(text: str) -> str:
    """An incident report inside the portfolio: its headings one level below the portfolio's sections."""
    return "\n".join(f"##{line}" if line.startswith("#") else line for line in text.splitlines())
