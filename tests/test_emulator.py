"""The emulator, tested by running real executions through it.

Each module-scoped emulator is a real server process (moto + the Lambda runtime) on a
free loopback port, deployed from terraform/ with `sof deploy --target local`'s code.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_support import (
    OVERLAP,
    OVERLAP_MS,
    Emulator,
    deploy,
    finished,
    insights,
    metric,
    run,
    running_emulator,
    task_failures,
    tickets,
)
from waiting import history_length, wait_for

from scaleorfail import history

pytestmark = pytest.mark.slow

LAMBDA_GROUPS = [f"/aws/lambda/scale-or-fail-{s}" for s in ("preprocess", "embed", "postprocess")]
QUERIES = Path(__file__).resolve().parent.parent / "terraform" / "queries"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The workshop's sandbox account: Lambda account concurrency 10."""
    with running_emulator(tmp_path_factory.mktemp("sandbox"), profile="sandbox") as running:
        yield running


def embed_dims(outputs: dict[str, Any]) -> dict[str, str]:
    return {"FunctionName": outputs["function_names"]["embed"]}


# -- the pipeline ----------------------------------------------------------------------------------


def test_happy_path_processes_every_ticket_in_order(emulator: Emulator) -> None:
    outputs = deploy(emulator)
    done = run(emulator, outputs, {"tickets": tickets(6), "max_concurrency": 3})
    assert done["status"] == "SUCCEEDED"
    results = done["result"]["results"]
    assert [r["ticket_id"] for r in results] == [f"T-{i:04d}" for i in range(6)]
    assert [r["route"] for r in results[:4]] == ["billing", "delivery", "technical", "cancellation"]
    assert {r["status"] for r in results} == {"OK"}
    entered = [e["stateEnteredEventDetails"]["name"] for e in done["events"] if e["type"] == "TaskStateEntered"]
    assert entered.count("Preprocess") == entered.count("Embed") == entered.count("Postprocess") == 6


def test_default_max_concurrency_applies_when_the_input_has_none(emulator: Emulator) -> None:
    outputs = deploy(emulator, default_max_concurrency=3)
    done = run(emulator, outputs, {"tickets": tickets(2)})
    assert done["status"] == "SUCCEEDED"
    passes = [e for e in done["events"] if e["type"] == "PassStateExited"]
    assert json.loads(passes[0]["stateExitedEventDetails"]["output"])["max_concurrency"] == 3


def test_bad_input_fails_the_execution_in_preprocess(emulator: Emulator) -> None:
    outputs = deploy(emulator)
    bad = {"ticket_id": "T-BIG", "text": "x" * 5100}
    done = run(emulator, outputs, {"tickets": [*tickets(2), bad]})
    assert done["status"] == "FAILED"
    assert done["error"] == "PayloadTooLarge"
    cause = json.loads(done["cause"])
    assert cause["errorType"] == "PayloadTooLarge" and "5100 characters" in cause["errorMessage"]
    failed = [e for e in done["events"] if e["type"] == "TaskFailed"]
    assert failed and failed[0]["taskFailedEventDetails"]["error"] == "PayloadTooLarge"


def test_quarantine_policy_keeps_the_good_tickets(emulator: Emulator) -> None:
    outputs = deploy(emulator, bad_input_policy="quarantine")
    try:
        batch = [*tickets(3), {"ticket_id": "T-BIG", "text": "y" * 5100}, "not a ticket"]
        done = run(emulator, outputs, {"tickets": batch, "max_concurrency": 5})
        assert done["status"] == "SUCCEEDED"
        statuses = [r["status"] for r in done["result"]["results"]]
        assert statuses == ["OK", "OK", "OK", "REJECTED", "REJECTED"]
        rejected = done["result"]["results"][3:]
        assert [r["error"] for r in rejected] == ["PayloadTooLarge", "InvalidTicket"]
        assert "T-BIG" in rejected[0]["cause"]
    finally:
        deploy(emulator)


