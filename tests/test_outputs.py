"""What a learner reads: the comparison table, the run selection, the plots, the portfolio, the sweep's warning,
and what `sof scenario` leaves deployed - on synthetic records (no emulator)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from test_harvest_units import record_for, two_item_history

matplotlib.use("Agg")

from scaleorfail import scenarios
from scaleorfail.evidence import analysis, compare, portfolio, report
from scaleorfail.record import model
from scaleorfail.usecases import compare as comparing
from scaleorfail.usecases import scenario, sweep


def run(label: str, c: int, tickets: int, throughput: float, run_id: str | None = None) -> analysis.RunStats:
    stats = analysis.stats(record_for(two_item_history()))
    stats.label, stats.run_id, stats.max_concurrency = label, run_id or f"20261202T1200{c:02d}-{label}-ab{c:02d}", c
    stats.tickets, stats.throughput = tickets, throughput
    return stats


# -- the comparison table ---------------------------------------------------------------------------------


def test_the_terminal_table_fits_120_columns_and_the_wide_one_has_every_column() -> None:
    runs = [
        run("throttled-noretry-c20-with-a-long-name", 20, 500, 9.0),
        run("throttled-noretry-c20-with-a-long-name", 20, 500, 9.5, "20261202T130000-throttled-noretry-c-ffff"),
        run("demo-c2", 2, 500, 3.7),
    ]
    compare.with_baseline(runs)
    narrow = compare.table(runs)
    assert max(len(line) for line in narrow.splitlines()) <= 120, narrow
    assert "Embed p50/p95 ms" not in narrow and "eff." in narrow
    wide = compare.table(runs, wide=True)
    assert all(header in wide for _, header in compare.COLUMNS) and max(map(len, wide.splitlines())) > 120
    assert "Embed p50/p95 ms" in compare.table(runs, "github")  # Markdown keeps every column


def test_where_a_label_repeats_the_run_id_tells_the_rows_apart(tmp_path: Path) -> None:
    runs = [run("burst-c2", 2, 500, 4.0, "20261202T120000-burst-c2-aaaa"), run("burst-c2", 2, 500, 4.1, "second")]
    runs.append(run("burst-c10", 10, 500, 12.0))
    assert compare.display_names(runs) == {
        "20261202T120000-burst-c2-aaaa": "20261202T120000-burst-c2-aaaa",
        "second": "second",
        runs[2].run_id: "burst-c10",
    }
    baseline = compare.with_baseline(runs)
    assert any("burst-c2 repeat" in note for note in compare.footnotes(runs, baseline))
    written = compare.write(runs, baseline, tmp_path)
    assert written["csv"].read_text().splitlines()[1].startswith("20261202T120000-burst-c2-aaaa,")
    assert "second" in compare.table(runs)


def test_no_speed_up_across_ticket_counts_unless_asked() -> None:
    runs = [run("c2", 2, 500, 4.0), run("c10", 10, 500, 12.2), run("c10-small", 10, 200, 13.0)]
    baseline = compare.with_baseline(runs)
    assert baseline is runs[0]
    assert (runs[1].speedup, runs[1].efficiency) == (3.05, 0.61)
    assert runs[2].speedup is None and runs[2].efficiency is None
    notes = compare.footnotes(runs, baseline)
    assert any("c10-small: no speed-up against c2: 200 tickets here, 500 there" in n for n in notes)
    assert any("--mixed-tickets" in n for n in notes)
    compare.with_baseline(runs, mixed_tickets=True)
    assert runs[2].speedup == 3.25 and not any(n.startswith("no speed-up") for n in runs[2].notes)


def test_compare_takes_the_latest_run_of_each_label_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOF_RUNS_DIR", str(tmp_path))
    for name, label, started in (
        ("a-old", "burst-c2", "2026-12-02T10:00:00+00:00"),
        ("a-new", "burst-c2", "2026-12-02T11:00:00+00:00"),
        ("b", "burst-c10", "2026-12-02T10:30:00+00:00"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"label": label, "started_at": started}))
    names = lambda chosen: sorted(Path(p).name for p in chosen)  # noqa: E731
    assert names(comparing.select([])) == ["a-new", "b"]
    assert names(comparing.select([], every=True)) == ["a-new", "a-old", "b"]
    assert comparing.select(["a-old"]) == ["a-old"]


# -- plots -----------------------------------------------------------------------------------------------


def _overlaps(figure: Any) -> list[tuple[str, str]]:
    """Pairs of visible texts (titles, tick labels, annotations) whose boxes overlap on the canvas."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    texts = [t for t in figure.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [
        (a, b)
        for i, (a, box) in enumerate(boxes)
        for b, other in boxes[i + 1 :]
        if box.overlaps(other) and box.width and other.width
    ]


def test_plot_labels_do_not_overprint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    figures: list[Any] = []
    monkeypatch.setattr(report, "save_figure", lambda figure, path: figure.tight_layout() or figures.append(figure))
    records = [dataclasses.replace(record_for(two_item_history()), run_id=f"r{i}") for i in range(5)]
    runs = [analysis.stats(r) for r in records]
    for index, stats in enumerate(runs):
        stats.label = f"a-rather-long-label-for-run-number-{index}"
        stats.max_concurrency, stats.throughput = (1, 2, 2, 3, 40)[index], (1.0, 1.9, 2.0, 2.8, 9.0)[index]
    report.plot_latency(runs, records, tmp_path / "latency.png")
    report.plot_throughput(runs, None, tmp_path / "throughput.png")
    for figure in figures:
        legend = [t.get_text() for leg in figure.legends + [a.get_legend() for a in figure.axes if a.get_legend()]
                  for t in leg.get_texts()]  # fmt: skip
        clashes = [(a, b) for a, b in _overlaps(figure) if a not in legend and b not in legend]
        assert clashes == []


