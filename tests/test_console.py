"""The lab console as a learner sees it: Playwright driving Debian's Chromium against the emulator.

One emulator, one deployed pipeline and two consoles (the learner's, and a read-only one as the
AWS target gets) serve the whole module; each test opens its pages in a fresh browser context.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import waiting
from console_support import needs_browser
from emulator_support import Emulator, deploy, lab, run, tickets

from scaleorfail.console.server import Background

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
Page = playwright_api.Page

BURST = 60  # tickets of the burst a test starts from the page (at max_concurrency 3: several seconds)
FIXTURE_CONCURRENCY = 4  # the fixture's burst: the highest Map concurrency of the module (the dashboard's max)
XSS_SCRIPT = "<script>window.__sof_xss = 'script'</script>"
XSS_IMAGE = "<img src=x onerror=\"window.__sof_xss = 'img'\">"
CFN_DASHBOARD = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Board": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": "made-by-cloudformation",
                "DashboardBody": json.dumps(
                    {
                        "start": "-PT1H",
                        "widgets": [
                            {
                                "type": "text", "x": 0, "y": 0, "width": 24, "height": 2,
                                "properties": {"markdown": f"# Made by **CloudFormation**\n\n{XSS_IMAGE} {XSS_SCRIPT}"},
                            },
                            {
                                "type": "metric", "x": 0, "y": 2, "width": 12, "height": 6,
                                "properties": {
                                    "title": "Invocations, compact form", "view": "timeSeries", "stat": "Sum",
                                    "period": 60, "stacked": True,
                                    "metrics": [
                                        ["AWS/Lambda", "Invocations", "FunctionName", "FN_PRE", {"label": "pre"}],
                                        ["...", "FN_EMBED", {"label": "embed"}],
                                    ],
                                },
                            },
                            {
                                "type": "metric", "x": 12, "y": 2, "width": 12, "height": 6,
                                "properties": {
                                    "title": "Embed now", "view": "singleValue", "period": 60,
                                    "metrics": [["AWS/Lambda", "ConcurrentExecutions", "FunctionName", "FN_EMBED",
                                                 {"stat": "Maximum", "label": "embed peak"}]],
                                },
                            },
                        ],
                    }
                ),
            },
        }
    },
}  # fmt: skip


class Lab:
    def __init__(self, emulator: Emulator, outputs: dict[str, Any], console: Background, viewer: Background) -> None:
        self.emulator = emulator
        self.outputs = outputs
        self.console = console
        self.viewer = viewer  # read-only, as against AWS

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        return run(self.emulator, self.outputs, payload, timeout=120)


@pytest.fixture(scope="module")
def console_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    needs_browser()
    with lab(tmp_path_factory.mktemp("console")) as emulator:
        # Embed 250 ms (as on AWS): a burst lasts long enough to be watched
        outputs = deploy(emulator, simulated_infer_ms=250)
        functions = outputs["function_names"]
        run(emulator, outputs, {"tickets": tickets(12), "max_concurrency": FIXTURE_CONCURRENCY})
        body = (
            json.dumps(CFN_DASHBOARD).replace("FN_PRE", functions["preprocess"]).replace("FN_EMBED", functions["embed"])
        )
        emulator.client("cloudformation").create_stack(StackName="console-board", TemplateBody=body)
        with Background(emulator.target) as console, Background(emulator.target, read_only=True) as viewer:
            yield Lab(emulator, outputs, console, viewer)


def opened(page: Page, url: str) -> Page:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    return page


def count(page: Page, key: str) -> int:
    return int(page.locator(f"#map-counts [data-count='{key}']").inner_text().replace(",", ""))


def test_a_burst_started_from_the_console_shows_its_map_counts_rising(console_lab: Lab, page: Page) -> None:
    machine = console_lab.outputs["state_machine_arn"]
    opened(page, f"{console_lab.console.url}/states/statemachines/{machine}")
    page.click("#start-execution")
    page.fill("#execution-input", json.dumps({"tickets": tickets(BURST, prefix="B"), "max_concurrency": 3}))
    page.click("#start-dialog button[type=submit]")
    page.wait_for_url("**/states/executions/**")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#status")).to_have_text("RUNNING")
    seen: list[tuple[int, int]] = []

    def ended() -> bool:  # every look checks the Map's live counts
        status = page.locator("#status").inner_text()
        succeeded, running = count(page, "succeeded"), count(page, "running")
        seen.append((succeeded, running))
        assert running <= 3, f"more iterations running than max_concurrency: {seen}"
        return status != "RUNNING"

    waiting.wait_for(
        ended, "the end of the burst on the page", observe=lambda: seen[-1] if seen else None, interval=0.5
    )
    expect(page.locator("#status")).to_have_text("SUCCEEDED")
    expect(page.locator("#map-counts [data-count='succeeded']")).to_have_text(str(BURST))
    during = [s for s, _ in seen[:-1]]  # what the page showed while the execution ran
    assert during == sorted(during) and len(set(during)) >= 2, f"the counts did not rise on the page: {seen}"
    assert page.locator("svg .state[data-state='Embed']").get_attribute("data-status") == "succeeded"
    assert int(page.evaluate("document.body.dataset.ticks || '0'")) >= 2  # it refreshed by itself


def test_an_answer_overtaken_by_a_later_read_is_not_drawn(console_lab: Lab, page: Page) -> None:
    """The Event view asked for every event, then (the filter typed) for the matching ones: when the
    first answer arrives last, the page keeps the filtered rows - as a tick's read did to CI once."""
    from scaleorfail.executions import named_bad_input

    failed = console_lab.run({"tickets": [named_bad_input("oversized_text_5100")], "max_concurrency": 2})
    held: list[Any] = []

    def hold_the_unfiltered(route: Any) -> None:
        if "q=" in route.request.url:
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(r"/api/execution/events\?"), hold_the_unfiltered)
    opened(page, f"{console_lab.console.url}/states/executions/{failed['executionArn']}")
    page.click("button[data-tab='events']")
    page.fill("#event-filter", "PayloadTooLarge")
    expect(page.locator("body")).to_have_attribute("data-event-reads", "1")  # the filtered answer, drawn
    assert len(held) == 1  # the first read's, still on its way
    with page.expect_response(lambda response: "/api/execution/events" in response.url and "q=" not in response.url):
        held[0].continue_()
    expect(page.locator("body")).to_have_attribute("data-event-reads", "2")  # the first answer, handled
    types = set(page.locator("#events tbody tr td:nth-child(2)").all_inner_texts())
    assert types and "ExecutionStarted" not in types and "TaskFailed" in types