def test_a_large_mixed_batch_under_quarantine_keeps_its_rejected_records_compact(emulator: Emulator) -> None:
    """350 tickets, 300 of them bad: with stack traces in the records (about 1 KB each) this output passed
    256 KB and the whole batch failed with States.DataLimitExceeded; the records keep the error name and its
    message only."""
    outputs = deploy(emulator, bad_input_policy="quarantine")
    try:
        bad = [{"ticket_id": f"B-{i:04d}", "text": 12345} for i in range(300)]
        done = run(emulator, outputs, {"tickets": [*tickets(50), *bad], "max_concurrency": 40})
        assert done["status"] == "SUCCEEDED", done.get("cause", "")[:500]
        results = done["result"]["results"]
        rejected = [r for r in results if r.get("status") == "REJECTED"]
        assert len(results) == 350 and len(rejected) == 300
        assert all(set(r) == {"status", "error", "cause"} and r["error"] == "InvalidTicket" for r in rejected)
        assert all(isinstance(r["cause"], str) and "B-" in r["cause"] for r in rejected)
        assert max(len(json.dumps(r)) for r in rejected) < 200  # no stack trace, no request id
        assert "stackTrace" not in done["output"] and len(done["output"].encode()) < 256 * 1024
    finally:
        deploy(emulator)


# -- Lambda limits -------------------------------------------------------------------------------------


def test_over_the_account_limit_without_retry_the_execution_fails_with_429(sandbox: Emulator) -> None:
    outputs = deploy(sandbox, simulated_infer_ms=400, lambda_retry={"max_attempts": 0})
    done = run(sandbox, outputs, {"tickets": tickets(20), "max_concurrency": 20})
    assert done["status"] == "FAILED"
    assert done["error"] == "Lambda.TooManyRequestsException"
    # as Step Functions records Lambda's 429 on AWS (no emulator-only diagnosis in it)
    assert re.fullmatch(
        r"Rate Exceeded\. \(Service: AWSLambda; Status Code: 429; Error Code: TooManyRequestsException; "
        r"Request ID: [0-9a-f-]{36}; Proxy: null\)",
        done["cause"],
    ), done["cause"]


def test_over_the_account_limit_the_default_retry_succeeds_and_throttles_are_counted(sandbox: Emulator) -> None:
    outputs = deploy(sandbox, simulated_infer_ms=400)
    before = metric(sandbox, "AWS/Lambda", "Throttles", "Sum", {}) or 0.0
    done = run(sandbox, outputs, {"tickets": tickets(20), "max_concurrency": 20})
    assert done["status"] == "SUCCEEDED"
    assert len(done["result"]["results"]) == 20
    retried = task_failures(done["events"])
    assert retried and set(retried) == {"Lambda.TooManyRequestsException"}
    throttles = (metric(sandbox, "AWS/Lambda", "Throttles", "Sum", {}) or 0.0) - before
    assert throttles == len(retried)  # every 429 the state machine saw is in the metric
    assert metric(sandbox, "AWS/Lambda", "ConcurrentExecutions", "Maximum", {}, since=done["startDate"]) == 10


def test_reserved_concurrency_caps_the_function(emulator: Emulator) -> None:
    outputs = deploy(emulator, simulated_infer_ms=200, embed_reserved_concurrency=2)
    try:
        done = run(emulator, outputs, {"tickets": tickets(8), "max_concurrency": 8})
        assert done["status"] == "SUCCEEDED"
        peak = metric(
            emulator, "AWS/Lambda", "ConcurrentExecutions", "Maximum", embed_dims(outputs), since=done["startDate"]
        )
        assert peak == 2
        assert "Lambda.TooManyRequestsException" in task_failures(done["events"])
    finally:
        deploy(emulator)


def test_reserved_concurrency_zero_throttles_everything(emulator: Emulator) -> None:
    outputs = deploy(emulator, embed_reserved_concurrency=0, lambda_retry={"max_attempts": 0})
    try:
        done = run(emulator, outputs, {"tickets": tickets(1)})
        assert done["status"] == "FAILED" and done["error"] == "Lambda.TooManyRequestsException"
        lam = emulator.client("lambda", max_attempts=1)
        with pytest.raises(lam.exceptions.TooManyRequestsException) as info:
            lam.invoke(FunctionName=outputs["function_names"]["embed"], Payload=b"{}")
        assert info.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    finally:
        deploy(emulator)


