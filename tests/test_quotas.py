"""AWS's rate quotas through real executions: StartExecution, StateTransition, Lambda's scaling rate.

Each test starts an emulator with the `sandbox` profile (a new account: Lambda concurrency 10,
lower Step Functions quotas) and, where a verdict must not depend on how fast this machine
makes calls, a smaller bucket still (the ``SOF_*`` quota settings). Verdicts are bounds a
token bucket guarantees whatever the machine's speed: no more successes than the bucket
and its refill allow, no faster run than the refill rate lets through.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from emulator_support import PASS_MAP, Emulator, deploy, metric, running_emulator

from scaleorfail.evidence import analysis, compare, rca
from scaleorfail.harvest import collect
from scaleorfail.load import runner
from scaleorfail.record.manifest import load

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::123456789012:role/sof-quotas"


def locust(emulator: Emulator, run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The Locust harness, headless, against this emulator."""
    env = {**os.environ, "SOF_STATE_DIR": str(emulator.state_dir), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"), "--headless"]
    command += ["--target", "local", "--run-dir", str(run_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=False)


def wait(emulator: Emulator, arn: str, timeout: float = 120.0) -> dict[str, Any]:
    sfn = emulator.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.2)
    return dict(described)


def test_start_execution_over_its_bucket_is_throttled_as_on_aws(tmp_path: Path) -> None:
    bucket, rate = 5, 0.5
    overrides = {"start_execution_bucket": bucket, "start_execution_rate": rate}
    with running_emulator(tmp_path, profile="sandbox", **overrides) as emulator:
        sfn = emulator.client("stepfunctions", max_attempts=1)  # one attempt: SDKs retry a throttle
        arn = sfn.create_state_machine(name="q", definition=json.dumps(PASS_MAP), roleArn=ROLE)["stateMachineArn"]
        began = time.monotonic()
        outcomes: list[str] = []
        for number in range(20):
            try:
                sfn.start_execution(stateMachineArn=arn, name=f"e{number}", input="[1]")
                outcomes.append("started")
            except sfn.exceptions.ClientError as error:
                response = error.response
                assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
                assert (response["Error"]["Code"], response["Error"]["Message"]) == (
                    "ThrottlingException",
                    "Rate exceeded",
                )
                outcomes.append("throttled")
        elapsed = time.monotonic() - began
        started = outcomes.count("started")
        assert outcomes[:bucket] == ["started"] * bucket  # a full bucket lets the first ones through
        assert started <= bucket + rate * elapsed + 1  # then the refill rate, however fast the calls came
        assert outcomes.count("throttled") >= 20 - bucket - rate * elapsed - 1 > 0
        listed = sfn.list_executions(stateMachineArn=arn)["executions"]
        assert len(listed) == started  # a throttled start started nothing
        throttled = metric(emulator, "AWS/States", "ThrottledEvents", "Sum", {"APIName": "StartExecution"})
        assert throttled == outcomes.count("throttled")


def test_the_harness_records_throttled_starts_and_the_harvest_keeps_them(tmp_path: Path) -> None:
    overrides = {"start_execution_bucket": 3, "start_execution_rate": 0.5}
    runs = tmp_path / "runs"
    with running_emulator(tmp_path / "state", profile="sandbox", **overrides) as emulator:
        deploy(emulator)
        done = locust(
            emulator, runs, "--profile", "burst", "--rate", "20", "--duration", "1", "--batch-size", "1",
            "--run-id", "t-throttled", "--max-concurrency", "1",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        manifest = load(runs / "t-throttled")
        throttled = [f for f in manifest.failed_starts if f.throttled]
        assert len(manifest.executions) + len(manifest.failed_starts) == 20
        assert throttled and len(throttled) == len(manifest.failed_starts)
        assert all(f.error == "ThrottlingException" and "Rate exceeded" in f.message for f in throttled)
        assert manifest.to_json()["summary"]["throttled_starts"] == len(throttled)
        assert f"failed to start ({len(throttled)} throttled: ThrottlingException)" in done.stderr
        record = collect.harvest(runs / "t-throttled", collect.Options(quiet=True))
    recon = record.reconciliation
    assert (recon.failed_starts, recon.throttled_starts) == (len(throttled), len(throttled)) and recon.balanced
    stats = analysis.stats(record)
    notes = compare.footnotes([stats], None)
    assert any(f"({len(throttled)} throttled: StartExecution's quota, ThrottlingException)" in n for n in notes)


def test_state_transitions_over_their_bucket_wait_and_count_as_execution_throttled(tmp_path: Path) -> None:
    bucket, rate, items = 20, 10.0, 60
    overrides = {"state_transition_bucket": bucket, "state_transition_rate": rate}
    with running_emulator(tmp_path, profile="sandbox", **overrides) as emulator:
        sfn = emulator.client("stepfunctions")
        machine = sfn.create_state_machine(name="t", definition=json.dumps(PASS_MAP), roleArn=ROLE)["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(list(range(items))))
        done = wait(emulator, execution["executionArn"])
        assert done["status"] == "SUCCEEDED"  # throttled transitions wait: the execution slows, it does not fail
        transitions = items + 1  # MapStateEntered and one PassStateEntered per item
        took = (done["stopDate"] - done["startDate"]).total_seconds()
        assert took >= (transitions - bucket) / rate - 0.5  # no faster than the refill lets them through
        throttled = metric(emulator, "AWS/States", "ExecutionThrottled", "Sum", {"StateMachineArn": machine})
        assert throttled is not None and transitions - bucket - rate * took - 1 <= throttled <= transitions - bucket
        service = metric(emulator, "AWS/States", "ThrottledEvents", "Sum", {"ServiceMetric": "StateTransition"})
        assert service == throttled


def slow_function(emulator: Emulator, name: str, seconds: float) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "app.py", f"import time\ndef go(event, context):\n    time.sleep({seconds})\n    return event\n"
        )
    role = emulator.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = emulator.client("lambda", max_attempts=1)
    created = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.go", Code={"ZipFile": buffer.getvalue()}
    )
    return str(created["FunctionArn"])


def test_lambda_scaling_rate_throttles_a_burst_of_new_environments(tmp_path: Path) -> None:
    overrides = {"lambda_scaling_bucket": 2, "lambda_scaling_rate": 0.001}
    with running_emulator(tmp_path, **overrides) as emulator:
        slow_function(emulator, "slow", 2.0)
        lam = emulator.client("lambda", max_attempts=1)

        def invoke(_: int) -> Any:
            try:
                return lam.invoke(FunctionName="slow", Payload=b"{}")["StatusCode"]
            except lam.exceptions.TooManyRequestsException as error:
                return error.response

        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(invoke, range(5)))
        refused = [a for a in answers if isinstance(a, dict)]
        assert answers.count(200) <= 2 and len(refused) >= 3  # 2 environments: the rest of the burst throttles
        assert all(r["ResponseMetadata"]["HTTPStatusCode"] == 429 for r in refused)
        assert {r["Reason"] for r in refused} == {"FunctionInvocationRateLimitExceeded"}
        assert lam.invoke(FunctionName="slow", Payload=b"{}")["StatusCode"] == 200  # a warm one serves
        throttles = metric(emulator, "AWS/Lambda", "Throttles", "Sum", {"FunctionName": "slow"})
        assert throttles == len(refused)


