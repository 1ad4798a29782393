"""EMULATOR-BOUND: the emulator's CPU over a run, and what the evidence does with it.

A sweep point the emulator itself paced is never presented as AWS's behaviour: compare and the
report say so beside it, the plot circles it, the scaling fit leaves it out.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from test_harvest_units import record_for, two_item_history

from scaleorfail.emulator.cpuwatch import CpuWatch, Sample, summarise
from scaleorfail.evidence import analysis, compare, rca, report
from scaleorfail.record import cpu
from scaleorfail.usecases.compare import fit_model


def steady(cores: float, seconds: int, load: float = 0.5, at: float = 1000.0) -> list[Sample]:
    """One sample a second of a server using `cores` of CPU."""
    return [Sample(at + t, t * cores, load) for t in range(seconds + 1)]


def test_a_window_sums_the_servers_cpu_between_the_samples_around_it() -> None:
    samples = steady(0.5, 60)
    found = summarise(samples, 1010.4, 1020.6)
    assert found is not None and found.samples == 12  # 1010 .. 1021: the samples just around the window
    assert found.server_cores == pytest.approx(0.5) and found.server_cores_peak == pytest.approx(0.5)
    assert summarise(samples[:1], 1000.0, 1000.5) is None  # one sample covers no time


def test_a_short_saturation_shows_in_the_peak_not_in_the_average() -> None:
    quiet, busy = steady(0.1, 30), steady(1.0, 6, at=1031.0)
    shifted = [Sample(s.at, s.cpu_s + quiet[-1].cpu_s + 0.1, s.load) for s in busy]
    found = summarise(quiet + shifted, 1000.0, 1037.0)
    assert found is not None
    assert found.server_cores < 0.3 and found.server_cores_peak == pytest.approx(1.0, abs=0.05)


def test_a_window_tells_how_long_tasks_waited_for_a_cpu_and_how_busy_the_machine_was() -> None:
    # 10 s of a 2-CPU machine: runnable tasks waited 6 s of them, and 15 of its 20 CPU seconds were busy
    samples = [Sample(1000.0 + t, 0.1 * t, 1.0, stall_s=0.6 * t, busy_s=1.5 * t) for t in range(11)]
    found = summarise(samples, 1000.0, 1010.0)
    assert found is not None
    if found.cpus == 2:
        assert found.machine_busy == pytest.approx(0.75)
    assert found.cpu_stalled == pytest.approx(0.6)
    untold = summarise(steady(0.5, 10), 1000.0, 1010.0)  # no PSI, no /proc/stat (not Linux): nothing is claimed
    assert untold is not None and untold.cpu_stalled is None and untold.machine_busy is None


def test_the_watch_samples_this_process() -> None:
    watch = CpuWatch(interval_s=0.05).start()
    try:
        began = time.time()
        sum(i * i for i in range(300_000))  # some CPU for the window
        found = watch.window(began - 0.05, time.time())
    finally:
        watch.stop()
    assert found is not None and found.server_cores > 0 and found.cpus >= 1


@pytest.mark.parametrize(
    ("window", "flag"),
    [
        ({"server_cores": 0.97, "load_before": 0.3, "cpus": 2}, "EMULATOR-BOUND"),
        ({"server_cores": 0.40, "load_before": 5.0, "cpus": 2}, None),  # the load is told, not judged
        ({"server_cores": 0.40, "load_before": 1.0, "cpus": 2}, None),
        ({}, None),
    ],
)
def test_the_emulator_bound_verdict(window: dict[str, float], flag: str | None) -> None:
    found = cpu.verdict(window)
    assert (found.name if found else None) == flag


@pytest.mark.parametrize(
    ("window", "flagged"),
    [
        ({"server_cores": 0.4, "cpus": 2, "cpu_stalled": 0.9, "machine_busy": 1.0}, True),
        ({"server_cores": 0.4, "cpus": 2, "cpu_stalled": 0.5}, True),
        ({"server_cores": 0.4, "cpus": 2, "cpu_stalled": 0.1, "machine_busy": 0.6}, False),
        ({"server_cores": 0.4, "cpus": 2, "cpu_stalled": None}, False),  # not told: not judged
        ({"server_cores": 0.4, "cpus": 2}, False),  # a record harvested before the watch told it
        ({}, False),  # real AWS: no emulator, no machine of ours
    ],
)
def test_a_machine_whose_tasks_waited_for_a_cpu_is_flagged_contended(window: dict[str, float], flagged: bool) -> None:
    found = cpu.contended(window)
    assert (found is not None) is flagged
    if found:
        assert found.name == "HOST-CONTENDED" and f"{window['cpu_stalled']:.0%} of the run" in found.why
        assert [f.name for f in cpu.flags(window)] == ["HOST-CONTENDED"]


def flagged_runs() -> tuple[list[analysis.RunStats], list[object]]:
    """Four settings of the same burst; the emulator saturated at the last one."""
    base = record_for(two_item_history())
    records = []
    for c, cores in ((1, 0.2), (2, 0.3), (4, 0.5), (8, 0.98)):
        window = {"server_cores": cores, "server_cores_peak": cores, "load_before": 0.2, "cpus": 2, "samples": 9}
        records.append(
            replace(base, run_id=f"r{c}", label=f"sweep-c{c}", parameters={"max_concurrency": c}, emulator_cpu=window)
        )
    runs = [analysis.stats(r) for r in records]
    for run, speed in zip(runs, (1.0, 1.9, 3.4, 3.5), strict=True):
        run.throughput = speed
    return runs, records


def test_an_emulator_bound_point_is_named_in_the_notes_and_left_out_of_the_fit(tmp_path: Path) -> None:
    runs, records = flagged_runs()
    assert [r.emulator_flag for r in runs] == [None, None, None, "EMULATOR-BOUND"]
    notes = compare.footnotes(runs, runs[0])
    (said,) = [n for n in notes if "EMULATOR-BOUND" in n]
    assert said.startswith("sweep-c8: EMULATOR-BOUND - the emulator's server process used 0.98 of a core")
    assert "not AWS's behaviour" in said
    model = fit_model(runs)
    assert model is not None and model.points == 3  # c=1, 2, 4: the saturated c=8 is not the service's curve
    written = report.build(runs, records, runs[0], model, tmp_path)  # type: ignore[arg-type]
    assert "sweep-c8: EMULATOR-BOUND" in written["md"].read_text()
    diagnosis = rca.diagnose(records[-1], runs[-1])  # type: ignore[arg-type]
    assert any(n.startswith("EMULATOR-BOUND: the emulator's server process") for n in diagnosis.notes)