def test_timeout_kills_the_environment_with_lambdas_error(emulator: Emulator) -> None:
    outputs = deploy(emulator, simulated_infer_ms=2500, embed_timeout_seconds=1, lambda_retry={"max_attempts": 0})
    try:
        done = run(emulator, outputs, {"tickets": tickets(1)})
        assert done["status"] == "FAILED" and done["error"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in done["cause"]
        rows = insights(emulator, [LAMBDA_GROUPS[1]], "filter @message like /Task timed out/ | fields @message")
        assert rows
        reports = insights(emulator, [LAMBDA_GROUPS[1]], "filter @message like /Status: timeout/ | fields @message")
        assert reports and "Duration: 1000.00 ms" in reports[0]["@message"]
    finally:
        deploy(emulator)


def test_a_model_too_heavy_for_the_memory_dies_out_of_memory(emulator: Emulator) -> None:
    outputs = deploy(emulator, model_memory_mb=300, embed_memory_mb=128, lambda_retry={"max_attempts": 0})
    try:
        done = run(emulator, outputs, {"tickets": tickets(1)})
        assert done["status"] == "FAILED" and done["error"] == "Runtime.OutOfMemory"
        assert "Runtime exited with error: signal: killed" in done["cause"]
        rows = insights(
            emulator,
            [LAMBDA_GROUPS[1]],
            'filter @type = "REPORT" and @maxMemoryUsed >= @memorySize'
            " | fields @maxMemoryUsed / 1000 / 1000 as used_mb",  # MB x 1,000,000, as AWS counts them
        )
        assert rows and rows[0]["used_mb"] == "128"
        assert metric(emulator, "AWS/Lambda", "Errors", "Sum", embed_dims(outputs), since=done["startDate"]) == 1
    finally:
        deploy(emulator)


def test_a_slow_dependency_times_out_and_is_retried(emulator: Emulator) -> None:
    retry = {"max_attempts": 2, "interval_seconds": 1, "backoff_rate": 1, "jitter_strategy": "NONE"}
    outputs = deploy(emulator, dependency_latency_ms=300, dependency_timeout_ms=50, lambda_retry=retry)
    try:
        done = run(emulator, outputs, {"tickets": tickets(1)})
        assert done["status"] == "FAILED" and done["error"] == "DependencyTimeout"
        assert task_failures(done["events"]) == ["DependencyTimeout"] * 3  # first try + 2 retries
        elapsed = (done["stopDate"] - done["startDate"]).total_seconds()
        assert elapsed >= 2.0  # two 1-second retry intervals
    finally:
        deploy(emulator)


def test_inline_map_never_runs_more_than_40_items_at_once(emulator: Emulator) -> None:
    outputs = deploy(emulator, simulated_infer_ms=600)
    done = run(emulator, outputs, {"tickets": tickets(60), "max_concurrency": 0}, timeout=180)
    assert done["status"] == "SUCCEEDED"
    in_flight = peak = 0
    for event in done["events"]:
        if event["type"] == "MapIterationStarted":
            in_flight += 1
            peak = max(peak, in_flight)
        elif event["type"] in ("MapIterationSucceeded", "MapIterationFailed"):
            in_flight -= 1
    assert peak == 40


# -- Step Functions fidelity ----------------------------------------------------------------------


def _pass_machine(emulator: Emulator, name: str, definition: dict[str, Any]) -> str:
    sfn = emulator.client("stepfunctions")
    iam = emulator.client("iam")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return str(sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)["stateMachineArn"])


def test_executions_of_a_new_machine_starting_together_share_its_one_parse(emulator: Emulator) -> None:
    """Twenty executions start at once on a machine no execution has run: one ANTLR parse of its
    definition, nineteen copies of it (/_sof/health counts how each got its program)."""
    from concurrent.futures import ThreadPoolExecutor

    def programs() -> dict[str, int]:
        with urllib.request.urlopen(f"{emulator.url}/_sof/health", timeout=10) as answer:
            return dict(json.loads(answer.read())["programs"])

    # 150 states: a parse long enough (tens of ms) that the twenty starts arrive while it runs
    states: dict[str, Any] = {f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}"} for i in range(150)}
    states["P150"] = {"Type": "Wait", "Seconds": 1, "End": True}
    arn = _pass_machine(emulator, "together", {"StartAt": "P0", "States": states})
    clients = [emulator.client("stepfunctions") for _ in range(20)]
    before = programs()
    with ThreadPoolExecutor(len(clients)) as pool:
        started = list(pool.map(lambda client: client.start_execution(stateMachineArn=arn)["executionArn"], clients))
    sfn = clients[0]
    wait_for(
        lambda: all(sfn.describe_execution(executionArn=e)["status"] == "SUCCEEDED" for e in started), "all 20 done"
    )
    after = programs()
    assert after["parsed"] - before["parsed"] == 1
    assert after["copied"] + after["reused"] - before["copied"] - before["reused"] == 19


