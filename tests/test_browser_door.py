"""No web page reaches the emulator: a real Chromium, a page served from another local port, and a
DNS-rebinding page, each trying to create and run code through it. Nothing may reach a backend."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from browser_support import needs_chromium
from emulator_support import Emulator, free_port, running_emulator

pytestmark = [pytest.mark.slow, needs_chromium]

ROLE = "arn:aws:iam::123456789012:role/evil"
# A CloudFormation template whose Lambda function (inline code) a state machine calls: what a page would
# deploy and start to run code as the user.
TEMPLATE = json.dumps(
    {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": "evil",
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": ROLE,
                    "Code": {"ZipFile": "def handler(e, c):\n    open('/tmp/pwned', 'w')\n"},
                },
            }
        }
    }
)
CHROMIUM_LOCAL_NETWORK_CHECKS = (
    "LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,"
    "BlockInsecurePrivateNetworkRequests"
)
# moto routes by the credential scope and checks no signature: a page can write this header itself
FAKE_SIGNATURE = (
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/states/aws4_request, SignedHeaders=host, Signature=0"
)
DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


def attacker_page(emulator_url: str) -> str:
    """Every way a page can send a request: fetch() preflighted and simple, no-cors, and a form POST."""
    form = "&".join(
        f"{k}={urllib.request.quote(v)}"
        for k, v in {"Action": "CreateStack", "StackName": "fetched", "TemplateBody": TEMPLATE}.items()
    )
    return f"""<!doctype html><html><body>
<form id="f" method="POST" action="{emulator_url}/" target="sink" enctype="application/x-www-form-urlencoded">
  <input name="Action" value="CreateStack"><input name="StackName" value="formed">
  <textarea name="TemplateBody">{TEMPLATE.replace("<", "&lt;")}</textarea>
</form>
<iframe name="sink" id="sink"></iframe>
<script>
const E = {json.dumps(emulator_url)};
const results = {{}};
async function attempt(name, run) {{
  try {{ const r = await run(); results[name] = r.type === "opaque" ? "opaque" : (r.status + " " + await r.text()); }}
  catch (e) {{ results[name] = "error " + e.name; }}
}}
(async () => {{
  await attempt("preflighted", () => fetch(E + "/", {{method: "POST",
    headers: {{"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.CreateStateMachine",
      "Authorization": {json.dumps(FAKE_SIGNATURE)}}},
    body: JSON.stringify({{name: "preflighted", definition: {json.dumps(DEFINITION)}, roleArn: "{ROLE}"}})}}));
  await attempt("simple", () => fetch(E + "/", {{method: "POST",
    headers: {{"Content-Type": "application/x-www-form-urlencoded"}}, body: {json.dumps(form)}}}));
  await attempt("no-cors", () => fetch(E + "/", {{method: "POST", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}}, body: {json.dumps(form.replace("fetched", "nocors"))}}}));
  await attempt("control", () => fetch(E + "/_sof/account-concurrency?value=1", {{method: "POST", mode: "no-cors"}}));
  await attempt("reap", () => fetch(E + "/_sof/reap", {{method: "POST", mode: "no-cors"}}));
  await attempt("read", () => fetch(E + "/moto-api/data.json"));
  document.getElementById("sink").onload = () => {{ document.body.dataset.done = JSON.stringify(results); }};
  document.getElementById("f").submit();
}})();
</script></body></html>"""


class Pages:
    """A web server on another local port: the attacker's page."""

    def __init__(self, html: str) -> None:
        page = html.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("door")) as running:
        yield running


def health(emulator: Emulator) -> dict[str, Any]:
    with urllib.request.urlopen(f"{emulator.url}/_sof/health", timeout=10) as response:
        return dict(json.loads(response.read()))


def refused(emulator: Emulator) -> dict[str, int]:
    """The emulator's count of refused browser requests (none on an emulator without the door)."""
    return dict(health(emulator).get("refused", {"host": 0, "origin": 0}))


def nothing_was_created(emulator: Emulator) -> None:
    assert emulator.client("cloudformation").list_stacks()["StackSummaries"] == []
    assert emulator.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert emulator.client("lambda").list_functions()["Functions"] == []
    assert health(emulator)["settings"]["account_concurrency"] == 1000
    assert not Path("/tmp/pwned").exists()