def test_concurrency_from_start_and_end_lines_holds_to_the_sandbox_limit(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SOF_RUNS_DIR", str(tmp_path / "runs"))
    with running_emulator(tmp_path / "state", profile="sandbox") as emulator:
        deploy(emulator, simulated_infer_ms=400)
        run_dir = runner.burst("local", 30, 20, "over-the-limit")
        record = collect.harvest(run_dir, collect.Options(quiet=True))
    assert record.executions[0].status == "SUCCEEDED"  # the default Retry rides out the 429s
    limit = record.account.lambda_concurrency
    assert limit == 10
    logs = record.logs
    assert logs.peak_concurrency is not None and 0 < logs.peak_concurrency <= limit
    assert all(f.peak_concurrency is not None and f.peak_concurrency <= limit for f in logs.functions)
    stats = analysis.stats(record)
    assert stats.peak_from_logs and stats.peak_concurrency == logs.peak_concurrency
    diagnosis = rca.diagnose(record, stats)
    throttled = next(f for f in diagnosis.findings if f.leaf == "THROTTLED" and f.subcase == "hard limit (429)")
    line = next(e for e in throttled.evidence if "ran at once" in e.text)
    assert line.source == "log" and f"at most {logs.peak_concurrency} Lambda invocations ran at once" in line.text
    assert "START..END log lines, where the concurrency limit applies" in line.text
    assert "invocations" in line.how  # the saved query that shows the same lines