def test_executions_without_a_name_get_unique_ones(emulator: Emulator) -> None:
    arn = _pass_machine(emulator, "unnamed", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    sfn = emulator.client("stepfunctions")
    first = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    second = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert first != second and not first.endswith(":None")


def test_an_execution_name_is_idempotent_while_running_and_taken_after(emulator: Emulator) -> None:
    """AWS's rule for a STANDARD execution's name, among many executions of the machine (an index finds it)."""
    waiting = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}
    arn = _pass_machine(emulator, "named", waiting)
    sfn = emulator.client("stepfunctions")
    others = [sfn.start_execution(stateMachineArn=arn, name=f"other-{i}")["executionArn"] for i in range(25)]
    first = sfn.start_execution(stateMachineArn=arn, name="nightly", input='{"day": 1}')["executionArn"]
    more = [sfn.start_execution(stateMachineArn=arn, name=f"later-{i}")["executionArn"] for i in range(25)]
    for execution in others + more:
        sfn.stop_execution(executionArn=execution)
    again = sfn.start_execution(stateMachineArn=arn, name="nightly", input='{"day": 1}')["executionArn"]
    assert again == first and len(set(others + more + [first])) == 51  # same name and input, running: the same one
    with pytest.raises(ClientError) as other_input:
        sfn.start_execution(stateMachineArn=arn, name="nightly", input='{"day": 2}')
    assert other_input.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    sfn.stop_execution(executionArn=first)
    assert finished(sfn, first)["status"] == "ABORTED"
    with pytest.raises(ClientError) as after_end:
        sfn.start_execution(stateMachineArn=arn, name="nightly", input='{"day": 1}')
    assert after_end.value.response["Error"]["Code"] == "ExecutionAlreadyExists" and first in str(after_end.value)


def test_a_refused_jsonata_definition_leaves_later_definitions_jsonpath(emulator: Emulator) -> None:
    """moto kept the parser's QueryLanguage scopes on its class: a refused JSONata definition left its scope
    behind and every later definition was read as JSONata (InputPath ignored)."""
    downgrade = {"QueryLanguage": "JSONata", "StartAt": "P",
                 "States": {"P": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}}}  # fmt: skip
    with pytest.raises(ClientError) as refused:
        _pass_machine(emulator, "downgrade", downgrade)
    assert refused.value.response["Error"]["Code"] == "InvalidDefinition"  # moto's ASL backend named no error
    arn = _pass_machine(
        emulator, "input-path", {"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.x", "End": True}}}
    )
    sfn = emulator.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=arn, input='{"x": {"y": 1}, "z": 2}')["executionArn"]
    done = finished(sfn, execution)
    assert done["status"] == "SUCCEEDED" and json.loads(done["output"]) == {"y": 1}


def test_executions_of_one_definition_at_once_each_run_their_own_input(emulator: Emulator) -> None:
    """A definition is parsed once: executions at once run copies of that program, ended ones hand theirs on.
    Each must see only its own data (Parallel and Map keep per-run fields on their components)."""
    tag = {"Type": "Pass", "Parameters": {"n.$": "$", "run.$": "$$.Execution.Name"}, "End": True}
    processor = {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Tag", "States": {"Tag": tag}}
    each = {"Type": "Map", "ItemsPath": "$.items", "End": True, "ItemProcessor": processor}
    name = {"Type": "Pass", "Parameters": {"who.$": "$.who"}, "End": True}
    branches = [{"StartAt": "Each", "States": {"Each": each}}, {"StartAt": "Name", "States": {"Name": name}}]
    hold = {"Type": "Wait", "Seconds": 1, "Next": "Both"}
    both = {"Type": "Parallel", "End": True, "Branches": branches}
    arn = _pass_machine(emulator, "at-once", {"StartAt": "Hold", "States": {"Hold": hold, "Both": both}})
    sfn = emulator.client("stepfunctions")
    for round_ in ("copies", "pooled"):  # first all at once (one parse, then copies), then the pooled programs
        started = {
            f"{round_}-{i}": sfn.start_execution(
                stateMachineArn=arn, name=f"{round_}-{i}", input=json.dumps({"items": [i, i + 1, i + 2], "who": i})
            )["executionArn"]
            for i in range(12)
        }
        for run_name, execution in started.items():
            done = finished(sfn, execution)
            i = int(run_name.rsplit("-", 1)[1])
            assert done["status"] == "SUCCEEDED", done
            assert json.loads(done["output"]) == [[{"n": n, "run": run_name} for n in (i, i + 1, i + 2)], {"who": i}]


def test_an_execution_past_its_timeout_seconds_times_out(emulator: Emulator) -> None:
    arn = _pass_machine(
        emulator,
        "times-out",
        {"TimeoutSeconds": 1, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}},
    )
    sfn = emulator.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    done = finished(sfn, execution)
    assert done["status"] == "TIMED_OUT"
    assert (done["stopDate"] - done["startDate"]).total_seconds() < 10
    events = sfn.get_execution_history(executionArn=execution)["events"]
    assert events[-1]["type"] == "ExecutionTimedOut"


