"""`make screenshots`: docs/images/console-*.png, each console page as a learner sees it.

A scratch lab (its own emulator, runs/ and state in a temporary folder): the pipeline deployed,
a 500-ticket burst at max_concurrency 10 through the load harness (photographed while it runs),
harvested; the bad-input execution; a Logs Insights query. Chromium is Debian's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from console_support import launch_args  # noqa: E402
from emulator_support import deploy, run, running_emulator  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from scaleorfail.console.server import Background  # noqa: E402
from scaleorfail.executions import named_bad_input  # noqa: E402
from scaleorfail.harvest import collect  # noqa: E402

IMAGES = ROOT / "docs" / "images"
VIEWPORT = {"width": 1440, "height": 1000}


def shoot(page: Page, url: str, name: str, then: str | None = None, wait: str | None = None) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    if then:
        page.click(then)
    if wait:
        page.wait_for_selector(wait, timeout=60_000)
    page.wait_for_timeout(400)
    page.screenshot(path=str(IMAGES / f"console-{name}.png"))
    print(f"docs/images/console-{name}.png")


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sof-screenshots-") as scratch:
        root = Path(scratch)
        os.environ["SOF_RUNS_DIR"] = str(root / "runs")
        with running_emulator(root / "state", timing="aws") as emulator, sync_playwright() as playwright:
            outputs = deploy(emulator, simulated_infer_ms=250, infer_jitter_sigma_ms=25)
            env = {**os.environ, "SOF_STATE_DIR": str(emulator.state_dir)}
            harness = subprocess.Popen(
                [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"), "--headless",
                 "--profile", "single-batch", "--batch-size", "500", "--max-concurrency", "10",
                 "--run-label", "burst-c10", "--loglevel", "WARNING"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            browser = playwright.chromium.launch(**launch_args())
            page = browser.new_page(viewport=VIEWPORT)
            with Background(emulator.target) as console:
                sfn = emulator.client("stepfunctions")
                machine = outputs["state_machine_arn"]
                deadline = time.monotonic() + 60
                listed: list[dict[str, str]] = []
                while not listed and time.monotonic() < deadline:
                    time.sleep(1)
                    listed = sfn.list_executions(stateMachineArn=machine)["executions"]
                time.sleep(12)  # well into the burst: the Map's counts are moving
                live = listed[0]["executionArn"]
                complete = "body[data-history-complete='1']"  # the history read so far, not only its first page
                shoot(page, f"{console.url}/states/executions/{live}", "execution-live", wait=complete)
                shoot(page, f"{console.url}/cloudwatch/dashboards/{outputs['dashboard_name']}", "dashboard")
                harness.wait(timeout=600)
                (run_dir,) = collect.run_dirs(["burst-c10"], root / "runs")
                collect.harvest(run_dir, collect.Options(quiet=True))
                bad = run(
                    emulator, outputs, {"tickets": [named_bad_input("oversized_text_5100")], "max_concurrency": 2}
                )
                shoot(page, f"{console.url}/states/executions/{bad['executionArn']}", "execution-failed")
                shoot(page, f"{console.url}/states/executions/{live}", "execution-table", "button[data-tab='table']")
                shoot(page, f"{console.url}/states/executions/{live}", "execution-events", "button[data-tab='events']")
                shoot(page, f"{console.url}/states/statemachines/{machine}", "state-machine")
                shoot(
                    page,
                    f"{console.url}/logs/insights",
                    "logs-insights",
                    "#saved-queries button[data-query$='duration-by-step']",
                )
                page.click("#run-query")
                page.wait_for_selector("#results table", timeout=60_000)
                page.screenshot(path=str(IMAGES / "console-logs-insights.png"))
                shoot(page, f"{console.url}/cloudwatch/alarms", "alarms")
                shoot(page, f"{console.url}/lambda/functions", "lambda")
                shoot(page, f"{console.url}/runs/burst-c10", "run")
                shoot(page, f"{console.url}/runs?compare={json.dumps(run_dir.name)[1:-1]}", "runs")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
