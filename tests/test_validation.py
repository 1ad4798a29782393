"""Requests AWS rejects are rejected here too, as AWS rejects them: validated against the botocore model
of the operation, bodies capped at AWS's limits, a client mistake never a 500."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError
from compat import compat
from emulator_support import Emulator, running_emulator

from scaleorfail.emulator.shapes import Checker

ROLE = "arn:aws:iam::123456789012:role/lambda"
SIGNED = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("validation")) as running:
        yield running


def post(
    emulator: Emulator, path: str, body: bytes, signing: str, headers: dict[str, str] | None = None
) -> tuple[int, Message, bytes]:
    """A request as any HTTP client sends it (botocore would refuse to send the bad ones itself); the
    answer's headers are looked up as HTTP names them, whatever their case (AWS over HTTP/2 sends them
    lower-case; the emulator's server capitalises them)."""
    request = urllib.request.Request(
        emulator.url + path,
        data=body,
        headers={"Authorization": SIGNED.format(signing), **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def json_call(emulator: Emulator, signing: str, target: str, document: Any, version: str = "1.0") -> tuple[int, Any]:
    status, _, body = post(
        emulator,
        "/",
        json.dumps(document).encode(),
        signing,
        {"Content-Type": f"application/x-amz-json-{version}", "X-Amz-Target": target},
    )
    return status, json.loads(body)


@compat("Step Functions", "StartExecution", client="HTTP (urllib)")
@pytest.mark.parametrize(
    ("document", "code", "says"),
    [
        ({}, "ValidationException", "Value null at 'stateMachineArn' failed to satisfy constraint: Member must not"),
        ({"stateMachineArn": 5}, "SerializationException", "NUMBER_VALUE can not be converted to a String at 'state"),
        ({"stateMachineArn": "a" * 300}, "ValidationException", "'stateMachineArn' failed to satisfy constraint: "),
    ],
)
def test_step_functions_refuses_what_its_model_refuses(emulator: Emulator, document: Any, code: str, says: str) -> None:
    status, answer = json_call(emulator, "states", "AWSStepFunctions.StartExecution", document)
    assert status == 400 and answer["__type"] == code and says in answer["message"], answer


@compat(
    "CloudWatch Logs",
    "DescribeLogGroups",
    client="HTTP (urllib)",
    differences="a SerializationException names the member (AWS's does not)",
)
def test_logs_refuses_a_string_limit_and_a_limit_out_of_range(emulator: Emulator) -> None:
    target = "Logs_20140328.DescribeLogGroups"
    status, answer = json_call(emulator, "logs", target, {"limit": "x"}, "1.1")
    assert status == 400 and answer["__type"] == "SerializationException" and "'limit'" in answer["message"]
    status, answer = json_call(emulator, "logs", target, {"limit": 51}, "1.1")
    assert status == 400 and answer["__type"] == "InvalidParameterException", answer
    assert "Member must have value less than or equal to 50" in answer["message"]
    status, answer = json_call(emulator, "logs", target, {"limit": 5}, "1.1")
    assert status == 200 and "logGroups" in answer


@compat("Lambda", "CreateFunction", client="HTTP (urllib)")
@pytest.mark.parametrize(
    ("document", "code", "says"),
    [
        ([1], "InvalidParameterValueException", "JSON object"),
        ({}, "ValidationException", "Value null at 'functionName'"),
        (
            {"FunctionName": "f", "Role": ROLE, "Runtime": "python3.12", "Handler": "h.h", "Code": {"ZipFile": "!!"}},
            "InvalidParameterValueException",
            "'code.zipFile' is not valid base64",
        ),
        (
            {"FunctionName": "f f", "Role": ROLE, "Runtime": "cobol", "Handler": "h.h", "Code": {"ZipFile": ""}},
            "ValidationException",
            "satisfy enum value set",
        ),
    ],
)
def test_lambda_create_function_refuses_bad_requests(emulator: Emulator, document: Any, code: str, says: str) -> None:
    status, headers, body = post(
        emulator, "/2015-03-31/functions", json.dumps(document).encode(), "lambda", {"Content-Type": "application/json"}
    )
    answer = json.loads(body)
    assert status == 400 and headers["x-amzn-ErrorType"] == code and says in answer["message"], answer
    assert emulator.client("lambda").list_functions()["Functions"] == []


@pytest.fixture(scope="module")
def function(emulator: Emulator) -> str:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("h.py", "def h(event, context):\n    return {'got': len(str(event))}\n")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
    emulator.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument=json.dumps(trust))
    lam = emulator.client("lambda")
    lam.create_function(
        FunctionName="echo", Runtime="python3.12", Role=ROLE, Handler="h.h", Code={"ZipFile": buffer.getvalue()}
    )
    return "echo"


@compat("Lambda", "Invoke", client="boto3")
def test_invoke_bodies_are_capped_at_lambdas_limits_and_must_be_json(emulator: Emulator, function: str) -> None:
    lam = boto3.client(
        "lambda",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )
    before = health_rss(emulator)
    big = b'"' + b"x" * (100 * MB) + b'"'
    for invocation, payload, limit, operation in (
        ("RequestResponse", big, 6291456, "InvokeFunction"),
        ("Event", b'"' + b"x" * (1100 * 1024) + b'"', 1048576, "InvokeAsync"),
    ):
        with pytest.raises(ClientError) as refused:
            lam.invoke(FunctionName=function, InvocationType=invocation, Payload=payload)
        error = refused.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
        assert error["Error"]["Code"] == "RequestEntityTooLargeException"
        assert error["Error"]["Message"] == f"Request must be smaller than {limit} bytes for the {operation} operation"
    assert health_rss(emulator) < before + 50 * MB  # the 100 MB body was never read into the emulator
    # just under the limit still runs
    fits = b'"' + b"x" * (6 * MB - 100) + b'"'
    assert json.loads(lam.invoke(FunctionName=function, Payload=fits)["Payload"].read())["got"] > 6_000_000
    with pytest.raises(ClientError) as refused:
        lam.invoke(FunctionName=function, Payload=b"{not json")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Code"] == "InvalidRequestContentException"


def health_rss(emulator: Emulator) -> int:
    import psutil

    with urllib.request.urlopen(f"{emulator.url}/_sof/health", timeout=10) as answer:
        pid = json.loads(answer.read())["pid"]
    return int(psutil.Process(pid).memory_info().rss)


@compat("Lambda", "Invoke", client="HTTP (urllib)")
def test_a_form_content_type_gets_lambdas_json_errors_not_an_html_page(emulator: Emulator, function: str) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers, body = post(emulator, "/2015-03-31/functions/missing/invocations", b"{}", "lambda", form)
    assert status == 404 and headers["Content-Type"].startswith("application/json"), (headers, body[:300])
    assert json.loads(body)["message"].startswith("Function not found")
    status, headers, body = post(emulator, f"/2015-03-31/functions/{function}/invocations", b"a=1", "lambda", form)
    assert status == 400 and headers["x-amzn-ErrorType"] == "InvalidRequestContentException", body[:300]
    status, headers, body = post(emulator, f"/2015-03-31/functions/{function}/invocations", b"{}", "lambda", form)
    assert status == 200 and json.loads(body) == {"got": 2}


@compat("CloudFormation", "CreateStack", client="HTTP (urllib)")
def test_query_protocol_errors_are_xml_as_the_sdks_read_them(emulator: Emulator) -> None:
    cfn = boto3.client(
        "cloudformation", endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id="t",
        aws_secret_access_key="t",
    )  # fmt: skip
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName="s", TemplateBody="{}", OnFailure="NOPE")  # botocore checks no enums itself
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationError" and "Value 'NOPE' at 'onFailure'" in error["Message"], error
    assert "Member must satisfy enum value set: [DO_NOTHING, ROLLBACK, DELETE]" in error["Message"]