def test_a_task_past_its_own_timeout_seconds_times_out_while_its_function_runs_on(emulator: Emulator) -> None:
    # Embed sleeps 4 s; the Task waits at most 1 s (a Task without TimeoutSeconds runs on its state's own
    # thread, one with it on a thread of its own the state waits on: this is the path that must still time out)
    outputs = deploy(emulator, simulated_infer_ms=4000, infer_jitter_sigma_ms=0)
    try:
        task = {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": outputs["function_names"]["embed"], "Payload.$": "$"},
            "TimeoutSeconds": 1,
            "End": True,
        }
        arn = _pass_machine(emulator, "task-times-out", {"StartAt": "Embed", "States": {"Embed": task}})
        sfn = emulator.client("stepfunctions")
        ticket = json.dumps({"ticket_id": "T-1", "text": "my parcel never arrived"})
        execution = sfn.start_execution(stateMachineArn=arn, input=ticket)["executionArn"]
        done = finished(sfn, execution)
        assert done["status"] == "FAILED" and done["error"] == "States.Timeout", done  # not its 4 s success
        events = sfn.get_execution_history(executionArn=execution)["events"]
        assert "TaskTimedOut" in [e["type"] for e in events]
    finally:
        deploy(emulator)


def test_payloads_over_256_kb_are_refused(emulator: Emulator) -> None:
    arn = _pass_machine(
        emulator,
        "bigdata",
        {
            "StartAt": "Grow",
            "States": {"Grow": {"Type": "Pass", "Parameters": {"a.$": "$.blob", "b.$": "$.blob"}, "End": True}},
        },
    )
    sfn = emulator.client("stepfunctions")
    with pytest.raises(sfn.exceptions.ValidationException) as refused:  # the model's max length of input
        sfn.start_execution(stateMachineArn=arn, input=json.dumps({"blob": "z" * 270_000}))
    assert "at 'input' failed to satisfy constraint" in str(refused.value)
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"blob": "z" * 140_000}))["executionArn"]
    description = finished(sfn, execution)
    assert description["status"] == "FAILED" and description["error"] == "States.DataLimitExceeded"


def test_execution_history_is_paged_like_aws(emulator: Emulator) -> None:
    outputs = deploy(emulator)
    done = run(emulator, outputs, {"tickets": tickets(3), "max_concurrency": 3})
    sfn = emulator.client("stepfunctions")
    pages, token = [], None
    while True:
        page = sfn.get_execution_history(
            executionArn=done["executionArn"], maxResults=7, **({"nextToken": token} if token else {})
        )
        pages.append(page["events"])
        token = page.get("nextToken")
        if not token:
            break
    assert all(len(p) == 7 for p in pages[:-1]) and len(pages) > 2
    assert [e["id"] for p in pages for e in p] == [e["id"] for e in done["events"]]
    newest = sfn.get_execution_history(executionArn=done["executionArn"], maxResults=1, reverseOrder=True)
    assert newest["events"][0]["type"] == "ExecutionSucceeded"


