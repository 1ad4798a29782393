"""The report and the portfolio as a person sees them: the plots as drawn, the pages in Chromium
(synthetic records, no emulator; the learner's walk looks at the real ones)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from console_support import CHROMIUM, REQUIRED
from playwright.sync_api import Page
from test_harvest_units import record_for, two_item_history

matplotlib.use("Agg")

from scaleorfail.evidence import analysis, compare, portfolio, report, scaling
from scaleorfail.record import model

ROOT = Path(__file__).resolve().parent.parent


def needs_chromium() -> None:
    """Playwright drives Debian's Chromium (tests/conftest.py): skip without it - unless SOF_REQUIRE_CHROMIUM=1."""
    if CHROMIUM is None:
        if REQUIRED:
            pytest.fail("SOF_REQUIRE_CHROMIUM=1 but Debian's chromium is missing (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed")


def runs_and_records(count: int = 3) -> tuple[list[analysis.RunStats], list[model.HarvestRecord]]:
    records = [
        dataclasses.replace(record_for(two_item_history()), run_id=f"r{i}", label=f"burst-c{i}") for i in range(count)
    ]
    runs = [analysis.stats(r) for r in records]
    for index, stats in enumerate(runs):
        stats.max_concurrency, stats.throughput = (2, 5, 10, 20)[index], (3.9, 8.0, 11.5, 13.9)[index]
    return runs, records


def without_throttles(record: model.HarvestRecord) -> model.HarvestRecord:
    """The record with every refused attempt taken out (the synthetic history has one 429)."""

    def visit(v: model.Visit) -> model.Visit:
        return dataclasses.replace(v, attempts=tuple(a for a in v.attempts if a.error is None))

    def item(i: model.Item) -> model.Item:
        return dataclasses.replace(i, visits=tuple(visit(v) for v in i.visits))

    executions = tuple(dataclasses.replace(e, items=tuple(item(i) for i in e.items)) for e in record.executions)
    return dataclasses.replace(record, executions=executions)


def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    figures: list[Any] = []
    monkeypatch.setattr(report, "save_figure", lambda figure, path: figures.append(figure) or path)
    return figures


def test_no_throttling_is_said_without_a_line_through_it_or_an_axis_below_zero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    figures = drawn(monkeypatch)
    runs, records = runs_and_records()
    calm = [without_throttles(r) for r in records]
    report.plot_throttles([analysis.stats(r) for r in calm], calm, tmp_path / "throttles.png")
    report.plot_throttles(runs, records, tmp_path / "throttles.png")  # the synthetic history's one 429
    quiet, throttled = (figure.axes[0] for figure in figures)
    assert quiet.get_ylim()[0] == 0 and quiet.get_lines() == []
    assert any("no throttling in these runs" in t.get_text() for t in quiet.texts)
    assert throttled.get_ylim()[0] == 0 and len(throttled.get_lines()) == len(runs) and not throttled.texts


def test_the_timeline_legends_stand_beside_the_panels_not_on_the_knob(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    figures = drawn(monkeypatch)
    runs, records = runs_and_records(2)
    report.plot_timelines(runs, records, tmp_path / "timeline.png")
    (figure,) = figures
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    panels = [a for a in figure.axes if a.get_ylabel() == "running"]
    assert len(panels) == 2
    for panel in panels:
        legend = panel.get_legend()
        assert legend is not None and not legend.get_window_extent(renderer).overlaps(panel.get_window_extent(renderer))
        knob = next(line for line in panel.get_lines() if "the knob" in str(line.get_label()))
        assert knob.get_ydata()[0] < panel.get_ylim()[1]  # room above the knob's line


def test_a_fit_through_every_point_does_not_claim_a_goodness_of_fit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    figures = drawn(monkeypatch)
    runs, _ = runs_and_records(3)
    model_fit = scaling.fit([(r.max_concurrency or 1, r.throughput or 0.0) for r in runs])
    assert model_fit.exact
    report.plot_throughput(runs, model_fit, tmp_path / "throughput.png")
    (figure,) = figures
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "USL fit through 3 points (exact)" in labels and not any("R²" in label for label in labels)


def test_the_portfolio_draws_the_happy_path_and_reads_the_cause_without_its_stack_trace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    arrows: list[tuple[tuple[float, float], tuple[float, float]]] = []
    original = matplotlib.axes.Axes.annotate

    def annotate(self: Any, text: str, xy: Any, xytext: Any = None, **kwargs: Any) -> Any:
        arrows.append((tuple(xytext), tuple(xy)))
        return original(self, text, xy, xytext=xytext, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", annotate)
    happy = dataclasses.replace(
        record_for(two_item_history()), run_id="20261207T1200-happy-path-aaaa", label="happy-path"
    )
    cause = json.dumps(
        {"errorType": "PayloadTooLarge", "errorMessage": "ticket T-9002: text has 5100 characters", "stackTrace": ["x"]}
    )
    failed = dataclasses.replace(
        happy.executions[0], name="bad-0-0", status="FAILED", error="PayloadTooLarge", cause=cause
    )
    bad = dataclasses.replace(happy, run_id="bad", executions=(failed,))
    _, page, checks = portfolio.build(tmp_path, happy, None, {}, bad, None, {}, None, False, False)
    default_box = (7.9, 8.3)  # DefaultMaxConcurrency's bottom edge: an arrow leaves it for the Map
    assert any(start == default_box for start, _ in arrows)
    text = page.read_text()
    assert "run 20261207T1200-happy-path-aaaa (label happy-path)" in text
    assert "PayloadTooLarge: ticket T-9002: text has 5100 characters" in text and "stackTrace" not in text
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| # | Activity") :].split("\n\n")[0]
    assert all(f"`{check.how}`" in table for check in checks if not check.done)


def test_the_reports_wide_table_fits_a_1400_pixel_page(tmp_path: Path, page: Page) -> None:
    needs_chromium()
    runs, records = runs_and_records(4)
    for stats in runs:
        stats.label = f"{stats.label}-with-a-longer-label"
    baseline = compare.with_baseline(runs)
    written = report.build(runs, records, baseline, scaling.fit([(2, 3.9), (5, 8.0), (10, 11.5), (20, 13.9)]), tmp_path)
    assert overflow(page, written["html"]) <= 0, "a table runs past the page's right edge"
    headers = page.locator("th").all_inner_texts()
    assert "Little L (ratio)" in headers and "$/1k tickets" in headers  # in the details table, not cut off


def overflow(page: Page, html: Path, width: int = 1400) -> float:
    """How far the widest table reaches past the right edge of a `width`-pixel window (<= 0: it fits)."""
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(html.as_uri())
    return float(
        page.evaluate(
            "Math.max(...Array.from(document.querySelectorAll('table'), t => t.getBoundingClientRect().right))"
            " - document.documentElement.clientWidth"
        )
    )


def test_the_portfolios_comparison_fits_a_1400_pixel_page(tmp_path: Path, page: Page) -> None:
    needs_chromium()
    runs, records = runs_and_records(2)
    compare.with_baseline(runs)
    story = compare.page_tables(runs, "github")[0]
    _, html, _ = portfolio.build(tmp_path, records[0], story, {}, None, None, {}, None, True, True)
    assert overflow(page, html) <= 0, "the portfolio's comparison runs past the page's right edge"
    assert "eff." in page.locator("th").all_inner_texts()
