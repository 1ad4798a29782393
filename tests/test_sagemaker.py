"""Activity 9: Embed served by a SageMaker serverless endpoint, on the emulator, end to end.

The same definition and code as on AWS: `sof deploy` applies terraform/ with
embed_backend = "sagemaker" (bucket, bundle, model, serverless configuration, endpoint),
the state machine calls aws-sdk:sagemakerruntime:invokeEndpoint, and the endpoint runs
lambda_src/inference.py. Above MaxConcurrency the endpoint rejects instead of queueing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_support import OVERLAP, Emulator, deploy, insights, metric, run, task_failures, tickets
from emulator_support import lab as emulator_lab
from waiting import wait_for

from scaleorfail import scenarios
from scaleorfail.evidence import analysis, compare, rca
from scaleorfail.load import runner
from scaleorfail.usecases.diagnose import diagnose_run
from scaleorfail.usecases.harvest import harvest_runs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "scale-or-fail-embed"
DIMS = {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with emulator_lab(tmp_path_factory.mktemp("sagemaker")) as emulator:
        yield emulator


@pytest.fixture
def endpoint(lab: Emulator) -> Iterator[dict[str, Any]]:
    yield deploy(lab, embed_backend="sagemaker", **OVERLAP)
    deploy(lab)


def embed_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"].startswith("Task") and "sagemakerruntime" in json.dumps(e, default=str)]


def test_the_variant_deploys_a_private_bucket_a_model_and_a_serverless_endpoint(
    lab: Emulator, endpoint: dict[str, Any]
) -> None:
    assert endpoint["embed_backend"] == "sagemaker" and endpoint["embed_endpoint_name"] == ENDPOINT
    functions = {f["FunctionName"] for f in lab.client("lambda").list_functions()["Functions"]}
    assert functions == {"scale-or-fail-preprocess", "scale-or-fail-postprocess"}
    sm = lab.client("sagemaker")
    described = sm.describe_endpoint(EndpointName=ENDPOINT)
    config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MaxConcurrency": 2, "MemorySizeInMB": 1024}
    model = sm.describe_model(ModelName=variant["ModelName"])
    url = model["PrimaryContainer"]["ModelDataUrl"]
    bucket, key = url.removeprefix("s3://").split("/", 1)
    s3 = lab.client("s3")
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    bundle = (ROOT / "build" / "model.tar.gz").read_bytes()
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == bundle


def test_at_the_endpoints_concurrency_the_batch_succeeds_with_the_lambda_variants_results(
    lab: Emulator, endpoint: dict[str, Any]
) -> None:
    batch = tickets(6)
    on_endpoint = run(lab, endpoint, {"tickets": batch, "max_concurrency": 2})
    assert on_endpoint["status"] == "SUCCEEDED"
    calls = embed_events(on_endpoint["events"])
    assert {e["type"] for e in calls} >= {"TaskScheduled", "TaskSucceeded"}
    scheduled = next(e for e in calls if e["type"] == "TaskScheduled")["taskScheduledEventDetails"]
    assert scheduled["resource"] == "invokeEndpoint"
    assert isinstance(json.loads(scheduled["parameters"])["Body"], str)  # a JSON string in
    on_lambda = run(lab, deploy(lab), {"tickets": batch, "max_concurrency": 2})
    assert json.loads(on_endpoint["output"]) == json.loads(on_lambda["output"])  # one model, one code


def test_above_the_endpoints_concurrency_requests_are_rejected_not_queued(
    lab: Emulator, endpoint: dict[str, Any]
) -> None:
    started = datetime.now(UTC)
    result = run(lab, endpoint, {"tickets": tickets(12), "max_concurrency": 4})
    assert result["status"] == "FAILED" and result["error"] == "SageMakerRuntime.ThrottlingException"
    assert "MaxConcurrency 2" in result["cause"]
    assert "SageMakerRuntime.ThrottlingException" in task_failures(result["events"])
    # failed at the first rejection, before the batch was through (a queueing endpoint would serve all 12)
    served = [e for e in result["events"] if e["type"] == "MapIterationSucceeded"]
    assert len(served) < 12 and any(e["type"] == "ExecutionFailed" for e in result["events"])
    assert metric(lab, "AWS/SageMaker", "Invocation4XXErrors", "Sum", DIMS, since=started) >= 1
    # the requests it served end on their own after the execution failed (cold: a placement first), as on AWS
    served_count = wait_for(
        lambda: metric(lab, "AWS/SageMaker", "Invocations", "Sum", DIMS, since=started), "the served requests' metrics"
    )
    assert served_count >= 1
    assert (metric(lab, "AWS/SageMaker", "ModelLatency", "Sum", DIMS, since=started) or 0) > 0


def test_invoke_endpoint_api_throttles_errors_and_logs_like_sagemaker(lab: Emulator) -> None:
    deploy(lab, embed_backend="sagemaker", simulated_infer_ms=1500)
    try:
        runtime = lab.client("sagemaker-runtime", max_attempts=1)  # no hidden SDK retry of the throttle
        body = json.dumps({"ticket_id": "API-1", "text": "my parcel is late"})
        runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType="application/json")  # warm up
        clients = [lab.client("sagemaker-runtime", max_attempts=1) for _ in range(6)]
        for client in clients:  # each client's first call loads its model: do it before the race
            client.meta.events  # noqa: B018
        outcomes: list[tuple[str, float]] = []
        barrier = threading.Barrier(len(clients))

        def call(client: Any) -> None:
            barrier.wait()
            began = time.perf_counter()
            try:
                client.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType="application/json")
                outcomes.append(("ok", time.perf_counter() - began))
            except ClientError as error:
                outcomes.append((error.response["Error"]["Code"], time.perf_counter() - began))

        threads = [threading.Thread(target=call, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # six requests within the 1.5 s two of them take: two are served, four rejected at once
        assert sorted(code for code, _ in outcomes) == ["ThrottlingException"] * 4 + ["ok"] * 2
        assert max(t for code, t in outcomes if code != "ok") < min(t for code, t in outcomes if code == "ok")
        with pytest.raises(ClientError) as bad:
            runtime.invoke_endpoint(
                EndpointName=ENDPOINT,
                Body=json.dumps({"ticket_id": "API-2", "text": " "}),
                ContentType="application/json",
            )
        assert bad.value.response["Error"]["Code"] == "ModelError" and "InvalidTicket" in str(bad.value)
        with pytest.raises(ClientError) as missing:
            runtime.invoke_endpoint(EndpointName="nope", Body=body, ContentType="application/json")
        assert missing.value.response["Error"]["Code"] == "ValidationError"
        rows = insights(
            lab,
            [f"/aws/sagemaker/Endpoints/{ENDPOINT}"],
            "filter ticket_id = 'API-1' | stats count(*) as n, avg(duration_ms) as avg_ms by step",
        )
        assert rows and rows[0]["step"] == "embed" and int(rows[0]["n"]) == 3 and float(rows[0]["avg_ms"]) >= 1500
    finally:
        deploy(lab)


def test_redeploys_update_the_endpoint_and_switching_back_removes_the_variant(lab: Emulator) -> None:
    deploy(lab, embed_backend="sagemaker")
    sm = lab.client("sagemaker")
    first = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    outputs = deploy(lab, embed_backend="sagemaker", sagemaker_max_concurrency=4)
    second = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    assert second != first
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [second]
    assert run(lab, outputs, {"tickets": tickets(8), "max_concurrency": 4})["status"] == "SUCCEEDED"
    deploy(lab)
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
    assert not [b for b in lab.client("s3").list_buckets()["Buckets"] if "model" in b["Name"]]
    assert "scale-or-fail-embed" in {f["FunctionName"] for f in lab.client("lambda").list_functions()["Functions"]}


def play(emulator: Emulator, spec: scenarios.RunSpec) -> Path:
    deploy(emulator, **{**OVERLAP, **spec.variables})
    run_dir = runner.burst("local", spec.tickets, spec.max_concurrency, spec.label)
    harvest_runs([str(run_dir)], quiet=True)
    return run_dir


def test_rca_and_compare_contrast_rejection_with_queueing(lab: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    known = scenarios.catalogue(scale=0.2)["endpoint"]
    try:
        made = [play(lab, spec) for spec in known.runs]
    finally:
        deploy(lab)
    queued, rejected = (diagnose_run(run_dir, quiet=True) for run_dir in made)
    assert queued.classification == [known.expected[0]] and [f.bone for f in queued.findings] == [1]
    assert rejected.classification == [known.expected[1]] and [f.bone for f in rejected.findings] == [3]
    (finding,) = rejected.findings
    assert {e.source for e in finding.evidence} >= {"history", "config", "metric"}
    assert "max_concurrency 2" in finding.action
    assert "MAX_CONCURRENCY=2" in finding.verification and "sof compare" in finding.verification
    assert "Fishbone bone 3: Dependencies" in rca.to_markdown(rejected)
    runs = [analysis.stats(record) for record in harvest_runs([str(d) for d in made], quiet=True)]
    compare.with_baseline(runs)
    text = compare.table(runs, wide=True)
    assert text.count("endpoint (max 2)") == 2
    assert runs[0].executions_ok == 1 and runs[0].endpoint_throttles == 0 and runs[0].queue_wait_ms["p95"] > 0
    assert runs[1].executions_failed == 1 and runs[1].endpoint_throttles >= 1
    with capsys.disabled():
        print("\n" + text)


def test_the_endpoint_scenario_through_the_cli(lab: Emulator) -> None:
    env = {**os.environ, "SOF_STATE_DIR": str(lab.state_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "scaleorfail.cli", "scenario", "endpoint", "--scale", "0.2"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    deploy(lab)
    assert done.returncode == 0, done.stderr
    assert "endpoint-c2" in done.stdout and "1 SUCCEEDED" in done.stdout and "1 FAILED" in done.stdout