def test_the_bad_input_execution_shows_preprocess_failed_with_payload_too_large(console_lab: Lab, page: Page) -> None:
    from scaleorfail.executions import named_bad_input

    failed = console_lab.run({"tickets": [named_bad_input("oversized_text_5100")], "max_concurrency": 2})
    assert failed["status"] == "FAILED"
    opened(page, f"{console_lab.console.url}/states/executions/{failed['executionArn']}")
    panel = page.locator("#failure-panel")
    expect(panel.locator("h2")).to_have_text("Preprocess failed with PayloadTooLarge (Map iteration 0)")
    expect(page.locator("#error-type")).to_have_text("PayloadTooLarge")
    expect(page.locator("#error-message")).to_contain_text("5100 characters, the limit is 5000")
    expect(page.locator("#stack-trace")).to_contain_text("in require_text")
    assert "errorMessage" not in panel.inner_text()  # not the raw JSON payload
    assert page.locator("svg .state[data-state='Preprocess']").get_attribute("data-status") == "failed"
    assert page.locator("svg .state[data-state='Embed']").get_attribute("data-status") == "not-run"
    page.click("button[data-tab='table']")
    expect(page.locator("#table-view tbody tr").filter(has_text="Preprocess")).to_contain_text("PayloadTooLarge")
    page.click("button[data-tab='events']")
    page.fill("#event-filter", "PayloadTooLarge")
    # two answers handled: the tab's read and the filter's (no tick: the execution has ended); rows waited
    # for before them could be the tab's, drawn while the filter's read was still held back by its debounce
    expect(page.locator("body")).to_have_attribute("data-event-reads", "2")
    expect(page.locator("#events tbody tr").filter(has_text="ExecutionStarted")).to_have_count(0)
    expect(page.locator("#events tbody tr").first).to_be_visible()
    assert set(page.locator("#events tbody tr td:nth-child(2)").all_inner_texts()) <= {
        "TaskFailed", "MapIterationFailed", "MapStateFailed", "ExecutionFailed", "FailStateEntered",
    }  # fmt: skip


def test_the_dashboard_draws_embed_concurrency_up_to_the_maps_max_concurrency(console_lab: Lab, page: Page) -> None:
    name = console_lab.outputs["dashboard_name"]
    opened(page, f"{console_lab.console.url}/cloudwatch/dashboards/{name}")
    widget = page.locator("section.widget", has_text="ConcurrentExecutions")
    row = widget.locator("tr[data-series='ConcurrentExecutions max']")
    expect(row.locator(".series-max")).to_have_text(str(FIXTURE_CONCURRENCY))
    expect(widget.locator("canvas").first).to_be_visible()
    expect(widget.locator("tr[data-series='Duration p95 (ms)'] td:nth-child(5)")).to_have_text("left")
    expect(row.locator("td:nth-child(5)")).to_have_text("right")


def test_a_dashboard_made_by_cloudformation_draws_with_its_markdown_inert(console_lab: Lab, page: Page) -> None:
    opened(page, f"{console_lab.console.url}/cloudwatch/dashboards/made-by-cloudformation")
    text = page.locator("section.widget.text")
    expect(text.locator("h1")).to_have_text("Made by CloudFormation")
    expect(text.locator("h1 strong")).to_have_text("CloudFormation")
    expect(text).to_contain_text("<img src=x onerror=")  # shown as text, not made an element
    assert text.locator("img, script").count() == 0
    compact = page.locator("section.widget", has_text="Invocations, compact form")
    expect(compact.locator("tr[data-series='embed'] .series-max")).not_to_have_text("-")  # "..." expanded
    peak = page.locator(".single[data-series='embed peak'] .value")  # the latest minute's maximum
    expect(peak).not_to_have_text("-")
    assert 1 <= int(peak.inner_text()) <= FIXTURE_CONCURRENCY
    assert page.evaluate("window.__sof_xss === undefined")


