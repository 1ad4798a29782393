"""Capacity benchmark (`make bench`): what the emulator itself carries, with 0 ms handlers and the `ideal` profile.

1. Lambda tasks/s from Step Functions: one execution of N tickets (3 Lambda tasks each) at Map
   max_concurrency 40, after a warm-up execution; tasks/s over the execution's start..stop, and
   the emulator process's CPU per task (and its Lambda workers' CPU) over the same run.
2. StartExecution/s accepted: client threads (each with its own client, no retries) call
   StartExecution as fast as they can for a few seconds, on a one-Pass-state machine (the API
   path alone) and on the pipeline with one ticket (each start then runs 3 Lambda tasks too);
   then how long the executions still running took to end (the backlog), and the emulator's CPU
   per execution over the burst and its backlog - what a start costs, accepted and run.
3. Overhead at max_concurrency 40 inline, as bench/emulator_bench.py defines it: 400 tickets,
   Embed 250 ms, the warm median over the modelled lower bound ceil(400/40) x 250 ms.
4. One cheap API call (DescribeStateMachine from 8 clients): calls/s and the CPU per call of the
   emulator and of the client - the path every harvest read and polling Locust user pays.
5. The emulator's start: from the command to the server's first answer (what every `sof local up`,
   demo and test module waits for).

Goals (issue 22): >= 1,000 tasks/s on 2 CPUs, >= 300 StartExecution/s accepted, overhead <= 1.15.
The CPU other processes used during each measurement is recorded beside it (in cores; the load
average cannot tell, since it counts the benchmark's own threads): on a shared machine a capacity
figure means little without it.

A/B in one run: ``--revisions main,HEAD~2,HEAD`` measures each git revision's emulator (started
from a detached worktree of it, which is also on its PYTHONPATH; a probe checks the import) in
turn, round after round, so what each change bought is seen side by side, on the same machine at
the same time.

Results: bench/results/capacity.json and capacity.md (with --revisions: capacity-ab.json/.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from botocore.exceptions import ClientError
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from emulator_bench import overhead  # noqa: E402
from emulator_support import deploy, running_emulator, tickets  # noqa: E402

from scaleorfail.emulator import control  # noqa: E402

RESULTS = ROOT / "bench" / "results"
GOALS = {"lambda_tasks_per_s": 1000.0, "start_execution_accepted_per_s": 300.0, "overhead_c40": 1.15}
PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


def load() -> float:
    return round(os.getloadavg()[0], 2)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's CPU seconds, its live children's CPU seconds)."""
    process = psutil.Process(pid)
    own = sum(process.cpu_times()[:2])
    children = 0.0
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children += sum(child.cpu_times()[:2])
    return own, children


def busy_cpu(emulator: tuple[float, float]) -> tuple[float, float]:
    """(the machine's busy CPU seconds, those of the emulator and its Lambda environments - `emulator`, as
    :func:`cpu_seconds` read them - and this benchmark)."""
    times = psutil.cpu_times()
    # guest time is counted in user time already; idle and iowait are not work
    skipped = sum(getattr(times, name, 0.0) for name in ("idle", "iowait", "guest", "guest_nice"))
    ours = sum(emulator) + sum(psutil.Process().cpu_times()[:2])
    return sum(times) - skipped, ours


def others_cores(before: tuple[float, float], after: tuple[float, float], wall_s: float) -> float:
    """The CPU other processes used over wall_s, in cores: what shared the machine with the measurement.

    (The load average cannot tell: it counts this benchmark's own runnable threads - 40 Map iterations.)"""
    return round(max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / max(wall_s, 1e-9), 2)


