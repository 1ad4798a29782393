"""The achieved start rate against the asked one: recorded in the manifest, flagged by compare and rca; and
the rows compare must not trust (lost executions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_harvest_units import record_for, two_item_history

from scaleorfail.evidence import analysis, compare, rca
from scaleorfail.record import codec, model
from scaleorfail.record.manifest import Manifest, Started
from scaleorfail.record.pace import StartPace, measure

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def starts(count: int, every_s: float, latency_ms: float) -> list[tuple[str, float]]:
    return [((T0 + timedelta(seconds=i * every_s)).isoformat(), latency_ms) for i in range(count)]


def test_a_run_on_pace_measures_its_asked_rate_and_a_slow_one_its_shortfall() -> None:
    on_time = measure(600, 60.0, starts(600, 0.1, 40.0), [])
    assert on_time is not None and on_time.achieved_per_s == 10.0 and not on_time.short
    # asked 180/s for 60 s; the harness made 42 calls a second (StartExecution p50 5.2 s) and was cut off at 60 s
    slow = measure(10_800, 60.0, starts(2_520, 1 / 42, 5_200.0), [])
    assert slow is not None and slow.short and 41.0 < slow.achieved_per_s < 43.0
    assert slow.culprit.startswith("the target: StartExecution took p50 5.2 s")
    assert measure(1, 0.0, starts(1, 0, 40.0), []) is None  # a single batch: nothing to pace


def test_the_manifest_records_the_achieved_rate_beside_the_asked_one() -> None:
    manifest = Manifest(
        "r", "fast", "local", "steady", {"rate": 180.0, "duration": 60.0, "executions_planned": 10_800}, {}, None,
        "us-east-1", T0.isoformat(),
        executions=[Started(f"r-{i}", f"arn:{i}", at, 1, 0, i, lat) for i, (at, lat) in
                    enumerate(starts(2_520, 1 / 42, 5_200.0))],
    )  # fmt: skip
    pace = manifest.to_json()["summary"]["start_pace"]
    assert pace["asked_per_s"] == 180.0 and 41.0 < pace["achieved_per_s"] < 43.0 and pace["short"] is True


def stream_record(pace: StartPace | None, executions: int = 3) -> model.HarvestRecord:
    one = record_for(two_item_history())
    many = tuple(replace(one.executions[0], name=f"r-{i}", arn=f"arn:{i}") for i in range(executions))
    return replace(one, executions=many, profile="steady", start_pace=pace)


def test_compare_and_rca_flag_a_run_that_did_not_start_at_the_asked_rate() -> None:
    short = StartPace(180.0, 42.0, 2_520, 5_200.0)
    record = stream_record(short)
    assert codec.loads(codec.dumps(record)) == record  # the record keeps it
    run = analysis.stats(record)
    notes = " ".join(compare.footnotes([run], None))
    assert "starts fell short - started 42.0/s of the 180/s asked (23%); the target" in notes
    diagnosis = rca.diagnose(record, run)
    assert any("BELOW 90%: the target: StartExecution took p50 5.2 s" in line for line in diagnosis.what_happened)
    assert any("not the experiment it asked for" in note for note in diagnosis.notes)
    fine = analysis.stats(stream_record(StartPace(10.0, 9.8, 600, 40.0)))
    assert "starts fell short" not in " ".join(compare.footnotes([fine], None))


def test_a_stream_of_batches_is_not_flagged_for_more_in_flight_than_one_map_allows() -> None:
    run = analysis.stats(stream_record(None, executions=8))
    assert run.little_ratio is not None and run.little_ratio > 1.15  # eight Maps at once: L exceeds one Map's slots
    assert run.little_flag is None
    assert "more in flight" not in " ".join(compare.footnotes([run], None))


def test_compare_flags_a_row_that_lost_executions() -> None:
    record = stream_record(None)
    lost = replace(
        record,
        executions=(),
        reconciliation=replace(record.reconciliation, missing=(model.Missing("r-0", "lost: the emulator restarted"),)),
    )
    run = analysis.stats(lost)
    assert "!1 LOST" in compare.table([run])
    assert compare.lost([run]) and "1 execution(s) lost" in compare.lost([run])[0]
    assert compare.lost([analysis.stats(record)]) == []


def test_sof_compare_over_a_run_that_lost_executions_flags_its_row_and_exits_1(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    lost = stream_record(None)
    lost = replace(
        lost,
        run_id="r-lost",
        label="lost",
        executions=lost.executions[:1],
        reconciliation=replace(
            lost.reconciliation, missing=(model.Missing("r-1", "lost: the emulator was restarted after this run"),)
        ),
    )
    folder = tmp_path / "r-lost"
    folder.mkdir()
    (folder / "harvest.json").write_text(codec.dumps(lost))  # final: served from the cache, no target needed
    (folder / "manifest.json").write_text(json.dumps({"schema": "scale-or-fail/run-manifest", "version": 1}))
    done = subprocess.run(
        [sys.executable, "-m", "scaleorfail.cli", "compare", str(folder), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, env={**os.environ, "SOF_RUNS_DIR": str(tmp_path)}, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("lost"))
    assert "!1 LOST" in row, done.stdout
    assert "error: run lost: 1 execution(s) lost" in done.stderr and "Traceback" not in done.stderr