def test_logs_insights_runs_a_saved_query_and_shows_awss_error_for_a_bad_one(console_lab: Lab, page: Page) -> None:
    opened(page, f"{console_lab.console.url}/logs/insights")
    page.click("#saved-queries button[data-query$='duration-by-step']")
    assert "stats" in page.locator("#query").input_value()
    page.click("#run-query")
    expect(page.locator("#query-status")).to_have_text("Status: Complete", timeout=30_000)
    rows = page.locator("#results tbody tr")
    expect(rows.first).to_be_visible()
    expect(page.locator("#results table")).to_contain_text("embed")
    expect(page.locator("#query-stats")).to_contain_text("records matched")
    page.fill("#query", "fields @message | stats count(* by")
    page.click("#run-query")
    expect(page.locator("#query-error [role=alert]")).to_contain_text("MalformedQueryException")


def test_ticket_text_with_markup_is_shown_as_text_and_never_runs(console_lab: Lab, page: Page) -> None:
    # one at a time: the first ticket (markup in its text) succeeds, then the second's id, markup too, fails
    # Preprocess's check - so its error message carries the markup into the failure panel and iteration 1
    hostile = [
        {"ticket_id": "X-2", "text": XSS_IMAGE},
        {"ticket_id": "X-<b>bold</b>", "text": XSS_SCRIPT},
    ]
    done = console_lab.run({"tickets": hostile, "max_concurrency": 1})
    assert done["status"] == "FAILED"
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    opened(page, f"{console_lab.console.url}/states/executions/{done['executionArn']}")
    expect(page.locator("section.panel", has_text="Input")).to_contain_text(XSS_SCRIPT)
    expect(page.locator("#failure-panel")).to_contain_text("ticket_id 'X-<b>bold</b>'")
    page.click("button[data-iteration='0']")
    expect(page.locator("#iteration-detail")).to_contain_text("onerror")
    page.click("button[data-iteration='1']")
    expect(page.locator("#iteration-detail")).to_contain_text("ticket_id 'X-<b>bold</b>'")
    page.click("button[data-tab='events']")
    page.locator("#events details").first.click()
    expect(page.locator("#events")).to_contain_text("X-<b>bold</b>")
    assert page.locator("#page img, #page script, #page b").count() == 0
    assert page.evaluate("window.__sof_xss === undefined")
    assert errors == []


def test_the_read_only_console_offers_no_actions_and_refuses_them(console_lab: Lab, page: Page) -> None:
    machine = console_lab.outputs["state_machine_arn"]
    opened(page, f"{console_lab.viewer.url}/states/statemachines/{machine}")
    expect(page.locator("header .target")).to_contain_text("read-only")
    expect(page.locator("#start-execution")).to_be_hidden()
    listed = console_lab.emulator.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    answer = page.request.post(
        f"{console_lab.viewer.url}/api/statemachine/executions?arn={machine}",
        data=json.dumps({"input": "{}"}),
        headers={"Content-Type": "application/json", "X-CSRF-Token": token or "", "Origin": console_lab.viewer.url},
    )
    assert answer.status == 403 and answer.json()["error"] == "ReadOnlyConsole"
    opened(page, f"{console_lab.viewer.url}/states/executions/{listed[0]['executionArn']}")
    expect(page.locator("#stop")).to_be_hidden()
    after = console_lab.emulator.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    assert len(after) == len(listed)


def _post(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=b'{"input": "{}"}', method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_cross_site_requests_and_foreign_hosts_are_refused(console_lab: Lab, page: Page, tmp_path: Path) -> None:
    base = console_lab.console.url
    machine = console_lab.outputs["state_machine_arn"]
    sfn = console_lab.emulator.client("stepfunctions")
    before = len(sfn.list_executions(stateMachineArn=machine)["executions"])
    start = f"{base}/api/statemachine/executions?arn={machine}"
    json_type = {"Content-Type": "application/json"}
    assert _post(start, json_type) == 403  # no Origin, no token
    assert _post(start, json_type | {"Origin": "http://evil.example"}) == 403
    assert _post(start, json_type | {"Origin": base}) == 403  # same origin, but no CSRF token
    host = base.split("//")[1]
    assert _post(start, json_type | {"Host": "evil.example:" + host.split(":")[1]}) == 421  # DNS rebinding
    # a page of another site (another origin on this machine) posting to the console from a real browser
    with Background(console_lab.emulator.target) as other:
        opened(page, f"{other.url}/")
        outcome = page.evaluate(
            """async (url) => {
                try {
                    const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                body: '{"input": "{}"}'});
                    return 'answered ' + r.status;
                } catch (e) { return 'blocked'; }
            }""",
            start,
        )
        assert outcome == "blocked"
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == before
    answer = page.request.get(f"{base}/")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert answer.headers["x-frame-options"] == "DENY"