def wait(sfn: Any, arn: str, timeout: float = 900.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (found := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{arn} still running after {timeout} s")
        time.sleep(0.25)
    return dict(found)


def lambda_tasks(emulator: Any, outputs: dict[str, Any], n: int) -> dict[str, Any]:
    sfn = emulator.client("stepfunctions")
    machine = outputs["state_machine_arn"]
    state = control.read_state(emulator.state_dir)
    assert state is not None
    batch = tickets(n)
    warm = json.dumps({"tickets": batch[:80], "max_concurrency": 40})  # every environment the run needs, started
    wait(sfn, sfn.start_execution(stateMachineArn=machine, input=warm)["executionArn"])
    before, load_before, began = cpu_seconds(state.pid), load(), time.monotonic()
    machine_before = busy_cpu(before)
    payload = json.dumps({"tickets": batch, "max_concurrency": 40})
    done = wait(sfn, sfn.start_execution(stateMachineArn=machine, input=payload)["executionArn"])
    after = cpu_seconds(state.pid)
    others = others_cores(machine_before, busy_cpu(after), time.monotonic() - began)
    assert done["status"] == "SUCCEEDED", {k: done.get(k) for k in ("status", "error", "cause")}
    wall = (done["stopDate"] - done["startDate"]).total_seconds()
    tasks = 3 * n  # Preprocess, Embed, Postprocess per ticket (the pipeline's tasks; no retries with 0 ms)
    emulator_cpu = after[0] - before[0]
    return {
        "tickets": n,
        "tasks": tasks,
        "wall_s": round(wall, 3),
        "lambda_tasks_per_s": round(tasks / wall, 1),
        "emulator_cpu_s": round(emulator_cpu, 2),
        "emulator_cpu_ms_per_task": round(emulator_cpu * 1000 / tasks, 3),
        "emulator_cpu_utilisation": round(emulator_cpu / wall, 2),  # 1.0 = one core: the GIL's ceiling
        "workers_cpu_s": round(after[1] - before[1], 2),
        "others_cpu_cores": others,
        "load_average": [load_before, load()],
    }


def each_on_a_thread(worker: Callable[[Any], None], clients: list[Any]) -> None:
    """worker(client) for every client at once, each on a thread of its own; returns when all have ended."""
    pool = [threading.Thread(target=worker, args=(client,)) for client in clients]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def start_executions(emulator: Any, machine: str, payload: str, seconds: float, threads: int) -> dict[str, Any]:
    state = control.read_state(emulator.state_dir)
    assert state is not None
    clients = [emulator.client("stepfunctions", max_attempts=1) for _ in range(threads)]
    counts = {"accepted": 0, "throttled": 0, "failed": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(client: Any) -> None:
        while time.monotonic() < stop:
            try:
                client.start_execution(stateMachineArn=machine, input=payload)
                outcome = "accepted"
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                outcome = "throttled" if "Throttl" in code else "failed"
            with lock:
                counts[outcome] += 1

    cold_before = cold_starts(emulator)
    load_before, began = load(), time.monotonic()
    emulator_before = cpu_seconds(state.pid)
    machine_before = busy_cpu(emulator_before)
    each_on_a_thread(worker, clients)
    elapsed = time.monotonic() - began
    machine_after = busy_cpu(cpu_seconds(state.pid))
    others = others_cores(machine_before, machine_after, elapsed)
    drain_s = drained(clients[0], machine)
    emulator_cpu = cpu_seconds(state.pid)[0] - emulator_before[0]
    return {
        **counts,
        "seconds": round(elapsed, 2),
        "client_threads": threads,
        "accepted_per_s": round(counts["accepted"] / elapsed, 1),
        "drain_s": drain_s,
        "emulator_cpu_ms_per_execution": round(emulator_cpu * 1000 / max(1, counts["accepted"]), 2),
        # the whole machine during the burst: the emulator, its Lambda environments (those started and ended
        # too, which cpu_seconds cannot see), this benchmark's clients and anything else
        "machine_busy_cores": round((machine_after[0] - machine_before[0]) / max(elapsed, 1e-9), 2),
        "lambda_cold_starts": cold_starts(emulator) - cold_before,  # over the burst and its backlog
        "others_cpu_cores": others,
        "load_average": [load_before, load()],
    }


def cold_starts(emulator: Any) -> int:
    """The Lambda environments the emulator has started so far (/_sof/health)."""
    return int(((control.health(emulator.url, timeout=10) or {}).get("lambda") or {}).get("cold_starts", 0))


def drained(sfn: Any, machine: str, timeout: float = 600.0) -> float:
    """Seconds from the burst's end until none of the machine's executions is RUNNING (the backlog run)."""
    began = time.monotonic()
    while sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING", maxResults=1)["executions"]:
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"executions of {machine} still running {timeout} s after the burst")
        time.sleep(0.1)
    return round(time.monotonic() - began, 2)


def start_rates(emulator: Any, outputs: dict[str, Any], seconds: float, threads: int) -> dict[str, Any]:
    sfn = emulator.client("stepfunctions")
    role = sfn.describe_state_machine(stateMachineArn=outputs["state_machine_arn"])["roleArn"]
    name = f"capacity-pass-{int(time.time() * 1000)}"
    passing = sfn.create_state_machine(name=name, definition=json.dumps(PASS_MACHINE), roleArn=role)
    one_ticket = json.dumps({"tickets": tickets(1), "max_concurrency": 1})
    return {
        "pass_machine": start_executions(emulator, passing["stateMachineArn"], "{}", seconds, threads),
        "pipeline_one_ticket": start_executions(emulator, outputs["state_machine_arn"], one_ticket, seconds, threads),
    }


def api_calls(emulator: Any, machine: str, calls: int = 2000, threads: int = 8) -> dict[str, Any]:
    """What one cheap API call costs, server and client: DescribeStateMachine from `threads` clients.

    Every read a harvest, a console page or a polling Locust user makes pays this path (the HTTP server,
    moto's dispatch and serialiser) before its own work."""
    state = control.read_state(emulator.state_dir)
    assert state is not None
    clients = [emulator.client("stepfunctions") for _ in range(threads)]
    for client in clients:  # each client's connection opened before the clock starts
        client.describe_state_machine(stateMachineArn=machine)
    emulator_before, own_before = cpu_seconds(state.pid)[0], sum(psutil.Process().cpu_times()[:2])
    began = time.monotonic()

    def worker(client: Any) -> None:
        for _ in range(calls // threads):
            client.describe_state_machine(stateMachineArn=machine)

    each_on_a_thread(worker, clients)
    elapsed = time.monotonic() - began
    done = calls // threads * threads
    return {
        "calls": done,
        "client_threads": threads,
        "calls_per_s": round(done / elapsed, 1),
        "emulator_cpu_ms_per_call": round((cpu_seconds(state.pid)[0] - emulator_before) * 1000 / done, 3),
        "client_cpu_ms_per_call": round((sum(psutil.Process().cpu_times()[:2]) - own_before) * 1000 / done, 3),
    }


def measure(n: int, seconds: float, threads: int, with_overhead: bool, repeats: int) -> dict[str, Any]:
    began = time.monotonic()
    with running_emulator(Path(tempfile.mkdtemp(prefix="sof-capacity-"))) as emulator:
        started_s = round(time.monotonic() - began, 2)  # from the command to the server's first answer
        outputs = deploy(emulator, simulated_infer_ms=0, infer_jitter_sigma_ms=0, model_memory_mb=0)
        result: dict[str, Any] = {"emulator_start_s": started_s, "lambda_tasks": lambda_tasks(emulator, outputs, n)}
        print(f"  tasks: {result['lambda_tasks']}", flush=True)
        result["start_execution"] = start_rates(emulator, outputs, seconds, threads)
        print(f"  starts: {result['start_execution']}", flush=True)
        result["api_call"] = api_calls(emulator, outputs["state_machine_arn"])
        print(f"  api calls: {result['api_call']}", flush=True)
    if with_overhead:
        row = overhead(400, [40], repeats)[0]
        result["overhead_c40"] = {**row, "load_average": load()}
    return result


@contextlib.contextmanager
def revision_trees(revisions: list[str]) -> Iterator[dict[str, Path]]:
    """A detached worktree of each revision (removed afterwards)."""
    scratch = Path(tempfile.mkdtemp(prefix="sof-capacity-ab-"))
    trees: dict[str, Path] = {}
    try:
        for revision in revisions:
            tree = scratch / f"r{len(trees)}"
            add = ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), revision]
            subprocess.run(add, check=True)
            trees[revision] = tree
        yield trees
    finally:
        for tree in trees.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def imported_from(tree: Path) -> None:
    """Checks that a process started as the emulator is (same interpreter, environment, working
    directory, ``-m``) imports the package from `tree`, the revision being measured."""
    probe = "import scaleorfail, sys; sys.stdout.write(scaleorfail.__file__)"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    if not Path(found).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"the emulator would import {found}, not the revision in {tree}")