def test_a_live_history_is_paged_like_aws_without_repeats(emulator: Emulator) -> None:
    outputs = deploy(emulator, simulated_infer_ms=30)
    sfn = emulator.client("stepfunctions")
    payload = json.dumps({"tickets": tickets(12), "max_concurrency": 1})
    arn = sfn.start_execution(stateMachineArn=outputs["state_machine_arn"], input=payload)["executionArn"]

    def grown() -> dict[str, Any] | None:
        page = sfn.get_execution_history(executionArn=arn, maxResults=3, reverseOrder=True)
        return dict(page) if "nextToken" in page else None

    newest = wait_for(grown, "3+ events", observe=lambda: history_length(sfn, arn), interval=0.05)
    first = sfn.get_execution_history(executionArn=arn, maxResults=3, includeExecutionData=False)
    assert first["events"][0]["type"] == "ExecutionStarted" and "input" not in first["events"][0].get(
        "executionStartedEventDetails", {}
    )
    finished(sfn, arn)
    ids, token = [e["id"] for e in first["events"]], first.get("nextToken")
    while token:
        page = sfn.get_execution_history(executionArn=arn, maxResults=3, includeExecutionData=False, nextToken=token)
        ids += [e["id"] for e in page["events"]]
        token = page.get("nextToken")
    everything = [e for p in sfn.get_paginator("get_execution_history").paginate(executionArn=arn) for e in p["events"]]
    assert ids == [e["id"] for e in everything] == list(range(1, len(everything) + 1))
    assert everything[-1]["type"] == "ExecutionSucceeded"
    older = sfn.get_execution_history(executionArn=arn, maxResults=3, reverseOrder=True, nextToken=newest["nextToken"])
    assert [e["id"] for e in older["events"]] == [newest["events"][-1]["id"] - k for k in (1, 2, 3)]
    with pytest.raises(ClientError) as refused:
        sfn.get_execution_history(executionArn=arn, nextToken=newest["nextToken"])  # reverse token, forward read
    assert refused.value.response["Error"]["Code"] == "InvalidToken"


# -- metrics and logs -----------------------------------------------------------------------------------


def test_metrics_match_what_happened(tmp_path: Path) -> None:
    with running_emulator(tmp_path) as fresh:
        outputs = deploy(fresh, **OVERLAP)  # the Map's 4 Embed calls overlap (20 ms ones: the peak read 3)
        machine = {"StateMachineArn": outputs["state_machine_arn"]}
        ok = run(fresh, outputs, {"tickets": tickets(7), "max_concurrency": 4})
        bad = run(fresh, outputs, {"tickets": [{"ticket_id": "T-X", "text": ""}]})
        assert (ok["status"], bad["status"]) == ("SUCCEEDED", "FAILED")
        assert metric(fresh, "AWS/Lambda", "Invocations", "Sum", embed_dims(outputs)) == 7
        assert metric(fresh, "AWS/Lambda", "Duration", "SampleCount", embed_dims(outputs)) == 7
        p95 = metric(fresh, "AWS/Lambda", "Duration", "p95", embed_dims(outputs))
        reported = report_durations(fresh, outputs["log_group_names"]["embed"])  # what REPORT lines said
        assert len(reported) == 7 and p95 is not None  # REPORT prints 2 decimals, the metric keeps 3
        assert OVERLAP_MS <= min(reported) - 0.005 <= p95 <= max(reported) + 0.005
        preprocess = {"FunctionName": outputs["function_names"]["preprocess"]}
        assert metric(fresh, "AWS/Lambda", "Invocations", "Sum", preprocess) == 8
        assert metric(fresh, "AWS/Lambda", "Errors", "Sum", preprocess) == 1
        assert metric(fresh, "AWS/Lambda", "Throttles", "Sum", preprocess) is None
        assert metric(fresh, "AWS/Lambda", "ConcurrentExecutions", "Maximum", embed_dims(outputs)) == 4
        assert metric(fresh, "AWS/States", "ExecutionsStarted", "Sum", machine) == 2
        assert metric(fresh, "AWS/States", "ExecutionsSucceeded", "Sum", machine) == 1
        assert metric(fresh, "AWS/States", "ExecutionsFailed", "Sum", machine) == 1
        assert (metric(fresh, "AWS/States", "ExecutionTime", "Maximum", machine) or 0) > 0
        statistics = fresh.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="Invocations",
            Dimensions=[{"Name": "FunctionName", "Value": outputs["function_names"]["postprocess"]}],
            StartTime=ok["startDate"].replace(microsecond=0) - __import__("datetime").timedelta(minutes=1),
            EndTime=bad["stopDate"] + __import__("datetime").timedelta(minutes=1),
            Period=3600,
            Statistics=["Sum"],
        )
        assert sum(p["Sum"] for p in statistics["Datapoints"]) == 7


