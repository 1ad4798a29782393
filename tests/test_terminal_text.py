"""What the learner reads in a terminal of 80 and of 120 columns: tables that fit, notes wrapped, hints
that run as printed, a malformed query in one line, the baseline a learner means (synthetic records,
no emulator; tests/test_learner_path.py walks the same output through the real commands)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_harvest_units import record_for, two_item_history

from scaleorfail import terminal
from scaleorfail.errors import UserError
from scaleorfail.evidence import analysis, compare, insights, scaling, steps
from scaleorfail.evidence.report import model_summary
from scaleorfail.load import history_limit, summary
from scaleorfail.record import model

WIDTHS = (80, 120)


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def run(label: str, c: int, tickets: int, throughput: float, failed: int = 0) -> analysis.RunStats:
    stats = analysis.stats(record_for(two_item_history()))
    stats.label, stats.run_id, stats.max_concurrency = label, f"20261207T1200{c:02d}-{label}-ab{c:02d}", c
    stats.tickets, stats.throughput, stats.executions_failed = tickets, throughput, failed
    stats.wall_s = round(tickets / throughput, 3) if throughput else 0.0
    return stats


@pytest.fixture(autouse=True)
def _no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)


# -- the comparison ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_the_comparison_fits_the_terminal_and_tells_its_rows_apart(width: int) -> None:
    runs = [
        run("throttled-c20", 20, 40, 0.0, failed=1),
        run("throttled-retry-c20", 20, 40, 17.1),
        run("throttled-fix-c10", 10, 40, 32.6),
        run("a-label-of-forty-characters-for-a-burst", 2, 40, 7.9),
    ]
    compare.with_baseline(runs)
    text = compare.table(runs, width=width)
    assert widest(text) <= width, text
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line) <= {"-", " "})
    names = [line.split()[0] for line in lines[rule + 1 :]]
    assert len(set(names)) == len(runs), text  # shortened names stay distinct
    assert ("peak" in text) is (width >= terminal.NARROW_BELOW)  # under 100 columns: left to --wide
    for note in [*compare.footnotes(runs, runs[2]), compare.narrow_note(width)]:
        assert widest(terminal.fill(f"  - {note}", width)) <= width


def test_numbers_are_printed_as_computed_and_rejected_tickets_get_a_column() -> None:
    runs = [run("before", 2, 10, 1.0), run("after", 2, 10, 1.1)]
    runs[0].wall_s, runs[1].wall_s = 9.0, 9.1
    compare.with_baseline(runs)
    text = compare.table(runs, width=120)
    assert re.search(r"before .* 9\.0 ", text) and "rejected" not in text  # 9.0, not 9, beside 9.1
    runs[1].tickets_rejected = 1
    for width in WIDTHS:
        shown = compare.table(runs, width=width)
        header = shown.splitlines()[0] + shown.splitlines()[1]
        assert "rejec" in header, shown
    assert "rejected" in compare.table(runs, wide=True)
    assert any("REJECTED by the quarantine policy" in n for n in compare.footnotes(runs, runs[0]))


def test_the_baseline_is_the_run_a_learner_means_and_never_a_failed_one() -> None:
    failed, wall, fix, again = (
        run("bad-input", 2, 500, 0.0, failed=1),
        run("burst-c2", 2, 500, 4.0),
        run("burst-c10", 10, 500, 12.0),
        run("incident-c2", 2, 500, 4.2),
    )
    again.run_id = "20261207T130000-incident-c2-ffff"  # the newest of the c=2 runs
    runs = [failed, wall, again, fix]
    chosen = compare.with_baseline(runs)
    assert chosen is again and again.baseline_reason == "the lowest max_concurrency (the newest of those)"
    notes = compare.footnotes(runs, chosen)
    assert "against incident-c2" in notes[0] and any("not a baseline: bad-input" in n for n in notes)
    assert compare.with_baseline(runs, first=fix.run_id) is fix and fix.speedup == 1.0
    assert wall.speedup == pytest.approx(4.0 / 12.0, abs=0.001)
    assert compare.with_baseline(runs, first=failed.run_id) is again  # the first named failed: the next choice
    with pytest.raises(UserError, match="bad-input cannot be the baseline: 1 of its 2 execution"):
        compare.with_baseline(runs, baseline="bad-input")
    assert compare.with_baseline([failed]) is None


# -- wrapping and hints ------------------------------------------------------------------------------------


def test_a_command_in_backticks_is_never_broken_across_lines() -> None:
    text = "eff.: scaling efficiency (`.venv/bin/sof compare --wide`, or comparison.md, for every column)"
    for width in range(40, 90):
        lines = terminal.wrap(text, width)
        assert any("`.venv/bin/sof compare --wide`" in line for line in lines), lines


def test_a_hint_names_sof_as_the_shell_finds_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    terminal.sof.cache_clear()
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a shell without the virtualenv activated
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    try:
        assert terminal.hint("sof compare a && sof rca a") == "`.venv/bin/sof compare a && .venv/bin/sof rca a`"
        terminal.sof.cache_clear()
        monkeypatch.setenv("PATH", f"{Path(terminal.sys.executable).parent}:/usr/bin")  # activated
        assert terminal.hint("sof rca a") == "`sof rca a`"
        terminal.sof.cache_clear()
        monkeypatch.setenv("PATH", "/usr/bin")
        monkeypatch.chdir(tmp_path)  # elsewhere: the whole path
        assert terminal.sof().endswith("/bin/sof") and terminal.sof().startswith("/")
    finally:
        terminal.sof.cache_clear()


@pytest.mark.parametrize("width", WIDTHS)
def test_tables_cut_prose_at_its_end_and_paths_at_their_start(width: int) -> None:
    rows = [
        {"@log": "/aws/lambda/scale-or-fail-postprocess", "@message": "REPORT RequestId: " + "x" * 150},
        {"@log": "/aws/lambda/scale-or-fail-embed", "@message": "START\tRequestId: y"},
    ]
    text = insights.render(rows, columns=width)
    assert widest(text) <= width and "\t" not in text
    assert "postprocess" in text and "REPORT RequestId: xxx" in text


def test_a_malformed_query_is_one_line_with_where_the_error_is() -> None:
    query = "fields @message\n| fieldz @timestamp"
    response: Any = {
        "Error": {"Code": "MalformedQueryException", "Message": "unexpected symbol 'fieldz': not a query command"},
        "queryCompileError": {"location": {"startCharOffset": 18, "endCharOffset": 23}, "message": "x"},
    }
    error = insights.refused(ClientError(response, "StartQuery"), query)
    assert error.cause == (
        "the query does not parse: unexpected symbol 'fieldz': not a query command (line 2, column 3: 'fieldz')"
    )
    assert "insights --list`" in error.fix


# -- the load's summary, the steps, the model --------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_the_load_summary_fits_the_terminal(width: int) -> None:
    entry = SimpleNamespace(
        name="StartExecution", num_requests=500, num_failures=3, max_response_time=812.0,
        get_response_time_percentile=lambda p: 1000.0 if p > 0.9 else 40.0,
    )  # fmt: skip
    error = SimpleNamespace(occurrences=3, name="StartExecution", error="StartFailedError('" + "x" * 300 + "')")
    stats = SimpleNamespace(entries={("StartExecution", "SFN"): entry}, errors={"e": error})
    lines = summary.lines(stats, width)
    assert all(len(line) <= width for line in lines), lines
    assert re.search(r"StartExecution\s+500\s+3\s+40\s+812\s+812", "\n".join(lines))  # a p95 above max: max


@pytest.mark.parametrize("width", WIDTHS)
def test_where_the_time_goes_fits_and_names_the_gap(width: int) -> None:
    record = record_for(two_item_history())
    logs = model.Logs(
        functions=(
            model.FunctionLogs("Embed", "/aws/lambda/e", 2, 1, 300.0, duration_ms_p50=251.0, init_ms_mean=300.0),
        )
    )
    record = dataclasses.replace(record, logs=logs)
    stats = analysis.stats(record)
    text = steps.table([("burst-c10", record, stats)], columns=width)
    assert widest(text) <= width, text
    (row,) = [line for line in text.splitlines() if " Embed " in line]
    state = stats.step_ms["Embed"]["p50"]
    assert state is not None and f"{state - 251.0:.0f}" in row.split() and "1 (300 ms)" in row
    caption = steps.caption(record, "burst-c10")
    assert caption is not None and "Lambda(s) ran while" in caption and "orchestration" in caption


def test_a_fit_on_as_many_points_as_parameters_says_what_it_cannot_tell() -> None:
    exact = scaling.fit([(2, 3.9), (5, 8.0), (10, 11.5)])
    assert exact.exact and exact.r2 == pytest.approx(1.0)
    text = "\n".join(model_summary(exact, 2, 10))
    assert "passes through every point by construction" in text and "R² = 1 says nothing" in text
    assert "still rises" in text and "no ceiling within the measured range" in text
    peaked = scaling.USL(4.0, 0.05, 0.01, 0.99, points=7, parameters=3)
    assert peaked.peak_concurrency is not None and 1 <= peaked.peak_concurrency <= 40
    assert "peaks at max_concurrency" in "\n".join(model_summary(peaked, 1, 40))


def test_the_history_warning_counts_retries_only_where_429s_are_expected() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "T",
                    "States": {"T": {"Type": "Task", "Retry": [{"MaxAttempts": 6}], "End": True}},
                },
                "End": True,
            }
        },
    }
    assert history_limit.warning(500, definition, throttling=False) is None
    warned = history_limit.warning(1500, definition, throttling=True)
    assert warned is not None and "Retry" in warned