def describe(revision: str) -> str:
    found = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s", revision], capture_output=True, text=True, check=False
    )
    return found.stdout.strip()[:100] or revision


def compare(revisions: list[str], rounds: int, args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in revisions}
    previous, here = os.environ.get("PYTHONPATH"), Path.cwd()
    with revision_trees(revisions) as trees:
        for round_ in range(rounds):
            for revision in revisions if round_ % 2 == 0 else list(reversed(revisions)):
                print(f"round {round_ + 1}: {revision}", flush=True)
                # The emulator runs `python -m scaleorfail.emulator.server`, whose first import path is its
                # working directory: from the checkout, it imported the checkout whatever PYTHONPATH said.
                os.environ["PYTHONPATH"] = str(trees[revision])
                os.chdir(trees[revision])
                try:
                    imported_from(trees[revision])
                    runs[revision].append(measure(args.n, args.seconds, args.threads, args.overhead, 1))
                finally:
                    os.chdir(here)
                    if previous is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = previous
    return {revision: {"title": describe(revision), "runs": found} for revision, found in runs.items()}


def median_of(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            values.append(float(value))
    return round(statistics.median(values), 3) if values else None


def ab_markdown(result: dict[str, Any]) -> str:
    rows = []
    for found in result["revisions"].values():
        runs = found["runs"]
        rows.append(
            (
                found["title"],
                median_of(runs, "lambda_tasks", "lambda_tasks_per_s"),
                median_of(runs, "lambda_tasks", "emulator_cpu_ms_per_task"),
                median_of(runs, "start_execution", "pass_machine", "accepted_per_s"),
                median_of(runs, "start_execution", "pipeline_one_ticket", "accepted_per_s"),
                median_of(runs, "start_execution", "pipeline_one_ticket", "emulator_cpu_ms_per_execution"),
                median_of(runs, "start_execution", "pipeline_one_ticket", "machine_busy_cores"),
                median_of(runs, "start_execution", "pipeline_one_ticket", "lambda_cold_starts"),
                median_of(runs, "overhead_c40", "ratio"),
                median_of(runs, "api_call", "emulator_cpu_ms_per_call"),
                median_of(runs, "emulator_start_s"),
                ", ".join(str(r["lambda_tasks"].get("others_cpu_cores", "-")) for r in runs),
            )
        )
    return "\n".join(
        [
            "# Emulator capacity: A/B of revisions",
            "",
            f"Measured {result['measured_at']} on {result['machine']} ({result['cpus']} CPUs), `{result['command']}`: "
            f"each revision's emulator in turn, {result['rounds']} rounds (alternating order), medians. "
            "CPU ms per task is the emulator process's own CPU (less sensitive to the machine's load than rates).",
            "",
            tabulate(
                rows,
                headers=[
                    "revision",
                    "Lambda tasks/s",
                    "emulator CPU ms/task",
                    "StartExecution/s (Pass)",
                    "StartExecution/s (pipeline)",
                    "CPU ms per pipeline execution (burst)",
                    "machine busy (cores), pipeline burst",
                    "Lambda cold starts, pipeline burst",
                    "overhead c=40",
                    "emulator CPU ms per API call",
                    "emulator start (s)",
                    "others' CPU (cores) per round",
                ],
                tablefmt="github",
            ),
            "",
        ]
    )


def markdown(result: dict[str, Any]) -> str:
    tasks, starts = result["lambda_tasks"], result["start_execution"]
    over = result.get("overhead_c40")

    def verdict(value: float | None, goal: float, lower_is_better: bool = False) -> str:
        if value is None:
            return "not measured"
        return "met" if (value <= goal if lower_is_better else value >= goal) else "missed"

    rows = [
        (
            f"Lambda tasks/s from Step Functions ({tasks['tickets']} tickets, c=40)",
            f"{tasks['lambda_tasks_per_s']}",
            ">= 1,000",
            verdict(tasks["lambda_tasks_per_s"], GOALS["lambda_tasks_per_s"]),
            tasks.get("others_cpu_cores", ""),
        ),
        (
            "... emulator CPU per task (its process; 1 core = the GIL's ceiling)",
            f"{tasks['emulator_cpu_ms_per_task']} ms ({tasks['emulator_cpu_utilisation']} cores busy)",
            "<= 1 ms for 1,000/s",
            "",
            "",
        ),
        (
            f"StartExecution accepted/s, Pass machine ({starts['pass_machine']['client_threads']} client threads)",
            f"{starts['pass_machine']['accepted_per_s']} (throttled {starts['pass_machine']['throttled']}, "
            f"failed {starts['pass_machine']['failed']})",
            ">= 300",
            verdict(starts["pass_machine"]["accepted_per_s"], GOALS["start_execution_accepted_per_s"]),
            starts["pass_machine"].get("others_cpu_cores", ""),
        ),
        (
            "StartExecution accepted/s, the pipeline with 1 ticket",
            f"{starts['pipeline_one_ticket']['accepted_per_s']} (throttled "
            f"{starts['pipeline_one_ticket']['throttled']}, failed {starts['pipeline_one_ticket']['failed']})",
            ">= 300",
            verdict(starts["pipeline_one_ticket"]["accepted_per_s"], GOALS["start_execution_accepted_per_s"]),
            starts["pipeline_one_ticket"].get("others_cpu_cores", ""),
        ),
        (
            "... emulator CPU per pipeline execution, the burst and its backlog",
            f"{starts['pipeline_one_ticket'].get('emulator_cpu_ms_per_execution', '-')} ms (backlog ended "
            f"{starts['pipeline_one_ticket'].get('drain_s', '-')} s after the burst)",
            "",
            "",
            "",
        ),
        (
            "... the machine during the pipeline's burst, and the Lambda environments it started",
            f"{starts['pipeline_one_ticket'].get('machine_busy_cores', '-')} cores busy, "
            f"{starts['pipeline_one_ticket'].get('lambda_cold_starts', '-')} cold starts",
            "",
            "",
            "",
        ),
    ]
    if "api_call" in result:
        api = result["api_call"]
        rows.append(
            (
                f"DescribeStateMachine from {api['client_threads']} clients: calls/s, CPU per call",
                f"{api['calls_per_s']}/s; emulator {api['emulator_cpu_ms_per_call']} ms, "
                f"client {api['client_cpu_ms_per_call']} ms",
                "",
                "",
                "",
            )
        )
    if "emulator_start_s" in result:
        rows.append(
            ("Emulator start, from the command to its first answer", f"{result['emulator_start_s']} s", "", "", "")
        )
    if over:
        rows.append(
            (
                "Overhead at max_concurrency 40 inline (400 tickets, Embed 250 ms)",
                f"{over['ratio']} ({over['warm_median_s']} s / {over['lower_bound_s']} s)",
                "<= 1.15",
                verdict(over["ratio"], GOALS["overhead_c40"], lower_is_better=True),
                f"(load {over['load_average']})",
            )
        )
    return "\n".join(
        [
            "# Emulator capacity",
            "",
            f"Measured {result['measured_at']} on {result['machine']} ({result['cpus']} CPUs), `{result['command']}`; "
            "0 ms handlers, `ideal` timing profile. The last column is the CPU other processes used during the "
            "measurement, in cores (the machine's busy CPU less the emulator's, its Lambda environments' and the "
            "benchmark's own): the machine is shared, and a rate measured while others took one of its 2 cores is "
            "not the emulator's capacity. (The load average, kept in the JSON, cannot tell: it counts the "
            "benchmark's own runnable threads.)",
            "",
            tabulate(rows, headers=["measure", "value", "goal", "", "others' CPU (cores)"], tablefmt="github"),
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=400, help="tickets of the tasks/s execution (default 400)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each StartExecution burst (default 5)")
    parser.add_argument("--threads", type=int, default=16, help="StartExecution client threads (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs of the overhead measurement (default 3)")
    parser.add_argument("--revisions", help="A/B: comma-separated git revisions, measured in turn (e.g. main,HEAD)")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds (default 3)")
    parser.add_argument("--overhead", action="store_true", help="A/B: measure the c=40 overhead too (slower)")
    args = parser.parse_args()
    os.environ.setdefault("SOF_COLD_START_MS", "0")
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "command": "python bench/capacity_bench.py " + " ".join(sys.argv[1:]),
        "goals": GOALS,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.revisions:
        result["rounds"] = args.rounds
        result["revisions"] = compare(args.revisions.split(","), args.rounds, args)
        (RESULTS / "capacity-ab.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "capacity-ab.md").write_text(ab_markdown(result))
        print((RESULTS / "capacity-ab.md").read_text())
        return 0
    result["command"] = "make bench (" + result["command"] + ")"
    result.update(measure(args.n, args.seconds, args.threads, True, args.repeats))
    (RESULTS / "capacity.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "capacity.md").write_text(markdown(result))
    print((RESULTS / "capacity.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
