"""Distributed Map benchmark: the inline and the distributed sweeps on the same tickets, and a 5,000-ticket run.

Parts (``--part``, default all):

* ``sweep`` - `sof sweep --map-mode both -n 500 --concurrency 10,20,40,100,200` as a learner runs
  it (the inline Map at 10, 20, 40; the Distributed Map - one STANDARD child execution per
  ticket - at 10, 20, 40, 100, 200), on the emulator's calibrated ``aws`` timing profile;
* ``express`` - the distributed point at 40 again with EXPRESS children (their record is the
  execution log): the cost of the same work billed per request and GB-second;
* ``sandbox`` - the distributed point at 40 in the workshop's sandbox account (Lambda concurrency
  10): what limits the Distributed Map once the history no longer does;
* ``big`` - 5,000 tickets in one execution, read from S3, at max_concurrency 100: every ticket
  accounted for in the harvest (one child execution each).

Every point records the wall time, throughput, queue wait, peak concurrency, list-price cost
(scaleorfail/data/prices.json), the child executions, the harvest's API calls, the machine's load
average and the emulator server's CPU while it ran: a server busy more than EMULATOR_BOUND of
one core is flagged - the emulator, not the modelled service, was then what limited the point.

Results: bench/results/distributed.json and bench/results/distributed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TICKETS = 500
SETTINGS = [10, 20, 40, 100, 200]
BIG_TICKETS, BIG_CONCURRENCY = 5000, 100
EMULATOR_BOUND = 0.85  # of one core: the server (one Python process) is saturated
BUSY_LOAD = 1.5  # load average per CPU above which the machine, shared with other work, starved the emulator
PARTS = ("sweep", "express", "sandbox", "big")
KNOBS: dict[str, Any] = {}  # the emulator settings each part ran with (timing knobs, profile, retention)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class CpuMeter:
    """CPU seconds of the emulator server and its Lambda workers over a span of wall time."""

    def __init__(self, pid: int) -> None:
        self.server = psutil.Process(pid)

    def sample(self) -> tuple[float, float, float]:
        times = self.server.cpu_times()
        workers = 0.0
        for child in self.server.children(recursive=True):
            try:
                spent = child.cpu_times()
                workers += spent.user + spent.system
            except psutil.Error:
                continue
        return time.monotonic(), times.user + times.system, workers

    @staticmethod
    def between(before: tuple[float, float, float], after: tuple[float, float, float]) -> dict[str, float]:
        wall = max(1e-6, after[0] - before[0])
        return {
            "wall_s": round(wall, 1),
            "server_cpu_s": round(after[1] - before[1], 1),
            "server_cores": round((after[1] - before[1]) / wall, 2),
            "workers_cpu_s": round(max(0.0, after[2] - before[2]), 1),
        }


@contextmanager
def emulator(work: Path, name: str, timing: str = "aws", **env: str) -> Iterator[tuple[Any, CpuMeter]]:
    from scaleorfail import target as targets
    from scaleorfail.emulator import control
    from scaleorfail.emulator.settings import resolve

    state, runs = work / f"state-{name}", work / f"runs-{name}"
    os.environ["SOF_STATE_DIR"], os.environ["SOF_RUNS_DIR"] = str(state), str(runs)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = replace(resolve(timing=timing, profile=env.get("SOF_PROFILE")), port=free_port())
    state.mkdir(parents=True, exist_ok=True)
    running = control.up(settings, state, state / "emulator.log")
    KNOBS[name] = {k: v for k, v in settings.to_json().items() if k not in ("host", "port")}
    try:
        yield targets.local_target(), CpuMeter(running.pid)
    finally:
        control.down(state)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def point(record: Any, cpu: dict[str, float], load: tuple[float, float]) -> dict[str, Any]:
    from scaleorfail.evidence import analysis

    stats = analysis.stats(record)
    cost = stats.cost
    runs = record.map_runs
    return {
        "label": record.label,
        "map_mode": stats.map_mode,
        "max_concurrency": stats.max_concurrency,
        "tickets": stats.tickets,
        "tickets_ok": stats.tickets_ok,
        "items_harvested": len(record.items),
        "executions_ok": stats.executions_ok,
        "wall_s": stats.wall_s,
        "throughput": stats.throughput,
        "queue_wait_p95_s": None if (wait := stats.queue_wait_ms.get("p95")) is None else round(wait / 1000, 1),
        "peak_concurrency": stats.peak_concurrency,
        "throttles": stats.throttles,
        "retries": stats.retries,
        "child_executions": sum(r.children for r in runs),
        "children_read": sum(r.children_read for r in runs),
        "child_execution_type": runs[0].execution_type if runs else None,
        "state_transitions": cost.state_transitions if cost else None,
        "usd_per_1000_tickets": cost.usd_per_1000_tickets if cost else None,
        "express_requests": cost.express_requests if cost else 0,
        "harvest_s": record.harvest_seconds,
        "harvest_api_calls": record.api_calls,
        "reconciled": record.reconciliation.balanced and not record.reconciliation.missing,
        "emulator": cpu,
        "emulator_bound": cpu["server_cores"] >= EMULATOR_BOUND,
        "load_before": load[0],
        "load_after": load[1],
    }


def burst(target: Any, meter: CpuMeter, n: int, c: int, label: str) -> dict[str, Any]:
    from scaleorfail.load import runner
    from scaleorfail.usecases.harvest import harvest_runs

    load = os.getloadavg()[0]
    before = meter.sample()
    run_dir = runner.burst("local", n, c, label)
    after = meter.sample()
    (record,) = harvest_runs([str(run_dir)], wait_s=1800.0, quiet=True)
    found = point(record, CpuMeter.between(before, after), (round(load, 2), round(os.getloadavg()[0], 2)))
    print(
        f"  {label}: {n} tickets at {c}: {found['wall_s']} s, {found['throughput']} tickets/s, server "
        f"{found['emulator']['server_cores']} cores, load {found['load_before']}",
        file=sys.stderr,
        flush=True,
    )
    return found


def sweep_part(work: Path) -> list[dict[str, Any]]:
    from scaleorfail.deploy import local
    from scaleorfail.usecases import sweep

    out = []
    deployed = None
    with emulator(work, "sweep") as (target, meter):
        for mode, c in sweep.plan(SETTINGS, "both"):
            if mode != deployed:  # as `sof sweep --map-mode both` does: the inline Map, then the distributed one
                local.deploy(target, overrides={"map_mode": mode})
                deployed = mode
            out.append(burst(target, meter, TICKETS, c, sweep.label(mode, c)))
    return out


def variant_part(work: Path, name: str, variables: dict[str, Any], c: int, **env: str) -> list[dict[str, Any]]:
    from scaleorfail.deploy import local

    with emulator(work, name, **env) as (target, meter):
        local.deploy(target, overrides={"map_mode": "distributed", **variables})
        return [burst(target, meter, TICKETS, c, f"{name}-dist-c{c}")]


def big_part(work: Path) -> list[dict[str, Any]]:
    from scaleorfail.deploy import local

    # every child is an execution the emulator keeps until the harvest: room for 5,000 of them and the parent
    with emulator(work, "big", SOF_RETAIN_EXECUTIONS="20000", SOF_RETAIN_EXECUTION_MB="1024") as (target, meter):
        local.deploy(target, overrides={"map_mode": "distributed"})
        return [burst(target, meter, BIG_TICKETS, BIG_CONCURRENCY, f"big-dist-c{BIG_CONCURRENCY}")]


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Distributed Map benchmark",
        "",
        f"Generated {result['generated']} by `python bench/distributed_bench.py` on {result['machine']} "
        f"(emulator timing profile `aws`; load average 1 min recorded beside each point).",
        "",
    ]
    headers = ["run", "Map", "max conc.", "tickets ok", "wall s", "tickets/s", "wait p95 s", "peak", "throttles",
               "children", "$/1k tickets", "server cores", "load", "note"]  # fmt: skip
    for part in PARTS:
        rows = result["parts"].get(part)
        if not rows:
            continue
        lines += [f"## {part}", ""]
        table = [
            [
                r["label"],
                r["map_mode"] + (f" ({r['child_execution_type']})" if r["child_execution_type"] else ""),
                r["max_concurrency"],
                f"{r['tickets_ok']}/{r['tickets']}",
                r["wall_s"],
                r["throughput"],
                r["queue_wait_p95_s"],
                r["peak_concurrency"],
                r["throttles"],
                r["child_executions"],
                r["usd_per_1000_tickets"],
                r["emulator"]["server_cores"],
                r["load_before"],
                ", ".join(
                    flag
                    for flag, on in (
                        ("EMULATOR-BOUND", r["emulator_bound"]),
                        ("MACHINE BUSY", r["load_before"] > BUSY_LOAD * (os.cpu_count() or 1)),
                    )
                    if on
                ),
            ]
            for r in rows
        ]
        lines += [tabulate(table, headers=headers, tablefmt="github"), ""]
    lines += [
        "Columns: `children`, the Map Run's child executions (0 for the inline Map); `$/1k tickets`, list "
        "price from the harvested record (Lambda GB-s and requests, Standard state transitions - the "
        "children's included -, Express requests and GB-s); `server cores`, the emulator server's CPU "
        f"over the run's wall time (one Python process: from {EMULATOR_BOUND} the emulator itself bounded the "
        "point, flagged EMULATOR-BOUND); `load`, the machine's 1-minute load average when the point started "
        f"(above {BUSY_LOAD:g} per CPU other work on the machine starved the emulator: MACHINE BUSY - such a point "
        "understates what the emulator, let alone AWS, does).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=(*PARTS, "all"), default="all")
    args = parser.parse_args()
    parts = PARTS if args.part == "all" else (args.part,)
    path = RESULTS / "distributed.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"parts": {}}
    with tempfile.TemporaryDirectory(prefix="sof-distributed-") as tmp:
        work = Path(tmp)
        for part in parts:
            print(f"{part} ...", file=sys.stderr, flush=True)
            if part == "sweep":
                result["parts"][part] = sweep_part(work)
            elif part == "express":
                express = {"distributed_map": {"execution_type": "EXPRESS"}}
                result["parts"][part] = variant_part(work, "express", express, 40)
            elif part == "sandbox":
                result["parts"][part] = variant_part(work, "sandbox", {}, 40, SOF_PROFILE="sandbox")
            else:
                result["parts"][part] = big_part(work)
    result.setdefault("settings", {}).update(KNOBS)
    result["generated"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "distributed.md").write_text(markdown(result))
    print(f"wrote {path} and {RESULTS / 'distributed.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