def report_durations(emulator: Emulator, group: str) -> list[float]:
    events = emulator.client("logs").filter_log_events(logGroupName=group, filterPattern="REPORT")["events"]
    return [float(m.group(1)) for e in events if (m := re.search(r"\tDuration: ([\d.]+) ms", e["message"]))]


def test_lambda_logs_have_start_end_report_and_the_handler_lines(emulator: Emulator) -> None:
    outputs = deploy(emulator)
    done = run(emulator, outputs, {"tickets": tickets(2, prefix="LOG"), "max_concurrency": 1})
    logs = emulator.client("logs")
    group = outputs["log_group_names"]["embed"]
    since = int(done["startDate"].timestamp() * 1000)
    events = logs.filter_log_events(logGroupName=group, startTime=since)["events"]
    messages = [e["message"] for e in events]
    assert sum(m.startswith("START RequestId:") and "Version: $LATEST" in m for m in messages) == 2
    assert any(m.startswith("END RequestId:") for m in messages)
    reports = [m for m in messages if m.startswith("REPORT RequestId:")]
    assert len(reports) == 2
    for field in ("Duration:", "Billed Duration:", "Memory Size: 256 MB", "Max Memory Used:"):
        assert all(field in r for r in reports)
    handler_lines = [(e["logStreamName"], json.loads(e["message"])) for e in events if "LOG-" in e["message"]]
    assert {line["ticket_id"] for _, line in handler_lines} == {"LOG-0000", "LOG-0001"}
    # each handler line names its invocation: the RequestId of its REPORT line and of the history's task
    reported = {
        (e["logStreamName"], re.split(r"\s", e["message"])[2]) for e in events if e["message"].startswith("REPORT")
    }
    succeeded = {
        history.succeeded_request_id(e["taskSucceededEventDetails"].get("output"))
        for e in done["events"]
        if e["type"] == "TaskSucceeded"
    }
    for stream, line in handler_lines:
        assert line["function_name"] == outputs["function_names"]["embed"]
        assert (stream, line["function_request_id"]) in reported and line["function_request_id"] in succeeded
    assert len({line["function_request_id"] for _, line in handler_lines}) == 2
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert streams and all("[$LATEST]" in s["logStreamName"] for s in streams), streams


def test_cold_starts_report_init_duration_and_warm_ones_do_not(tmp_path: Path) -> None:
    with running_emulator(tmp_path, cold_start_ms=150.0) as fresh:
        outputs = deploy(fresh)
        run(fresh, outputs, {"tickets": tickets(1)})
        run(fresh, outputs, {"tickets": tickets(1)})
        rows = insights(
            fresh,
            [outputs["log_group_names"]["embed"]],
            'filter @type = "REPORT" | fields @initDuration, @duration | sort @timestamp asc',
        )
        assert len(rows) == 2
        assert float(rows[0]["@initDuration"]) >= 150.0  # at least the modelled 150 ms (the real start counts)
        assert "@initDuration" not in rows[1]


def test_the_workshop_insights_queries_answer(emulator: Emulator) -> None:
    outputs = deploy(emulator)
    run(emulator, outputs, {"tickets": tickets(4, prefix="INS"), "max_concurrency": 2})
    run(emulator, outputs, {"tickets": [{"ticket_id": "INS-BIG", "text": "b" * 5100}]})
    index = json.loads((QUERIES / "queries.json").read_text())
    results = {key: insights(emulator, LAMBDA_GROUPS, (QUERIES / q["file"]).read_text()) for key, q in index.items()}
    assert 0 < len(results["recent-lines"]) <= 50
    assert set(results["recent-lines"][0]) == {"@timestamp", "@message", "@ptr"}  # @ptr: as AWS answers
    fields = results["step-fields"]
    assert {row["step"] for row in fields} == {"preprocess", "embed", "postprocess"}
    assert any(row["ticket_id"] == "INS-0003" for row in fields)
    by_step = {row["step"]: row for row in results["duration-by-step"]}
    assert set(by_step) == {"preprocess", "embed", "postprocess"}
    assert float(by_step["embed"]["avg_ms"]) >= 20.0 > float(by_step["preprocess"]["avg_ms"])
    assert list(results["duration-by-step"][0]) == ["step", "avg_ms", "max_ms", "invocations"]
    assert results["duration-by-step"][0]["step"] == "embed"  # sorted by the average, slowest first
    assert any("INS-BIG" in row["@message"] for row in results["bad-input"])
    assert all("PayloadTooLarge" in row["@message"] for row in results["bad-input"])


