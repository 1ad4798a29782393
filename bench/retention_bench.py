"""Emulator memory under a stream of large executions, with the default retention.

A run of 1,400-ticket executions (0 ms model, Map concurrency 40) one after the other:
far more log events and metric points than the retention keeps. Reports the emulator
process's resident memory after each execution, its peak, and what the retention let
go. Results: bench/results/retention.{json,md}. `python bench/retention_bench.py`
(SOF_BENCH_EXECUTIONS=12, SOF_BENCH_TICKETS=1400).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from emulator_support import deploy, running_emulator, tickets  # noqa: E402

from scaleorfail.emulator import control  # noqa: E402
from scaleorfail.load import history_limit  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def main() -> int:
    executions = int(os.environ.get("SOF_BENCH_EXECUTIONS", "12"))
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sof-retention-bench-") as scratch, running_emulator(Path(scratch)) as em:
        outputs = deploy(em, simulated_infer_ms=0, infer_jitter_sigma_ms=0, infer_jitter_clamp_ms=0)
        sfn = em.client("stepfunctions")
        definition = sfn.describe_state_machine(stateMachineArn=outputs["state_machine_arn"])["definition"]
        found = history_limit.budget(definition)
        assert found is not None, "the deployed pipeline has no inline Map"
        # the largest batch under Step Functions' 25,000-event history limit, in hundreds: 1,400 (2,000, the
        # figure before the emulator enforced that limit, fails with States.Runtime)
        size = int(os.environ.get("SOF_BENCH_TICKETS") or found.largest_batch() // 100 * 100)
        current = control.read_state(em.state_dir)
        assert current is not None
        server = psutil.Process(current.pid)
        idle = server.memory_info().rss / 2**20
        payload = json.dumps({"tickets": tickets(size), "max_concurrency": 40})
        peak = idle
        began = time.monotonic()
        for _ in range(executions):
            arn = sfn.start_execution(stateMachineArn=outputs["state_machine_arn"], input=payload)["executionArn"]
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                peak = max(peak, server.memory_info().rss / 2**20)
                time.sleep(0.25)
            ended = sfn.describe_execution(executionArn=arn)
            assert ended["status"] == "SUCCEEDED", (ended["status"], ended.get("error"), ended.get("cause"))
            samples.append(round(server.memory_info().rss / 2**20, 1))
            peak = max(peak, samples[-1])
        elapsed = time.monotonic() - began
        time.sleep(6)  # one more trim interval, then the final counts
        health = control.health(em.url) or {}
    kept = health.get("retention", {})
    settings = health.get("settings", {})
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "command": "python bench/retention_bench.py",
        "executions": executions,
        "tickets_per_execution": size,
        "seconds": round(elapsed, 1),
        "rss_idle_mb": round(idle, 1),
        "rss_after_each_mb": samples,
        "rss_peak_mb": round(peak, 1),
        "retention_settings": {k: v for k, v in settings.items() if k.startswith("retain_")},
        "retention": kept,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "retention.json").write_text(json.dumps(result, indent=2) + "\n")
    half = len(samples) // 2
    rows = [
        ("workload", f"{executions} executions x {size} tickets ({executions * size} Map items), {elapsed:.0f} s"),
        ("emulator RSS after deploy", f"{idle:.0f} MB"),
        ("RSS after each execution", ", ".join(f"{v:.0f}" for v in samples) + " MB"),
        ("RSS peak (sampled every 0.25 s)", f"{peak:.0f} MB"),
        ("RSS growth, second half of the run", f"{samples[-1] - samples[half]:+.0f} MB" if samples else "-"),
        ("finished executions kept / evicted", f"{kept.get('finished_executions')} / {kept.get('evicted_executions')}"),
        ("log events dropped (oldest first)", kept.get("dropped_log_events")),
        ("metric points dropped (oldest first)", kept.get("dropped_metric_points")),
        ("retention", ", ".join(f"{k}={v}" for k, v in result["retention_settings"].items())),
    ]
    (RESULTS / "retention.md").write_text(
        "# Emulator memory and retention\n\n"
        f"Measured {result['measured_at']} ({result['cpus']} CPUs), `{result['command']}`.\n\n"
        + tabulate(rows, headers=["measure", "value"], tablefmt="github")
        + "\n"
    )
    print((RESULTS / "retention.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
