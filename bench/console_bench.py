"""Console benchmark (`make bench`): what an open console costs, and how it opens big things.

1. Live: the workshop burst (500 tickets, max_concurrency 10, the `aws` timing profile) with the
   execution page and the dashboard open in Chromium - each page's refresh interval (goal: at most
   2 s), and what each execution-page tick cost (GetExecutionHistory calls, events read, server
   and browser time).
2. Overhead: the same burst without and with those pages open, alternating (goal: at most 3 %
   slower with the console).
3. Scale: an execution with a 25,000-event history (the quota; `ideal` profile) opened cold and
   warm (goal: drawn in under 2 s), and its Event view's first page; 5,000 executions listed a
   page (100) at a time.

Results: bench/results/console.{json,md}. SOF_BENCH_CONSOLE_REPEATS (default 2) bursts each way.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from console_support import launch_args  # noqa: E402
from emulator_support import deploy, running_emulator, tickets  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from scaleorfail.console.server import Background  # noqa: E402

RESULTS = ROOT / "bench" / "results"
QUICK = os.environ.get("SOF_BENCH_CONSOLE_QUICK") == "1"  # a smoke run of the benchmark itself, not a result
TICKETS = 60 if QUICK else 500
CONCURRENCY = 10
LISTED = 300 if QUICK else 5_000
ENDED = "document.querySelector('#status') && document.querySelector('#status').innerText !== 'RUNNING'"
MARKS = "performance.getEntriesByName('%s').map(m => ({at: m.startTime, ...m.detail}))"
OLDER = "Older \u203a"  # the executions list's next-page button
BIG_TICKETS = (
    200 if QUICK else 1_600
)  # about 17 events a ticket: past the 25,000-event quota, where the execution stops


def wait(sfn: Any, arn: str, timeout: float = 900.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sfn.describe_execution(executionArn=arn)
        if found["status"] != "RUNNING":
            return dict(found)
        time.sleep(1.0)
    raise RuntimeError(f"{arn} still running after {timeout} s")


def burst(sfn: Any, machine: str, pages: list[Page], console_url: str | None, dashboard: str) -> dict[str, Any]:
    payload = {"tickets": tickets(TICKETS), "max_concurrency": CONCURRENCY}
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
    if pages and console_url:
        pages[0].goto(f"{console_url}/states/executions/{arn}")
        pages[1].goto(f"{console_url}/cloudwatch/dashboards/{dashboard}")
    cpu = time.process_time()
    found = wait(sfn, arn)
    out: dict[str, Any] = {
        "arn": arn,
        "status": found["status"],
        "duration_s": round((found["stopDate"] - found["startDate"]).total_seconds(), 2),
        "console_process_cpu_s": round(time.process_time() - cpu, 2),
    }
    if pages:
        until(pages[0], ENDED, 30.0)
        ticks = pages[0].evaluate(MARKS % "sof-tick")
        board = pages[1].evaluate(MARKS % "sof-dashboard-tick")
        out["execution_ticks"] = ticks
        out["dashboard_ticks"] = board
    return out


def until(page: Page, expression: str, timeout_s: float = 60.0) -> None:
    """Poll an expression from outside the page (its CSP forbids the eval wait_for_function needs)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout_s} s: {expression}")
        time.sleep(0.05)


def intervals(ticks: list[dict[str, Any]]) -> list[float]:
    return [round((b["at"] - a["at"]) / 1000.0, 3) for a, b in itertools.pairwise(ticks)]


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


def live_and_overhead(browser: Any, repeats: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="sof-console-bench-") as scratch,
        running_emulator(Path(scratch) / "st", timing="aws") as emulator,
    ):
        outputs = deploy(emulator, simulated_infer_ms=250, infer_jitter_sigma_ms=25)
        sfn = emulator.client("stepfunctions")
        machine = outputs["state_machine_arn"]
        burst(sfn, machine, [], None, "")  # warm: every function's environments exist in both arms
        runs: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
        with Background(emulator.target) as console:
            for _ in range(repeats):
                runs["without"].append(burst(sfn, machine, [], None, ""))
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                pages = [context.new_page(), context.new_page()]
                runs["with"].append(burst(sfn, machine, pages, console.url, outputs["dashboard_name"]))
                context.close()
    without = [r["duration_s"] for r in runs["without"]]
    with_pages = [r["duration_s"] for r in runs["with"]]
    ticks = [t for r in runs["with"] for t in r["execution_ticks"]]
    live = [t for t in ticks if t.get("calls", 0) or t.get("newEvents", 0)]
    return {
        "bursts": {k: [{x: y for x, y in r.items() if not x.endswith("_ticks")} for r in v] for k, v in runs.items()},
        "duration_without_s": without,
        "duration_with_s": with_pages,
        "slowdown": round(statistics.mean(with_pages) / statistics.mean(without) - 1.0, 4),
        "execution_refresh_s": summary([i for r in runs["with"] for i in intervals(r["execution_ticks"])]),
        "dashboard_refresh_s": summary([i for r in runs["with"] for i in intervals(r["dashboard_ticks"])]),
        "ticks": len(ticks),
        "history_calls_per_tick": summary([float(t["calls"]) for t in ticks]),
        "events_per_tick": summary([float(t["newEvents"]) for t in live]),
        "server_ms_per_tick": summary([float(t["serverMs"]) for t in ticks]),
        "browser_ms_per_tick": summary([float(t["clientMs"]) for t in ticks]),
        "events_at_end": max((t.get("events", 0) for t in ticks), default=0),
        "skipped_ticks": sum(1 for t in ticks if t.get("skipped")),
    }