# -- any deployment package -----------------------------------------------------------------------


def test_any_python_package_from_s3_runs(emulator: Emulator, tmp_path: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("deep/pkg/__init__.py", "")
        archive.writestr(
            "deep/pkg/app.py",
            "import os\nprint('cold import')\n"
            "def go(event, context):\n"
            "    print('hello', event['who'])\n"
            "    return {'who': event['who'], 'greeting': os.environ['GREETING'],"
            " 'fn': context.function_name, 'left': context.get_remaining_time_in_millis() > 0,"
            " 'region': os.environ['AWS_REGION']}\n",
        )
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="code-bucket")
    s3.put_object(Bucket="code-bucket", Key="app.zip", Body=buffer.getvalue())
    role = emulator.client("iam").create_role(RoleName="anyzip", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = emulator.client("lambda")
    lam.create_function(
        FunctionName="any-zip",
        Runtime="python3.12",
        Role=role,
        Handler="deep.pkg.app.go",
        Code={"S3Bucket": "code-bucket", "S3Key": "app.zip"},
        Environment={"Variables": {"GREETING": "hi"}},
    )
    response = lam.invoke(FunctionName="any-zip", Payload=json.dumps({"who": "ada"}), LogType="Tail")
    body = json.loads(response["Payload"].read())
    assert body == {"who": "ada", "greeting": "hi", "fn": "any-zip", "left": True, "region": "us-east-1"}
    import base64

    tail = base64.b64decode(response["LogResult"]).decode()
    assert "hello ada" in tail and "Init Duration" in tail
    broken = lam.create_function(
        FunctionName="no-such-module",
        Runtime="python3.12",
        Role=role,
        Handler="nothere.handler",
        Code={"S3Bucket": "code-bucket", "S3Key": "app.zip"},
    )
    failed = lam.invoke(FunctionName=broken["FunctionName"], Payload=b"{}")
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "Runtime.ImportModuleError"


def test_a_configuration_change_reaches_the_next_invocation(emulator: Emulator) -> None:
    """What the function itself logged and what the runtime reported (not how long the machine took)."""
    outputs = deploy(emulator, simulated_infer_ms=10)
    quick = run(emulator, outputs, {"tickets": tickets(1)})
    outputs = deploy(emulator, simulated_infer_ms=400)
    slow = run(emulator, outputs, {"tickets": tickets(1)})
    quick_line, _ = embed_invocation(emulator, outputs, quick)
    slow_line, slow_ms = embed_invocation(emulator, outputs, slow)
    assert (quick_line["inference_ms"], slow_line["inference_ms"]) == (10.0, 400.0)
    assert slow_ms >= 400.0  # REPORT Duration: the handler really waited the new latency
    deploy(emulator)


def embed_invocation(emulator: Emulator, outputs: dict[str, Any], done: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """The Embed handler's log line of this execution and its REPORT Duration (ms), found by RequestId."""
    ids = {
        history.succeeded_request_id(e["taskSucceededEventDetails"].get("output"))
        for e in done["events"]
        if e["type"] == "TaskSucceeded"
    }
    since = int(done["startDate"].timestamp() * 1000) - 1000
    events = emulator.client("logs").filter_log_events(
        logGroupName=outputs["log_group_names"]["embed"], startTime=since
    )["events"]
    (line,) = [
        j
        for e in events
        if e["message"].startswith("{") and (j := json.loads(e["message"])).get("function_request_id") in ids
    ]
    (duration,) = [
        float(m.group(1))
        for e in events
        if (m := re.match(rf"REPORT RequestId: {line['function_request_id']}\s+Duration: ([\d.]+) ms", e["message"]))
    ]
    return line, duration


def test_a_long_map_at_concurrency_one_completes(emulator: Emulator) -> None:
    """moto's Map worker recursed once per item, whatever the item runs: 1,200 items overflowed its stack and
    hung (with moto's worker restored, this execution stays RUNNING and its history stops growing)."""
    iterator = {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    definition = {
        "StartAt": "Fan",
        "States": {"Fan": {"Type": "Map", "MaxConcurrency": 1, "ItemProcessor": iterator, "End": True}},
    }
    arn = _pass_machine(emulator, "long-map", definition)
    sfn = emulator.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(list(range(1200))))["executionArn"]
    done = finished(sfn, execution)
    assert done["status"] == "SUCCEEDED" and done["result"] == list(range(1200))