def test_a_page_on_another_local_port_reaches_no_backend(emulator: Emulator, page: Any) -> None:
    before = refused(emulator)
    pages = Pages(attacker_page(emulator.url))
    try:
        page.goto(pages.url)
        page.wait_for_selector("body[data-done]", state="attached", timeout=30_000)
        results = json.loads(page.get_attribute("body", "data-done"))
    finally:
        pages.close()
    # cors-mode requests fail in the browser (a 403 without Access-Control-Allow-Origin); no-cors ones are opaque
    assert results == {
        "preflighted": "error TypeError",
        "simple": "error TypeError",
        "no-cors": "opaque",
        "control": "opaque",
        "reap": "opaque",
        "read": "error TypeError",
    }, results
    nothing_was_created(emulator)
    after = refused(emulator)
    # the preflight, the simple and no-cors POSTs, the two control POSTs, the read and the form: each arrived, refused
    assert after["origin"] - before["origin"] >= 7, (before, after)


def test_a_dns_rebinding_page_reaches_no_backend(
    emulator: Emulator, browser_type: Any, browser_type_launch_args: dict[str, Any]
) -> None:
    """After rebinding, the attacker's name resolves to 127.0.0.1: its page's requests are same-origin to
    itself and reach the emulator's port under the attacker's Host name. Chromium's own Local Network Access
    checks would stop them first; they are switched off here (other browsers have none), so the test
    shows the emulator's door, not Chromium's."""
    port = emulator.url.rsplit(":", 1)[1]
    origin = f"http://rebind.example:{port}"
    script = f"""<script>
(async () => {{
  const out = {{}};
  try {{ const r = await fetch("/moto-api/data.json"); out.read = r.status + " " + (await r.text()).slice(0, 200); }}
  catch (e) {{ out.read = "error " + e.name; }}
  try {{ const r = await fetch("/", {{method: "POST", headers: {{"Content-Type": "application/x-amz-json-1.0",
      "X-Amz-Target": "AWSStepFunctions.CreateStateMachine"}}, body: JSON.stringify({{name: "rebound",
      definition: {json.dumps(DEFINITION)}, roleArn: "{ROLE}"}})}});
    out.create = r.status + " " + (await r.text()).slice(0, 200); }}
  catch (e) {{ out.create = "error " + e.name; }}
  document.body.dataset.done = JSON.stringify(out);
}})();
</script>"""
    before = refused(emulator)
    args = [*browser_type_launch_args["args"], f"--disable-features={CHROMIUM_LOCAL_NETWORK_CHECKS}"]
    browser = browser_type.launch(**{**browser_type_launch_args, "args": args})
    context = browser.new_context()
    try:
        page = context.new_page()
        # the first answer came from the attacker's server (served here by the browser itself) ...

        def first_answer(route: Any) -> None:
            if route.request.resource_type == "document":
                route.fulfill(status=200, content_type="text/html", body=script)
            else:
                route.continue_()

        page.route(f"{origin}/", first_answer)
        page.goto(f"{origin}/")
        page.wait_for_selector("body[data-done]", state="attached", timeout=30_000)
        results = json.loads(page.get_attribute("body", "data-done"))
    finally:
        context.close()
        browser.close()
    # ... every later one reaches the emulator (the browser maps rebind.example to 127.0.0.1), which refuses it
    assert results["read"].startswith("403 ") and "Host header" in results["read"], results
    assert results["create"].startswith("403 ") and "Host header" in results["create"], results
    after = refused(emulator)
    assert after["host"] - before["host"] >= 2, (before, after)
    nothing_was_created(emulator)


def test_sdk_style_requests_and_the_cli_still_pass(emulator: Emulator) -> None:
    """The door keys on what browsers send: a client without Origin, under the bound address, passes."""
    sfn = emulator.client("stepfunctions")
    arn = sfn.create_state_machine(name="allowed", definition=DEFINITION, roleArn=ROLE)["stateMachineArn"]
    try:
        request = urllib.request.Request(
            f"{emulator.url}/", data=b"{}", headers={"Host": f"attacker.example:{emulator.url.rsplit(':', 1)[1]}"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403 and "Host header" in refused.value.read().decode()
        assert not any(k.lower().startswith("access-control-") for k in refused.value.headers)
        with urllib.request.urlopen(f"{emulator.url}/moto-api/data.json", timeout=10) as answer:
            assert not any(k.lower().startswith("access-control-") for k in answer.headers)
    finally:
        sfn.delete_state_machine(stateMachineArn=arn)
