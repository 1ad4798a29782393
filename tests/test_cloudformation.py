"""CloudFormation on the emulator: the project's pipeline as a stack, deployed with the AWS CLI.

examples/cloudformation/pipeline.yaml is the same pipeline as terraform/ (the project's
lambda_src code, uploaded by `aws cloudformation package`), deployed with `aws cloudformation
deploy` (change sets), run through `aws stepfunctions start-execution`, updated, and deleted.
tests/cloudformation/resources.yaml covers the other types (the SageMaker variant's, an inline
ZipFile function and its permission, a Definition object) through create-stack / update-stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_support import Cli, alarm_emulator, finished, poll, state_update
from compat import compat
from emulator_support import Emulator, tickets

from scaleorfail.packaging import build_model_bundle

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "examples" / "cloudformation" / "pipeline.yaml"
RESOURCES = ROOT / "tests" / "cloudformation" / "resources.yaml"
STACK = "sof-pipeline"
PARAMETERS = ("SimulatedInferMs=20", "InferJitterSigmaMs=0", "AlarmPeriodSeconds=60", "NamePrefix=sof-cfn")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with alarm_emulator(tmp_path_factory.mktemp("cfn")) as running:
        yield running


@pytest.fixture(scope="module")
def cli(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(emulator, tmp_path_factory.mktemp("cfn-home"))


@pytest.fixture(scope="module")
def packaged(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`aws cloudformation package`: lambda_src zipped into S3, the template rewritten to point at it."""
    cli("s3", "mb", "s3://sof-cfn-packages")
    output = tmp_path_factory.mktemp("packaged") / "pipeline.yaml"
    result = cli.run(
        "cloudformation", "package", "--template-file", str(PIPELINE), "--s3-bucket", "sof-cfn-packages",
        "--output-template-file", str(output),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    text = output.read_text()
    assert "S3Bucket: sof-cfn-packages" in text and "lambda_src" not in text
    return output


def deploy(cli: Cli, template: Path, *parameters: str, extra: tuple[str, ...] = ()) -> Any:
    return cli.run(
        "cloudformation", "deploy", "--template-file", str(template), "--stack-name", STACK,
        "--capabilities", "CAPABILITY_NAMED_IAM", "--parameter-overrides", *parameters, *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(cli: Cli, packaged: Path) -> dict[str, str]:
    result = deploy(cli, packaged, *PARAMETERS)
    assert result.code == 0, result.stderr
    assert "Successfully created/updated stack" in result.stdout
    described = cli("cloudformation", "describe-stacks", "--stack-name", STACK)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    return {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


def start(cli: Cli, arn: str, payload: dict[str, Any], folder: Path) -> str:
    path = folder / f"input-{len(list(folder.iterdir()))}.json"
    path.write_text(json.dumps(payload))
    return str(
        cli("stepfunctions", "start-execution", "--state-machine-arn", arn, "--input", f"file://{path}")["executionArn"]
    )


def moment(value: Any) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# -- the pipeline stack ---------------------------------------------------------------------------


@compat(
    "CloudFormation",
    "CreateChangeSet",
    "ExecuteChangeSet",
    "DescribeChangeSet",
    "DescribeStacks",
    "ListStackResources",
    differences="resources are created at once, in dependency order, without per-resource events",
)
@compat("Step Functions", "ListStateMachines", "DescribeStateMachine")
def test_a_deployed_stack_has_outputs_and_its_resources_are_served_by_the_other_apis(
    cli: Cli, stack: dict[str, str]
) -> None:
    assert set(stack) >= {"StateMachineArn", "EmbedFunctionName", "DashboardName", "AlarmTopicArn"}
    machines = cli("stepfunctions", "list-state-machines")["stateMachines"]
    assert stack["StateMachineArn"] in {m["stateMachineArn"] for m in machines}
    machine = cli("stepfunctions", "describe-state-machine", "--state-machine-arn", stack["StateMachineArn"])
    definition = json.loads(machine["definition"])
    assert definition["States"]["DefaultMaxConcurrency"]["Result"] == 2  # DefinitionSubstitutions
    embed_task = definition["States"]["ProcessTickets"]["ItemProcessor"]["States"]["Embed"]
    assert embed_task["Parameters"]["FunctionName"] == stack["EmbedFunctionArn"]  # Fn::Sub
    assert embed_task["Retry"][0]["MaxAttempts"] == 6
    assert machine["loggingConfiguration"]["level"] == "ALL"
    function = cli("lambda", "get-function-configuration", "--function-name", stack["EmbedFunctionName"])
    assert function["Handler"] == "pipeline.embed.handler" and function["MemorySize"] == 256
    assert function["Environment"]["Variables"]["SIMULATED_INFER_MS"] == "20"  # numbers become strings
    dashboard = cli("cloudwatch", "get-dashboard", "--dashboard-name", stack["DashboardName"])
    assert len(json.loads(dashboard["DashboardBody"])["widgets"]) == 4
    groups = {
        g["logGroupName"]: g for g in cli("logs", "describe-log-groups", "--log-group-name-prefix", "/aws")["logGroups"]
    }
    assert groups[f"/aws/lambda/{stack['EmbedFunctionName']}"]["retentionInDays"] == 7
    alarms = cli("cloudwatch", "describe-alarms", "--alarm-name-prefix", "sof-cfn-")["MetricAlarms"]
    assert {a["AlarmName"] for a in alarms} == {
        "sof-cfn-embed-throttles",
        "sof-cfn-executions-failed",
        "sof-cfn-embed-p95-duration",
    }
    resources = cli("cloudformation", "list-stack-resources", "--stack-name", STACK)["StackResourceSummaries"]
    assert {r["ResourceStatus"] for r in resources} == {"CREATE_COMPLETE"} and len(resources) == 16


def peak_concurrency(cli: Cli, function: str, start: datetime, stop: datetime) -> float:
    answer = cli(
        "cloudwatch", "get-metric-statistics", "--namespace", "AWS/Lambda", "--metric-name", "ConcurrentExecutions",
        "--dimensions", f"Name=FunctionName,Value={function}", "--statistics", "Maximum", "--period", "1",
        "--start-time", start.isoformat(), "--end-time", (stop + timedelta(seconds=1)).isoformat(),
    )  # fmt: skip
    return max(float(d["Maximum"]) for d in answer["Datapoints"])


@compat("Step Functions", "StartExecution", "DescribeExecution")
@compat("CloudWatch", "GetMetricStatistics")
@pytest.mark.parametrize("concurrency", [2, 10])
def test_the_stack_runs_a_40_ticket_batch_at_the_map_concurrency_asked(
    cli: Cli, emulator: Emulator, stack: dict[str, str], tmp_path: Path, concurrency: int
) -> None:
    arn = start(cli, stack["StateMachineArn"], {"tickets": tickets(40), "max_concurrency": concurrency}, tmp_path)
    finished(emulator.client("stepfunctions"), arn)
    done = cli("stepfunctions", "describe-execution", "--execution-arn", arn)
    assert done["status"] == "SUCCEEDED"
    results = json.loads(done["output"])["results"]
    assert [r["ticket_id"] for r in results] == [f"T-{i:04d}" for i in range(40)]
    assert [r["route"] for r in results[:4]] == ["billing", "delivery", "technical", "cancellation"]
    assert {r["priority"] for r in results[:2]} == {"P1"}
    peak = peak_concurrency(cli, stack["EmbedFunctionName"], moment(done["startDate"]), moment(done["stopDate"]))
    assert peak <= concurrency
    assert peak >= (2 if concurrency == 2 else 3)  # the knob is used, and 10 runs more than 2 at once


@compat("Step Functions", "StartExecution", "GetExecutionHistory")
@compat("CloudWatch", "DescribeAlarmHistory", differences="alarms of a stack evaluate like any other")
def test_a_bad_input_execution_fails_in_preprocess_and_the_stack_alarm_fires(
    cli: Cli, emulator: Emulator, stack: dict[str, str], tmp_path: Path
) -> None:
    bad = {"tickets": [*tickets(1), {"ticket_id": "T-BIG", "text": "x" * 5100}], "max_concurrency": 2}
    arn = start(cli, stack["StateMachineArn"], bad, tmp_path)
    finished(emulator.client("stepfunctions"), arn)
    done = cli("stepfunctions", "describe-execution", "--execution-arn", arn)
    assert done["status"] == "FAILED" and done["error"] == "PayloadTooLarge"
    assert "5100 characters" in json.loads(done["cause"])["errorMessage"]
    events = cli("stepfunctions", "get-execution-history", "--execution-arn", arn)["events"]
    failed = [e for e in events if e["type"] == "TaskFailed"]
    assert failed and failed[0]["taskFailedEventDetails"]["error"] == "PayloadTooLarge"

    # the alarm is in ALARM for the minute of the failure only: its history keeps the change
    since = moment(done["startDate"])
    poll(
        lambda: state_update(emulator, "sof-cfn-executions-failed", "ALARM", since), what="the executions-failed alarm"
    )
    history = cli("cloudwatch", "describe-alarm-history", "--alarm-name", "sof-cfn-executions-failed")
    summaries = [h["HistorySummary"] for h in history["AlarmHistoryItems"]]
    assert any(s.endswith("to ALARM") for s in summaries)
    assert f"Successfully executed action {stack['AlarmTopicArn']}" in summaries


@compat("CloudFormation", "CreateChangeSet", "ExecuteChangeSet", differences="a no-change deploy is reported as on AWS")
def test_a_second_deploy_updates_the_stack_through_a_change_set(
    cli: Cli, emulator: Emulator, stack: dict[str, str], packaged: Path, tmp_path: Path
) -> None:
    result = deploy(cli, packaged, *PARAMETERS, "DefaultMaxConcurrency=3")
    assert result.code == 0, result.stderr
    described = cli("cloudformation", "describe-stacks", "--stack-name", STACK)["Stacks"][0]
    assert described["StackStatus"] == "UPDATE_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]} == stack
    arn = start(cli, stack["StateMachineArn"], {"tickets": tickets(2)}, tmp_path)
    finished(emulator.client("stepfunctions"), arn)
    events = cli("stepfunctions", "get-execution-history", "--execution-arn", arn)["events"]
    passed = [e for e in events if e["type"] == "PassStateExited"]
    assert json.loads(passed[0]["stateExitedEventDetails"]["output"])["max_concurrency"] == 3
    again = deploy(cli, packaged, *PARAMETERS, "DefaultMaxConcurrency=3", extra=("--no-fail-on-empty-changeset",))
    assert again.code == 0 and "No changes to deploy" in again.stdout


@compat("CloudFormation", "DeleteStack", differences="DeleteStack completes before it answers")
def test_delete_stack_removes_every_resource(cli: Cli, stack: dict[str, str]) -> None:
    cli("cloudformation", "delete-stack", "--stack-name", STACK)
    cli("cloudformation", "wait", "stack-delete-complete", "--stack-name", STACK)
    assert stack["StateMachineArn"] not in json.dumps(cli("stepfunctions", "list-state-machines"))
    assert not [f for f in cli("lambda", "list-functions")["Functions"] if f["FunctionName"].startswith("sof-cfn-")]
    assert cli("cloudwatch", "describe-alarms", "--alarm-name-prefix", "sof-cfn-")["MetricAlarms"] == []
    assert cli("cloudwatch", "list-dashboards", "--dashboard-name-prefix", "sof-cfn-")["DashboardEntries"] == []
    assert cli("logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/sof-cfn-")["logGroups"] == []
    assert not [r for r in cli("iam", "list-roles")["Roles"] if r["RoleName"].startswith("sof-cfn-")]


# -- the other resource types, through CreateStack / UpdateStack ------------------------------------


@compat(
    "CloudFormation",
    "CreateStack",
    "UpdateStack",
    "DeleteStack",
    client="boto3",
    differences="types: IAM Role/Policy, Lambda Function (ZipFile, S3) and Permission, StepFunctions StateMachine, "
    "Logs LogGroup, CloudWatch Dashboard and Alarm, S3 Bucket, SNS Topic, SageMaker Model/EndpointConfig/Endpoint "
    "and moto's other types; an unrecognized type fails the request",
)
@compat("Lambda", "Invoke", "GetPolicy")
@compat("SageMaker Runtime", "InvokeEndpoint")
def test_create_stack_with_the_sagemaker_variant_types_an_inline_function_and_a_definition_object(
    cli: Cli, emulator: Emulator, tmp_path: Path
) -> None:
    cloudformation = emulator.client("cloudformation")
    body = RESOURCES.read_text()
    cloudformation.create_stack(StackName="sof-resources", TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
    cloudformation.get_waiter("stack_create_complete").wait(StackName="sof-resources", WaiterConfig={"Delay": 1})
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="sof-resources")["Stacks"][0]["Outputs"]
    }
    out = tmp_path / "out.json"
    cli("lambda", "invoke", "--function-name", outputs["FunctionArn"], "--payload", '{"name": "Ada"}',
        str(out))  # fmt: skip
    assert json.loads(out.read_text()) == {"greeting": "hello", "attempts": "3", "name": "Ada"}
    policy = json.loads(cli("lambda", "get-policy", "--function-name", "sof-cfn-greeter")["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    arn = emulator.client("stepfunctions").start_execution(stateMachineArn=outputs["StateMachineArn"])["executionArn"]
    flow = finished(emulator.client("stepfunctions"), arn)
    assert flow["status"] == "SUCCEEDED" and json.loads(flow["output"])["name"] == "world"

    bundle = build_model_bundle(ROOT / "lambda_src", tmp_path / "model.tar.gz")
    cli("s3", "cp", str(bundle.path), f"s3://{outputs['BucketName']}/model/model.tar.gz")
    config = emulator.client("sagemaker").describe_endpoint_config(EndpointConfigName="sof-cfn-embed-config")
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {"MaxConcurrency": 2, "MemorySizeInMB": 1024}
    ticket = json.dumps(tickets(1)[0])
    cli("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", outputs["EndpointName"], "--body", ticket,
        "--content-type", "application/json", str(out))  # fmt: skip
    assert json.loads(out.read_text())["route"] == "billing"

    cloudformation.update_stack(
        StackName="sof-resources",
        TemplateBody=body,
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": "Greeting", "ParameterValue": "bonjour"}],
    )
    cloudformation.get_waiter("stack_update_complete").wait(StackName="sof-resources", WaiterConfig={"Delay": 1})
    answer = emulator.client("lambda").invoke(FunctionName="sof-cfn-greeter", Payload=b"{}")
    assert json.loads(answer["Payload"].read())["greeting"] == "bonjour"

    cloudformation.delete_stack(StackName="sof-resources")
    cloudformation.get_waiter("stack_delete_complete").wait(StackName="sof-resources", WaiterConfig={"Delay": 1})
    assert emulator.client("sagemaker").list_endpoints()["Endpoints"] == []
    assert "sof-cfn-greeter" not in json.dumps(emulator.client("lambda").list_functions())


@compat("CloudFormation", "CreateStack", "DescribeStackEvents", client="boto3")
def test_a_failing_or_unrecognized_resource_is_reported_as_aws_reports_it(emulator: Emulator) -> None:
    from botocore.exceptions import ClientError

    cloudformation = emulator.client("cloudformation")
    unknown = {"Resources": {"Thing": {"Type": "AWS::Nothing::Here", "Properties": {}}}}
    with pytest.raises(ClientError) as raised:
        cloudformation.create_stack(StackName="sof-unknown", TemplateBody=json.dumps(unknown))
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "Unrecognized resource types: [AWS::Nothing::Here]" in raised.value.response["Error"]["Message"]

    broken = {
        "Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/sof/rollback"}},
            "Function": {
                "Type": "AWS::Lambda::Function",
                "DependsOn": "Logs",
                "Properties": {
                    "FunctionName": "sof-broken",
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": "arn:aws:iam::123456789012:role/none",
                    "Code": {"S3Bucket": "sof-no-such-bucket", "S3Key": "code.zip"},
                },
            },
        }
    }
    cloudformation.create_stack(StackName="sof-broken", TemplateBody=json.dumps(broken))
    stack = poll(
        lambda: [
            s
            for s in cloudformation.describe_stacks(StackName="sof-broken")["Stacks"]
            if s["StackStatus"].endswith("COMPLETE")
        ],
        what="the rollback",
    )[0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    events = cloudformation.describe_stack_events(StackName="sof-broken")["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed and "NoSuchBucket" in failed[0]["ResourceStatusReason"]
    assert emulator.client("logs").describe_log_groups(logGroupNamePrefix="/sof/rollback")["logGroups"] == []


def test_requests_racing_to_be_cloudformations_first_all_meet_its_extensions(tmp_path: Path) -> None:
    """The CloudFormation extensions are installed on the service's first request (its moto models are
    slow to import): requests that arrive together, first, each wait for them - none is served by
    moto's unextended CloudFormation, which would accept a type AWS does not have."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import ClientError
    from emulator_support import running_emulator

    unknown = json.dumps({"Resources": {"Thing": {"Type": "AWS::Nothing::Here", "Properties": {}}}})
    with running_emulator(tmp_path / "state") as fresh:
        clients = [fresh.client("cloudformation") for _ in range(6)]

        def create(number: int) -> str:
            try:
                clients[number].create_stack(StackName=f"sof-race-{number}", TemplateBody=unknown)
            except ClientError as error:
                return str(error.response["Error"]["Message"])
            return "created"

        with ThreadPoolExecutor(len(clients)) as pool:
            answers = list(pool.map(create, range(len(clients))))
        assert answers == ["Template format error: Unrecognized resource types: [AWS::Nothing::Here]"] * 6
        assert clients[0].list_stacks()["StackSummaries"] == []
