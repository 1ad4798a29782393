"""The largest batch that is safe under bad_input_policy = "quarantine" (Step Functions' 256 KB limits).

An execution's input and every state's output are capped at 256 KB. A batch of N dataset
tickets must fit the input; its Map output - one result per ticket, a REJECTED record
for each bad one - must fit too. This measures the bytes of an OK result and of a
REJECTED record on the emulator, computes the largest N that fits both limits whatever
the share of bad tickets (the bad ones chosen for the longest rejection message), and
checks it by running N (must succeed, all good and all bad) and 1.15 x N (must not fit).
Results: bench/results/quarantine.{json,md}. `python bench/quarantine_bench.py`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from emulator_support import Emulator, deploy, running_emulator  # noqa: E402

from scaleorfail import paths  # noqa: E402
from scaleorfail.load.batches import MAX_INPUT_BYTES, TicketPool, execution_input  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LIMIT = 256 * 1024 - 1  # a state's output must be below 256 KB


def bad_tickets(count: int) -> list[Any]:
    """Bad tickets with the longest rejection message Preprocess gives: a 64-character id (the limit) and a
    text that is empty once whitespace is removed - small inputs, the largest REJECTED records."""
    return [{"ticket_id": f"BAD-{i:05d}".ljust(64, "x"), "text": " "} for i in range(count)]


def execute(em: Emulator, arn: str, batch: list[Any]) -> dict[str, Any]:
    sfn = em.client("stepfunctions")
    payload = execution_input(batch, 40)
    if len(payload.encode()) > MAX_INPUT_BYTES:
        return {"status": "INPUT_TOO_LARGE", "input_bytes": len(payload.encode())}
    execution = sfn.start_execution(stateMachineArn=arn, input=payload)["executionArn"]
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        time.sleep(0.2)
    return {
        "status": described["status"],
        "error": described.get("error"),
        "input_bytes": len(payload.encode()),
        "output_bytes": len(described.get("output", "").encode()),
        "results": json.loads(described["output"])["results"] if described.get("output") else None,
    }


def main() -> int:
    pool = TicketPool(paths.tickets_file())
    with tempfile.TemporaryDirectory(prefix="sof-quarantine-bench-") as scratch, running_emulator(Path(scratch)) as em:
        outputs = deploy(em, simulated_infer_ms=0, infer_jitter_sigma_ms=0, bad_input_policy="quarantine")
        arn = outputs["state_machine_arn"]
        good = execute(em, arn, pool.batch(0, 200))
        bad = execute(em, arn, bad_tickets(200))
        # Sizes as the limit is checked (the emulator, like moto, measures JSON with ", " and ": " separators -
        # a few bytes per record more than compact JSON, so the answer holds on AWS too).
        ok_bytes = max(len(json.dumps(r).encode()) + 2 for r in good["results"])
        rejected_bytes = max(len(json.dumps(r).encode()) + 2 for r in bad["results"])
        envelope = len('{"results": []}')
        by_output = (LIMIT - envelope) // max(ok_bytes, rejected_bytes)
        # The input as a state sees it, re-serialised with separators: 4 more bytes a ticket than compact.
        by_input = max(n for n in range(1, 5000) if pool.largest_input_bytes(n, 40) + 4 * n <= LIMIT)
        safe = min(by_output, by_input)
        checks = {
            "safe, all good": execute(em, arn, pool.batch(0, safe)),
            "safe, all bad": execute(em, arn, bad_tickets(safe)),
            "1.15 x safe, all good": execute(em, arn, pool.batch(0, int(safe * 1.15))),
            "1.15 x the output limit, all bad": execute(em, arn, bad_tickets(int(by_output * 1.15))),
        }
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "command": "python bench/quarantine_bench.py",
        "ok_result_bytes_max": ok_bytes,
        "rejected_record_bytes_max": rejected_bytes,
        "largest_batch_by_output": by_output,
        "largest_batch_by_input": by_input,
        "largest_safe_batch": safe,
        "checks": {k: {key: v for key, v in c.items() if key != "results"} for k, c in checks.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quarantine.json").write_text(json.dumps(result, indent=2) + "\n")
    rows: list[tuple[str, Any]] = [
        ("bytes of one OK result (largest, dataset tickets)", ok_bytes),
        ("bytes of one REJECTED record (largest)", rejected_bytes),
        ("largest batch whose Map output fits 256 KB", by_output),
        ("largest batch of dataset tickets whose input fits 256 KB", by_input),
        ("largest safe batch (any share of bad tickets)", safe),
    ]
    for name, check in checks.items():
        shown = check["status"] + (f" ({check['error']})" if check.get("error") else "")
        rows.append((f"check: {name}", f"{shown}, input {check['input_bytes']} B"))
    (RESULTS / "quarantine.md").write_text(
        "# The largest safe batch under quarantine\n\n"
        f"Measured {result['measured_at']} ({result['cpus']} CPUs), `{result['command']}`.\n\n"
        + tabulate(rows, headers=["measure", "value"], tablefmt="github")
        + "\n"
    )
    print((RESULTS / "quarantine.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