@compat("Step Functions", "CreateStateMachine", client="HTTP (urllib)")
def test_step_functions_bodies_are_capped_at_its_one_mb_request_limit(emulator: Emulator) -> None:
    document = {"name": "big", "roleArn": ROLE, "definition": "x" * (1 * MB + 10)}
    status, answer = json_call(emulator, "states", "AWSStepFunctions.CreateStateMachine", document)
    assert status == 413 and answer["__type"] == "RequestEntityTooLargeException", answer


# -- the engine without a server ---------------------------------------------------------------------------
def shape(service: str, operation: str) -> Any:
    return botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape


@pytest.mark.parametrize(
    ("service", "operation", "request_", "found"),
    [
        ("stepfunctions", "ListExecutions", {"stateMachineArn": "a", "statusFilter": "DONE"}, "enum value set"),
        ("stepfunctions", "ListExecutions", {"maxResults": 1001}, "less than or equal to 1000"),
        ("stepfunctions", "ListExecutions", {"maxResults": True}, "BOOLEAN_VALUE can not be converted"),
        ("logs", "PutLogEvents", {"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": 1}]},
         "Value null at 'logEvents.1.member.message'"),
        ("lambda", "Invoke", {"FunctionName": "has space"}, "regular expression pattern"),
        ("stepfunctions", "StartExecution", {"stateMachineArn": "a", "input": "x" * 262145}, "Value '***' at 'input'"),
    ],
)  # fmt: skip
def test_the_checker_reports_each_constraint_as_aws_words_it(
    service: str, operation: str, request_: dict[str, Any], found: str
) -> None:
    problems = Checker("wire").check_request(request_, shape(service, operation))
    assert any(found in problem.message for problem in problems), problems


