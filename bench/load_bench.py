"""Load harness benchmark (`make bench`): does Locust start executions at the configured rate?

For 10, 50 and 200 executions/s over 20 s against the emulator (the deployed pipeline,
batches of 1 ticket, 0 ms model), measure the achieved start rate, its relative error,
and StartExecution latency p50/p99 from the run manifest. Then, against a one-state
(Pass) machine so that the emulator's Lambda work is not the limit, raise the rate until
one Locust process no longer keeps up (achieved < 98 % of configured). After each pipeline rate
the benchmark waits until none of the pipeline's executions runs any more (the backlog the emulator
had not run when Locust stopped, reported beside the rate), so that the next rate and the probe
are not measured against it.

Results: bench/results/load.json and bench/results/load.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from capacity_bench import drained  # noqa: E402
from emulator_support import deploy, running_emulator  # noqa: E402

from scaleorfail.record.manifest import load  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def run_locust(
    state_dir: Path, run_dir: Path, run_id: str, rate: float, seconds: float, arn: str | None
) -> dict[str, Any]:
    env = {**os.environ, "SOF_STATE_DIR": str(state_dir)}
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"), "--headless",
        "--profile", "steady", "--rate", str(rate), "--duration", str(seconds), "--batch-size", "1",
        "--track-completion", "off", "--run-dir", str(run_dir), "--run-id", run_id, "--loglevel", "WARNING",
    ]  # fmt: skip
    if arn:
        command += ["--state-machine-arn", arn]
    subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, timeout=seconds + 300)
    manifest = load(run_dir / run_id)
    moments = sorted(datetime.fromisoformat(e.started_at).timestamp() for e in manifest.executions)
    latencies = sorted(e.latency_ms for e in manifest.executions)
    planned = int(manifest.parameters["executions_planned"])
    # n starts span n-1 intervals of 1/rate: the interval rate is the achieved start rate
    achieved = (len(moments) - 1) / (moments[-1] - moments[0]) if len(moments) > 1 else 0.0
    return {
        "configured_per_s": rate,
        "seconds": seconds,
        "planned": planned,
        "started": len(manifest.executions),
        "failed_starts": len(manifest.failed_starts),
        "achieved_per_s": round(achieved, 2),
        "relative_error": round(abs(achieved - rate) / rate, 4),
        "start_latency_ms_p50": round(latencies[len(latencies) // 2], 1) if latencies else None,
        "start_latency_ms_p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
        if latencies
        else None,
        "failed_start_errors": sorted({f.error for f in manifest.failed_starts}),
    }


def main() -> int:
    seconds = float(os.environ.get("SOF_BENCH_SECONDS", "20"))
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "command": "make bench (python bench/load_bench.py)",
    }
    with (
        tempfile.TemporaryDirectory(prefix="sof-load-bench-") as scratch,
        running_emulator(Path(scratch) / "state") as emulator,
    ):
        outputs = deploy(emulator, simulated_infer_ms=0, infer_jitter_sigma_ms=0, model_memory_mb=0)
        runs = Path(scratch) / "runs"
        sfn = emulator.client("stepfunctions")
        result["pipeline"] = []
        for rate in (10, 50, 200):
            row = run_locust(emulator.state_dir, runs, f"pipe-{rate}", rate, seconds, None)
            # what the emulator had not run yet when Locust stopped: the next measurement must not share it
            row["backlog_drained_s"] = drained(sfn, outputs["state_machine_arn"])
            print(f"pipeline {row}", flush=True)
            result["pipeline"].append(row)
        iam = emulator.client("iam")
        role = iam.create_role(RoleName="probe", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        probe = emulator.client("stepfunctions").create_state_machine(
            name="rate-probe",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
            roleArn=role,
        )["stateMachineArn"]
        result["probe"] = []
        for rate in (200, 300, 400, 600):
            row = run_locust(emulator.state_dir, runs, f"probe-{rate}", rate, min(seconds, 10.0), probe)
            print(f"probe {row}", flush=True)
            result["probe"].append(row)
            if row["achieved_per_s"] < 0.98 * rate or row["failed_starts"]:
                break
        sustained = [
            r["configured_per_s"] for r in result["probe"] if r["achieved_per_s"] >= 0.98 * r["configured_per_s"]
        ]
        result["max_sustained_per_s"] = max(sustained) if sustained else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "load.md").write_text(markdown(result))
    print((RESULTS / "load.md").read_text())
    return 0


def failure_note(rows: list[dict[str, Any]]) -> str:
    failed = [
        f"{r['configured_per_s']}/s: {', '.join(r['failed_start_errors'])}" for r in rows if r["failed_start_errors"]
    ]
    return "Errors of failed starts - " + "; ".join(failed) if failed else "No start failed."


def markdown(result: dict[str, Any]) -> str:
    headers = [
        "configured /s", "achieved /s", "relative error", "goal <= 2%", "started", "failed", "p50 ms", "p99 ms",
        "backlog run after (s)",
    ]  # fmt: skip

    def rows(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (
                r["configured_per_s"],
                r["achieved_per_s"],
                f"{r['relative_error'] * 100:.2f}%",
                "met" if r["relative_error"] <= 0.02 else "missed",
                r["started"],
                r["failed_starts"],
                r["start_latency_ms_p50"],
                r["start_latency_ms_p99"],
                r.get("backlog_drained_s", "-"),
            )
            for r in items
        ]

    return "\n".join(
        [
            "# Load harness benchmark",
            "",
            f"Measured {result['measured_at']} ({result['cpus']} CPUs), `{result['command']}`.",
            "",
            f"## Start rate against the deployed pipeline ({result['pipeline'][0]['seconds']:g} s each, "
            "1 ticket, 0 ms model)",
            "",
            tabulate(rows(result["pipeline"]), headers=headers, tablefmt="github"),
            "",
            failure_note(result["pipeline"]),
            "",
            "## One Locust process against a one-state machine (the harness's own limit)",
            "",
            tabulate(rows(result["probe"]), headers=headers, tablefmt="github"),
            "",
            f"Largest rate one Locust process sustained (>= 98 % of configured): **{result['max_sustained_per_s']}/s**",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
