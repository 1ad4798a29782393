"""Harvest benchmark (`make bench`): 1,000 executions (3 Lambda steps each) read back from the emulator.

Goal: under 30 s, and at most 1 + ceil(events/1000) GetExecutionHistory calls per
execution plus a fixed number of other calls. Results: bench/results/harvest.{json,md}.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from emulator_support import deploy, running_emulator  # noqa: E402

from scaleorfail.harvest import collect  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def main() -> int:
    executions = int(os.environ.get("SOF_BENCH_EXECUTIONS", "1000"))
    rate = 40.0
    with (
        tempfile.TemporaryDirectory(prefix="sof-harvest-bench-") as scratch,
        running_emulator(Path(scratch) / "st") as em,
    ):
        deploy(em, simulated_infer_ms=0, infer_jitter_sigma_ms=0, model_memory_mb=0)
        runs = Path(scratch) / "runs"
        env = {**os.environ, "SOF_STATE_DIR": str(em.state_dir)}
        command = [
            sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"), "--headless",
            "--profile", "steady", "--rate", str(rate), "--duration", str(executions / rate), "--batch-size", "1",
            "--max-concurrency", "1", "--run-id", "harvest-bench", "--run-dir", str(runs), "--loglevel", "WARNING",
        ]  # fmt: skip
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=900)
        began = time.monotonic()
        record = collect.harvest(runs / "harvest-bench", collect.Options(quiet=True, refresh=True))
        elapsed = time.monotonic() - began
        began = time.monotonic()
        collect.harvest(runs / "harvest-bench", collect.Options(quiet=True))
        cached = time.monotonic() - began
    harvested = record.executions
    pages_needed = sum(math.ceil(e.events / 1000) for e in harvested)
    calls = record.api_calls
    history_calls = calls.get("GetExecutionHistory", 0)
    other = {k: v for k, v in calls.items() if k != "GetExecutionHistory"}
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "command": "make bench (python bench/harvest_bench.py)",
        "executions": len(harvested),
        "by_status": record.reconciliation.harvested_by_status,
        "reconciled": record.reconciliation.balanced,
        "harvest_seconds": round(elapsed, 2),
        "cached_seconds": round(cached, 3),
        "history_calls": history_calls,
        "history_pages_needed": pages_needed,
        "history_calls_per_execution": round(history_calls / max(1, len(harvested)), 3),
        "other_calls": other,
        "goal_seconds": 30,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "harvest.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("executions harvested", f"{result['executions']} ({', '.join(f'{v} {k}' for k, v in result['by_status'].items())})"),  # noqa: E501
        ("reconciled with the manifest", result["reconciled"]),
        ("harvest wall time", f"{result['harvest_seconds']} s (goal < 30 s)"),
        ("second harvest (cache)", f"{result['cached_seconds']} s"),
        ("GetExecutionHistory calls", f"{history_calls} = {result['history_calls_per_execution']} per execution "
                                      f"(pages needed: {pages_needed}; goal <= 1 + ceil(events/1000))"),
        ("other calls (fixed)", ", ".join(f"{k} {v}" for k, v in other.items())),
    ]  # fmt: skip
    (RESULTS / "harvest.md").write_text(
        "# Harvest benchmark\n\n"
        f"Measured {result['measured_at']} ({result['cpus']} CPUs), `{result['command']}`.\n\n"
        + tabulate(rows, headers=["measure", "value"], tablefmt="github")
        + "\n"
    )
    print((RESULTS / "harvest.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
