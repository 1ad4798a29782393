"""StopExecution: ABORTED at once, whatever state the execution is in - as AWS does."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import waiting
from emulator_support import Emulator, running_emulator

pytestmark = pytest.mark.slow
ROLE = "arn:aws:iam::123456789012:role/lambda"
SLOW = "import time\ndef handler(event, context):\n    time.sleep(6)\n    return event\n"
FAILING = "def handler(event, context):\n    raise RuntimeError('try again later')\n"


def wait_30(name: str = "W") -> dict[str, Any]:
    return {"StartAt": name, "States": {name: {"Type": "Wait", "Seconds": 30, "End": True}}}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    # `aws` timing, as `sof local up` runs by default: an execution's program starts after the modelled
    # dispatch latency, and a stop that arrived before it was dropped
    with running_emulator(tmp_path_factory.mktemp("stop"), timing="aws") as running:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
        running.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument=json.dumps(trust))
        lam = running.client("lambda")
        for name, code in (("slow", SLOW), ("failing", FAILING)):
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("index.py", code)
            lam.create_function(
                FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler", Timeout=60,
                Code={"ZipFile": buffer.getvalue()},
            )  # fmt: skip
        yield running


def machine(emulator: Emulator, name: str, definition: dict[str, Any]) -> str:
    sfn = emulator.client("stepfunctions")
    return str(sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"])


def history_types(emulator: Emulator, arn: str) -> list[str]:
    events = emulator.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["type"] for e in events]


def wait_for_event(emulator: Emulator, arn: str, kind: str, timeout: float = waiting.QUIET_S) -> None:
    """Until the history holds an event of this kind (a Lambda ARN task writes LambdaFunction* events); it fails
    when the history stops growing for `timeout` s without one (tests/waiting.py)."""
    kinds = {kind, kind.replace("Task", "LambdaFunction")}
    sfn = emulator.client("stepfunctions")
    waiting.wait_for(
        lambda: kinds & set(history_types(emulator, arn)),
        f"{kind} in {arn}",
        observe=lambda: waiting.history_length(sfn, arn),
        quiet_s=timeout,
        interval=0.05,
    )


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


CASES = {
    "wait": (wait_30(), None),
    "pass": ({"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "W"}, **wait_30()["States"]}}, None),
    "choice": (
        {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1,
         "Next": "W"}], "Default": "W"}, **wait_30()["States"]}},
        None,
    ),
    "map": ({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": wait_30(),
             "End": True}}}, "MapIterationStarted"),
    "parallel": ({"StartAt": "B", "States": {"B": {"Type": "Parallel", "Branches": [wait_30()], "End": True}}},
                 "ParallelStateStarted"),
    "task": ({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn("slow"), "End": True}}},
             "TaskStarted"),
    "retry-backoff": (
        {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn("failing"), "End": True,
         "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "MaxAttempts": 3}]}}},
        "TaskFailed",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("when", ["at once", "in the state"])
def test_stop_execution_aborts_at_once_in_every_state_type(emulator: Emulator, case: str, when: str) -> None:
    definition, reached = CASES[case]
    if when == "in the state" and reached is None:
        reached = "WaitStateEntered"  # Pass and Choice take no time: stop once the Wait after them is entered
    sfn = emulator.client("stepfunctions")
    arn = machine(emulator, f"stop-{case}-{when.replace(' ', '-')}", definition)
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"x": 1, "items": [1, 2]}))["executionArn"]
    if when == "in the state":
        wait_for_event(emulator, execution, str(reached))
    answer = sfn.stop_execution(executionArn=execution, error="Stopped", cause="by the test")
    described = sfn.describe_execution(executionArn=execution)  # right after the call: no waiting
    assert described["status"] == "ABORTED", described["status"]
    assert described["stopDate"] == answer["stopDate"]
    # the event follows once the interpreter's thread returns (after a running Lambda invocation: its 6 s)
    wait_for_event(emulator, execution, "ExecutionAborted", timeout=180)
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"  # and stays so
    assert "ExecutionSucceeded" not in history_types(emulator, execution)
    assert not interpreter_errors(emulator)  # the stopped program's pruned states wrote no error lines


def interpreter_errors(emulator: Emulator) -> list[str]:
    """The interpreter's error lines in the emulator's log (moto writes one per component a failure crosses)."""
    text = (emulator.state_dir / "emulator.log").read_text(errors="replace")
    return [line[:200] for line in text.splitlines() if "Exception=" in line or "ended with exception" in line]


def test_a_stop_before_the_first_state_still_closes_the_history(emulator: Emulator) -> None:
    """A stop landing between ExecutionStarted and the first state (moto prunes the program then) still
    ends the history with ExecutionAborted, as every ABORTED execution's does on AWS."""
    sfn = emulator.client("stepfunctions")
    arn = machine(emulator, "stop-before-first-state", wait_30())
    executions = []
    for _ in range(30):  # some stops land before the program's first state, some after: every one is closed
        execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        sfn.stop_execution(executionArn=execution, error="Stopped", cause="at once")
        executions.append(execution)
    for execution in executions:
        wait_for_event(emulator, execution, "ExecutionAborted")
        types = history_types(emulator, execution)
        assert (
            types[0] == "ExecutionStarted" and types[-1] == "ExecutionAborted" and types.count("ExecutionAborted") == 1
        )
    assert not interpreter_errors(emulator)
