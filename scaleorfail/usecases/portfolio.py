"""Activity 8's evidence portfolio, assembled from the runs' harvest records (no API call after harvest)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scaleorfail import paths
from scaleorfail import target as targets
from scaleorfail.evidence import analysis, compare, portfolio, rca, report
from scaleorfail.harvest import collect
from scaleorfail.record.model import HarvestRecord
from scaleorfail.terminal import hint
from scaleorfail.usecases.diagnose import diagnose_run
from scaleorfail.usecases.harvest import harvest_runs

PLOTS = ("throughput", "timeline", "latency", "throttles")
HAPPY = "happy-path"  # the label of Activity 2's run (sof invoke-one)


@dataclass
class Picks:
    wall: str | None = None
    fix: str | None = None
    bad_input: str | None = None
    happy: str | None = None


def _pick(records: list[HarvestRecord], test: object) -> HarvestRecord | None:
    chosen = [r for r in records if callable(test) and test(r)]
    return max(chosen, key=lambda r: r.window.start) if chosen else None


def _single_ok(record: HarvestRecord, c: int) -> bool:
    return (
        record.parameters.get("max_concurrency") == c
        and len(record.executions) == 1
        and all(e.status == "SUCCEEDED" for e in record.executions)
    )


def insights_markdown(record: HarvestRecord) -> str | None:
    """The duration-by-step query's rows frozen in the record, as a Markdown table (None: no rows)."""
    result = record.logs.query(collect.DURATION_QUERY)
    if result is None or not result.rows:
        return None
    from scaleorfail.evidence import insights

    return (
        f"{hint(f'sof insights {result.key} --run {record.run_id}')}: run at harvest over the run's window "
        f"({len(result.rows)} rows)\n\n" + insights.render(list(result.rows), fmt="github")
    )


def build(picks: Picks, out: Path | None = None) -> tuple[Path, Path, list[portfolio.Check]]:
    def one(selector: str | None) -> HarvestRecord | None:
        return harvest_runs([selector], quiet=True)[0] if selector else None

    found = {m.parent: collect.read_cached(m.parent) for m in sorted(paths.runs_dir().glob("*/manifest.json"))}
    unharvested = [str(d) for d, record in found.items() if record is None]
    fresh = iter(harvest_runs(unharvested, quiet=True) if unharvested else [])
    cached = [record if record is not None else next(fresh) for record in found.values()]
    wall = one(picks.wall) or _pick(cached, lambda r: _single_ok(r, 2))
    fix = one(picks.fix) or _pick(cached, lambda r: _single_ok(r, 10))
    bad = one(picks.bad_input) or _pick(cached, lambda r: any(e.error == "PayloadTooLarge" for e in r.executions))
    happy = one(picks.happy) or _pick(
        cached, lambda r: r.label == HAPPY and any(e.status == "SUCCEEDED" for e in r.executions)
    )
    folder = out or paths.runs_dir() / "portfolio"
    folder.mkdir(parents=True, exist_ok=True)
    pair = [r for r in (wall, fix) if r is not None]
    comparison = None
    plots: dict[str, Path] = {}
    if pair:
        stats = [analysis.stats(r) for r in pair]
        baseline = compare.with_baseline(stats)
        comparison = compare.page_tables(stats, "github")[0]  # the story's columns: the page is 1,300 px wide
        built = report.build(stats, pair, baseline, None, folder / "plots")
        plots = {k: v for k, v in built.items() if k in PLOTS}
    reports: dict[str, str] = {}
    for key, record in (("wall", wall), ("bad-input", bad)):
        if record is not None:
            reports[key] = rca.to_markdown(diagnose_run(paths.runs_dir() / record.run_id, record=record))
    source = wall or happy
    insights_md = insights_markdown(source) if source is not None else None
    outputs_file = next((p for p in (targets.outputs_path("local"), targets.outputs_path("aws")) if p.exists()), None)
    return portfolio.build(
        folder, happy, comparison, plots, bad, insights_md, reports, outputs_file, wall is not None, fix is not None
    )