def test_the_checker_finds_nothing_wrong_in_valid_requests() -> None:
    valid = {"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:x", "input": "{}", "name": "n"}
    assert Checker("wire").check_request(valid, shape("stepfunctions", "StartExecution")) == []
    events = {"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": 1, "message": "m"}]}
    assert Checker("wire").check_request(events, shape("logs", "PutLogEvents")) == []


def test_every_served_services_model_loads_and_the_limits_name_real_operations() -> None:
    from scaleorfail.emulator import validation

    for service, operation in validation.LIMITS:
        model = botocore.session.get_session().get_service_model(service)
        assert operation == "*" or operation in model.operation_names, (service, operation)


# -- state machine definitions -------------------------------------------------------------------------------
BAD_DEFINITIONS = [
    ({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": True}}},
     "MISSING_TRANSITION_TARGET: Missing 'StartAt' target: Nope at /StartAt"),
    ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Gone"}}},
     "MISSING_TRANSITION_TARGET: Missing 'Next' target: Gone at /States/A/Next"),
    ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}},
     "MISSING_END_STATE: Workflow has no terminal state at /"),
    ({"StartAt": "A", "States": {"A": {"Next": "A"}}}, "SCHEMA_VALIDATION_FAILED: The field 'Type' should be non-null"),
    ({"StartAt": "M", "States": {"M": {"Type": "Map", "End": True, "ItemProcessor": {"StartAt": "X", "States": {
        "X": {"Type": "Pass", "Next": "Y"}}}}}},
     "MISSING_TRANSITION_TARGET: Missing 'Next' target: Y at /States/M/ItemProcessor/States/X/Next"),
    ({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1,
        "Next": "Done"}], "Default": "Nowhere"}, "Done": {"Type": "Succeed"}}},
     "MISSING_TRANSITION_TARGET: Missing 'Default' target: Nowhere at /States/C/Default"),
]  # fmt: skip


@compat("Step Functions", "CreateStateMachine", "UpdateStateMachine", client="boto3")
@pytest.mark.parametrize(("definition", "says"), BAD_DEFINITIONS)
def test_a_definition_whose_states_do_not_hold_together_is_refused_with_aws_diagnostics(
    emulator: Emulator, definition: dict[str, Any], says: str
) -> None:
    sfn = emulator.client("stepfunctions")
    with pytest.raises(ClientError) as refused:
        sfn.create_state_machine(name="bad", definition=json.dumps(definition), roleArn=ROLE)
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidDefinition" and error["Message"].startswith("Invalid State Machine Definition: ")
    assert says in error["Message"], error["Message"]
    good = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    arn = sfn.create_state_machine(name="good", definition=good, roleArn=ROLE)["stateMachineArn"]
    try:
        with pytest.raises(ClientError) as refused:
            sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))
        assert refused.value.response["Error"]["Code"] == "InvalidDefinition"
        assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == json.loads(good)
    finally:
        sfn.delete_state_machine(stateMachineArn=arn)
    assert [m["name"] for m in sfn.list_state_machines()["stateMachines"]] == []


def test_a_stack_with_a_bad_definition_fails_with_the_same_diagnostics(emulator: Emulator) -> None:
    definition = json.dumps(BAD_DEFINITIONS[1][0])
    template = {"Resources": {"SM": {"Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"RoleArn": ROLE, "DefinitionString": definition}}}}  # fmt: skip
    cfn = emulator.client("cloudformation")
    with pytest.raises((ClientError, WaiterError)) as refused:
        cfn.create_stack(StackName="badsm", TemplateBody=json.dumps(template))
        cfn.get_waiter("stack_create_complete").wait(StackName="badsm", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    text = str(refused.value) + json.dumps(cfn.describe_stack_events(StackName="badsm")["StackEvents"], default=str)
    assert "MISSING_TRANSITION_TARGET: Missing 'Next' target: Gone at /States/A/Next" in text
    assert emulator.client("stepfunctions").list_state_machines()["stateMachines"] == []


def test_the_emulator_log_names_the_requests_answered_with_an_error_only(emulator: Emulator) -> None:
    target = "Logs_20140328.DescribeLogGroups"
    assert json_call(emulator, "logs", target, {"limit": 5}, "1.1")[0] == 200
    assert json_call(emulator, "logs", target, {"limit": 51}, "1.1")[0] == 400
    log = (emulator.state_dir / "emulator.log").read_text()
    statuses = [int(code) for code in re.findall(r'"[A-Z]+ \S+ HTTP/1\.1" (\d{3})', log)]
    assert 400 in statuses and min(statuses) >= 400, statuses  # every request of the module logged an error