def test_the_timeline_panels_share_one_time_axis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    figures: list[Any] = []
    monkeypatch.setattr(report, "save_figure", lambda figure, path: figures.append(figure) or path)
    short = record_for(two_item_history())
    longer = dataclasses.replace(short.executions[0], stop_ms=short.executions[0].start_ms + 9000)
    long = dataclasses.replace(short, run_id="long", executions=(longer,))
    records = [short, long]
    report.plot_timelines([analysis.stats(r) for r in records], records, tmp_path / "timeline.png")
    (figure,) = figures
    panels = [a for a in figure.axes if a.get_ylabel() == "running"]
    assert len(panels) == 2 and all(a.get_xlim() == (0.0, 9.0) for a in panels)
    assert report.timeline_horizon_s(records) == 9.0


# -- the portfolio ----------------------------------------------------------------------------------------


def test_the_portfolio_renders_markdown_and_ticks_only_boxes_with_content(tmp_path: Path) -> None:
    happy = record_for(two_item_history())
    table = compare.table([analysis.stats(happy)], "github")
    report_md = "# Incident report: x\n\n## What happened\n\n- one\n- two\n"
    _, page, checks = portfolio.build(tmp_path, happy, table, {}, None, "", {"wall": report_md, "bad-input": " "},
                                       None, True, True)  # fmt: skip
    ticked = {c.item: c.done for c in checks}
    assert ticked["Logs Insights query output"] is False  # empty output: not ticked
    assert (
        ticked["Incident report: bad input"] is False
        and ticked["Incident report: the scaling wall (evidence vs hypothesis)"]
    )
    text = page.read_text()
    assert "<table>" in text and "<th>run</th>" in text and "|---" not in text and "<pre>" not in text
    assert "<h3>Incident report: x</h3>" in text and "<li>one</li>" in text
    rows = "| step | avg_ms |\n|---|---|\n| embed | 251.2 |"
    _, page, checks = portfolio.build(tmp_path, happy, table, {}, None, rows, {}, None, True, True)
    assert next(c for c in checks if c.item == "Logs Insights query output").done
    assert "<td>embed</td>" in page.read_text()
    hostile = portfolio.build(tmp_path, happy, "<script>alert(1)</script>", {}, None, None, {}, None, True, True)[1]
    assert "<script>alert" not in hostile.read_text()  # the pages show Markdown, never markup the runs carried


# -- sweep --------------------------------------------------------------------------------------------------


def test_a_sweep_warns_when_its_batch_is_too_small_for_its_conclusion() -> None:
    embed = model.FunctionLogs("Embed", "/aws/lambda/x-embed", invocations=100, cold_starts=40)
    records = [dataclasses.replace(record_for(two_item_history()), parameters={"max_concurrency": 40},
                                   logs=model.Logs(functions=(embed,)))]  # fmt: skip
    warning = sweep.small_batch_warning(100, [1, 2, 5, 10, 20, 30, 40], records)
    assert warning is not None and "2.5 tickets" in warning and "-n 400" in warning
    assert "40 of 100 Embed invocations were cold starts" in warning
    assert sweep.small_batch_warning(500, [1, 2, 5, 10, 20, 30, 40], records) is None


# -- sof scenario restores what was deployed -------------------------------------------------------------


def test_a_scenario_restores_the_variables_that_were_deployed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from scaleorfail.load import runner

    deployed: list[dict[str, Any]] = []
    before = {"name_prefix": "lab-7", "bad_input_policy": "quarantine", "simulated_infer_ms": 100}

    class Local:
        name = "local"
        endpoint_url = None

    monkeypatch.setattr(scenario, "deploy", lambda target, variables, approve: deployed.append(dict(variables)))
    monkeypatch.setattr(scenario.targets, "load_outputs", lambda *a, **k: {})
    monkeypatch.setattr(scenario.targets, "deployed_variables", lambda name: dict(before))
    monkeypatch.setattr(scenario, "account_limit", lambda target, value: _null())
    monkeypatch.setattr(scenario, "harvest_runs", lambda selectors, quiet: [record_for(two_item_history())])
    monkeypatch.setattr(runner, "burst", lambda *a, **k: tmp_path / "run")
    monkeypatch.setenv("SOF_STATE_DIR", str(tmp_path))
    done = scenario.run_scenario("bad-input", Local(), say=lambda text: None)  # type: ignore[arg-type]
    # each run: the scenario's own settings where the stack is deployed; then the snapshot again
    assert deployed[0] == {"name_prefix": "lab-7"}
    assert deployed[1] == {"name_prefix": "lab-7", "bad_input_policy": "quarantine"}
    assert deployed[-1] == before and done.restored == before
    assert len(deployed) == len(scenarios.catalogue()["bad-input"].runs) + 1


def _null() -> Any:
    from contextlib import nullcontext

    return nullcontext()