def emulator_cost(emulator: Any, sfn: Any, arn: str) -> dict[str, float]:
    """CPU seconds the emulator's process spends answering one 1,000-event GetExecutionHistory page."""
    import psutil

    from scaleorfail.emulator import control

    state = control.read_state(emulator.state_dir)
    process = psutil.Process(state.pid if state else 0)
    out = {}
    for label, extra in (("with_execution_data", {}), ("without_execution_data", {"includeExecutionData": False})):
        spent = []
        for _ in range(3):
            before = sum(process.cpu_times()[:2])
            sfn.get_execution_history(executionArn=arn, maxResults=1000, reverseOrder=True, **extra)
            spent.append(sum(process.cpu_times()[:2]) - before)
        out[label] = round(statistics.median(spent), 3)
    return out


def opened_ms(page: Page, url: str) -> tuple[float, int]:
    began = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    return round((time.perf_counter() - began) * 1000, 1), int(page.evaluate("Number(document.body.dataset.readyMs)"))


def scale(browser: Any) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="sof-console-bench-") as scratch,
        running_emulator(Path(scratch) / "st", timing="ideal") as emulator,
    ):
        outputs = deploy(emulator, simulated_infer_ms=0, infer_jitter_sigma_ms=0, model_memory_mb=0)
        sfn = emulator.client("stepfunctions")
        payload = {"tickets": tickets(BIG_TICKETS), "max_concurrency": 40}
        big = sfn.start_execution(stateMachineArn=outputs["state_machine_arn"], input=json.dumps(payload))
        done = wait(sfn, big["executionArn"])
        events = 0
        token = None
        while True:
            page_ = sfn.get_execution_history(
                executionArn=big["executionArn"], maxResults=1000, **({"nextToken": token} if token else {})
            )
            events += len(page_["events"])
            token = page_.get("nextToken")
            if not token:
                break
        serving = emulator_cost(emulator, sfn, big["executionArn"])
        with Background(emulator.target) as console:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            url = f"{console.url}/states/executions/{big['executionArn']}"
            began = time.perf_counter()
            cold = opened_ms(page, url)
            page.wait_for_selector("body[data-history-complete='1']", state="attached", timeout=600_000)
            complete_ms = round((time.perf_counter() - began) * 1000, 1)
            history_calls = console.console.api.calls["GetExecutionHistory"]
            warm = opened_ms(page, url)
            began = time.perf_counter()
            page.click("button[data-tab='events']")
            page.wait_for_selector("#events tbody tr")
            events_view_ms = round((time.perf_counter() - began) * 1000, 1)
            # after the big execution's measurements: the emulator keeps 5,000 executions, these would evict it
            tiny = sfn.create_state_machine(
                name="console-bench-tiny",
                definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
                roleArn=sfn.describe_state_machine(stateMachineArn=outputs["state_machine_arn"])["roleArn"],
            )["stateMachineArn"]
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: sfn.start_execution(stateMachineArn=tiny, name=f"e{i:05d}"), range(LISTED)))
            start_s = time.perf_counter() - started
            list_open = opened_ms(page, f"{console.url}/states/statemachines/{tiny}")
            pages_ms = []
            for _ in range(min(3, LISTED // 100 - 1)):
                shown = page.locator("#page-number").inner_text()
                began = time.perf_counter()
                page.click(f"text={OLDER}")
                until(page, f"document.querySelector('#page-number').innerText !== {json.dumps(shown)}")
                pages_ms.append(round((time.perf_counter() - began) * 1000, 1))
            listed = sfn.list_executions(stateMachineArn=tiny, maxResults=1000)
            total = len(listed["executions"])
            token = listed.get("nextToken")
            while token:
                listed = sfn.list_executions(stateMachineArn=tiny, maxResults=1000, nextToken=token)
                total += len(listed["executions"])
                token = listed.get("nextToken")
            context.close()
    return {
        "big_execution": {"status": done["status"], "events": events, "tickets": BIG_TICKETS},
        "emulator_cpu_s_per_1000_events_served": serving,
        "open_cold_ms": {"navigation_to_drawn": cold[0], "browser_ready_ms": cold[1]},
        "open_cold_complete_ms": complete_ms,
        "open_cold_history_calls": history_calls,
        "open_warm_ms": {"navigation_to_drawn": warm[0], "browser_ready_ms": warm[1]},
        "event_view_first_page_ms": events_view_ms,
        "executions_listed": total,
        "executions_start_s": round(start_s, 1),
        "list_first_page_ms": {"navigation_to_drawn": list_open[0], "browser_ready_ms": list_open[1]},
        "list_next_page_ms": pages_ms,
    }


def spread(values: dict[str, float], unit: str = "") -> str:
    return ", ".join(f"{k} {v}{unit}" for k, v in values.items()) or "-"


def table_rows(live: dict[str, Any], scaled: dict[str, Any]) -> list[tuple[str, str]]:
    calls, events = live["history_calls_per_tick"], live["events_per_tick"]
    slowdown = f"{live['slowdown'] * 100:+.1f} %"
    big = scaled["big_execution"]["events"]
    return [
        ("execution page refresh interval", spread(live["execution_refresh_s"], " s") + " (goal <= 2 s)"),
        ("dashboard refresh interval", spread(live["dashboard_refresh_s"], " s") + " (goal <= 2 s)"),
        ("GetExecutionHistory calls per tick", f"{spread(calls)} ({live['ticks']} ticks)"),
        ("events read per tick (ticks with news)", f"{spread(events)} (history: {live['events_at_end']} events)"),
        ("server time per tick", spread(live["server_ms_per_tick"], " ms")),
        ("browser time per tick (request + redraw)", spread(live["browser_ms_per_tick"], " ms")),
        (
            "burst without / with the pages open",
            f"{live['duration_without_s']} s / {live['duration_with_s']} s: {slowdown} (goal <= +3 %)",
        ),
        (
            "25,000-event execution, first open (cold)",
            f"{scaled['open_cold_ms']['navigation_to_drawn']} ms ({big} events; goal < 2,000 ms)",
        ),
        (
            "... every event read and drawn (history read in the background)",
            f"{scaled['open_cold_complete_ms']} ms ({scaled['open_cold_history_calls']} GetExecutionHistory calls)",
        ),
        ("the same, opened again (warm)", f"{scaled['open_warm_ms']['navigation_to_drawn']} ms"),
        ("its Event view, first page", f"{scaled['event_view_first_page_ms']} ms"),
        (
            "emulator CPU per 1,000 history events served",
            spread(scaled.get("emulator_cpu_s_per_1000_events_served", {}), " s"),
        ),
        (
            "5,000 executions: first page (100)",
            f"{scaled['list_first_page_ms']['navigation_to_drawn']} ms ({scaled['executions_listed']} listed)",
        ),
        ("... next pages", f"{scaled['list_next_page_ms']} ms"),
    ]


def main() -> int:
    repeats = int(os.environ.get("SOF_BENCH_CONSOLE_REPEATS", "2"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_args())
        scaled = scale(browser)
        live = live_and_overhead(browser, repeats)
        browser.close()
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "command": "make bench (python bench/console_bench.py)",
        "burst": {"tickets": TICKETS, "max_concurrency": CONCURRENCY, "timing": "aws", "repeats": repeats},
        "live": live,
        "scale": scaled,
        "goals": {"refresh_s": 2.0, "slowdown": 0.03, "open_ms": 2000},
    }
    if QUICK:
        print(json.dumps(result, indent=2))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "console.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = table_rows(live, scaled)
    (RESULTS / "console.md").write_text(
        "# Console benchmark\n\n"
        f"Measured {result['measured_at']} ({result['cpus']} CPUs), `{result['command']}`: the workshop burst "
        f"({TICKETS} tickets at max_concurrency {CONCURRENCY}, `aws` timing) with the execution page and the "
        f"dashboard open in Chromium, {repeats} bursts each way alternating; the scale checks on the `ideal` "
        "profile.\n\n" + tabulate(rows, headers=["measure", "value"], tablefmt="github") + "\n"
    )
    print((RESULTS / "console.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
