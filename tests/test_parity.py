"""Parity: what `sof deploy --target local` creates is what terraform/ declares.

The root module is evaluated independently (as `terraform plan` would) and every
declared resource is read back from the emulator through the AWS APIs and compared,
so the local target can never drift from the Terraform definition silently.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_support import Emulator, run, running_emulator
from waiting import wait_for

from scaleorfail.deploy import local
from scaleorfail.target import read_outputs_file
from scaleorfail.tf.aws import AwsModel
from scaleorfail.tf.instance import ResourceInstance, load_tfvars, root_instance

pytestmark = pytest.mark.slow
TERRAFORM = Path(__file__).resolve().parent.parent / "terraform"
EXAMPLES = TERRAFORM.parent / "examples"
TFVARS = """
embed_memory_mb            = 512
embed_timeout_seconds      = 9
default_max_concurrency    = 5
embed_reserved_concurrency = 7
bad_input_policy           = "quarantine"
log_retention_days         = 14
simulated_infer_ms         = 120
lambda_retry               = { max_attempts = 3, jitter_strategy = "NONE" }
tags                       = { Owner = "parity-test" }
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, dict[str, Any], Path]]:
    state = tmp_path_factory.mktemp("parity")
    tfvars = state / "lab.tfvars"
    tfvars.write_text(TFVARS)
    with running_emulator(state) as emulator:
        result = local.deploy(emulator.target, tfvars)
        yield emulator, result.outputs, tfvars


def declared(tfvars: Path, **extra: Any) -> list[ResourceInstance]:
    model = AwsModel(root_dir=str(TERRAFORM))
    root = root_instance(str(TERRAFORM), model, {**load_tfvars(str(tfvars)), **extra})
    return [i for i in root.instances() if i.mode == "managed"]


def of_type(instances: list[ResourceInstance], rtype: str) -> list[ResourceInstance]:
    found = [i for i in instances if i.type == rtype]
    assert found, f"terraform/ declares no {rtype}"
    return found


def test_functions_match_the_declaration(deployed: tuple[Emulator, dict[str, Any], Path]) -> None:
    emulator, _, tfvars = deployed
    lam = emulator.client("lambda")
    for inst in of_type(declared(tfvars), "aws_lambda_function"):
        args = inst.args
        config = lam.get_function_configuration(FunctionName=args["function_name"])
        assert config["Runtime"] == args["runtime"]
        assert config["Handler"] == args["handler"]
        assert config["MemorySize"] == args["memory_size"]
        assert config["Timeout"] == args["timeout"]
        assert config["Role"] == args["role"]
        assert config["Environment"]["Variables"] == args["environment"][0]["variables"]
        code = (TERRAFORM / args["filename"]).read_bytes()
        assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
        assert config["CodeSha256"] == args["source_code_hash"]  # the archive_file hash terraform would use
        reserved = lam.get_function_concurrency(FunctionName=args["function_name"]).get("ReservedConcurrentExecutions")
        expected = args["reserved_concurrent_executions"]
        assert reserved == (None if expected == -1 else expected)
    embed = lam.get_function_configuration(FunctionName="scale-or-fail-embed")
    assert (embed["MemorySize"], embed["Timeout"]) == (512, 9)  # the tfvars file was honoured


def test_state_machine_is_the_rendered_template(deployed: tuple[Emulator, dict[str, Any], Path]) -> None:
    emulator, outputs, tfvars = deployed
    (inst,) = of_type(declared(tfvars), "aws_sfn_state_machine")
    described = emulator.client("stepfunctions").describe_state_machine(stateMachineArn=outputs["state_machine_arn"])
    assert json.loads(described["definition"]) == json.loads(inst.args["definition"])
    assert described["roleArn"] == inst.args["role_arn"]
    assert described["loggingConfiguration"]["level"] == inst.args["logging_configuration"][0]["level"]
    definition = json.loads(described["definition"])
    assert definition["States"]["DefaultMaxConcurrency"]["Result"] == 5
    assert "Quarantine" in definition["States"]["ProcessTickets"]["ItemProcessor"]["States"]


def test_log_groups_roles_and_policies_match(deployed: tuple[Emulator, dict[str, Any], Path]) -> None:
    emulator, _, tfvars = deployed
    instances = declared(tfvars)
    logs, iam = emulator.client("logs"), emulator.client("iam")
    for inst in of_type(instances, "aws_cloudwatch_log_group"):
        (group,) = logs.describe_log_groups(logGroupNamePrefix=inst.args["name"])["logGroups"]
        assert group["logGroupName"] == inst.args["name"]
        assert group["retentionInDays"] == inst.args["retention_in_days"] == 14
    for inst in of_type(instances, "aws_iam_role"):
        role = iam.get_role(RoleName=inst.args["name"])["Role"]
        document = role["AssumeRolePolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        assert document == json.loads(inst.args["assume_role_policy"])
    for inst in of_type(instances, "aws_iam_role_policy"):
        policy = iam.get_role_policy(RoleName=inst.args["role"], PolicyName=inst.args["name"])["PolicyDocument"]
        policy = json.loads(policy) if isinstance(policy, str) else policy
        assert policy == json.loads(inst.args["policy"])


def test_dashboard_alarms_and_saved_queries_match(deployed: tuple[Emulator, dict[str, Any], Path]) -> None:
    emulator, _, tfvars = deployed
    instances = declared(tfvars)
    cloudwatch, logs = emulator.client("cloudwatch"), emulator.client("logs")
    (dashboard,) = of_type(instances, "aws_cloudwatch_dashboard")
    body = cloudwatch.get_dashboard(DashboardName=dashboard.args["dashboard_name"])["DashboardBody"]
    assert json.loads(body) == json.loads(dashboard.args["dashboard_body"])
    for inst in of_type(instances, "aws_cloudwatch_metric_alarm"):
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[inst.args["alarm_name"]])["MetricAlarms"]
        assert alarm["MetricName"] == inst.args["metric_name"]
        assert alarm["Namespace"] == inst.args["namespace"]
        assert alarm["Threshold"] == inst.args["threshold"]
        assert alarm["ComparisonOperator"] == inst.args["comparison_operator"]
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == inst.args["dimensions"]
        assert alarm.get("ExtendedStatistic", alarm.get("Statistic")) == inst.args.get(
            "extended_statistic", inst.args.get("statistic")
        )
    saved = {q["name"]: q for q in logs.describe_query_definitions()["queryDefinitions"]}
    for inst in of_type(instances, "aws_cloudwatch_query_definition"):
        query = saved[inst.args["name"]]
        assert query["queryString"] == inst.args["query_string"]
        assert query["logGroupNames"] == inst.args["log_group_names"]


def test_stack_outputs_have_the_terraform_keys_and_values(deployed: tuple[Emulator, dict[str, Any], Path]) -> None:
    emulator, outputs, tfvars = deployed
    model = AwsModel(root_dir=str(TERRAFORM))
    expected = root_instance(str(TERRAFORM), model, load_tfvars(str(tfvars))).outputs()
    stored = read_outputs_file("local")
    assert stored is not None and stored["target"] == "local" and stored["endpoint_url"] == emulator.url
    assert stored["outputs"] == expected == outputs
    declared_keys = set(root_instance(str(TERRAFORM), model).config.outputs)
    assert set(stored["outputs"]) == declared_keys


def test_redeploy_updates_in_place_and_removes_what_is_gone(deployed: tuple[Emulator, dict[str, Any], Path]) -> None:
    emulator, _, tfvars = deployed
    lam, sns = emulator.client("lambda"), emulator.client("sns")
    functions_before = len(lam.list_functions()["Functions"])
    result = local.deploy(emulator.target, tfvars, {"embed_memory_mb": 1024, "alarm_email": "oncall@example.com"})
    assert lam.get_function_configuration(FunctionName="scale-or-fail-embed")["MemorySize"] == 1024
    assert len(lam.list_functions()["Functions"]) == functions_before
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [
        a.id for a in result.applied if a.type == "aws_sns_topic"
    ]
    local.deploy(emulator.target, tfvars)
    assert sns.list_topics()["Topics"] == []
    assert lam.get_function_configuration(FunctionName="scale-or-fail-embed")["MemorySize"] == 512


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.tfvars")), ids=lambda p: p.stem)
def test_every_example_deploys_as_declared(example: Path, deployed: tuple[Emulator, dict[str, Any], Path]) -> None:
    """Each examples/*.tfvars variant applies to the emulator and matches what terraform/ declares for it."""
    emulator, _, _ = deployed
    result = local.deploy(emulator.target, example)
    instances = declared(example)
    (machine,) = of_type(instances, "aws_sfn_state_machine")
    sfn = emulator.client("stepfunctions")
    described = sfn.describe_state_machine(stateMachineArn=result.outputs["state_machine_arn"])
    assert json.loads(described["definition"]) == json.loads(machine.args["definition"])
    assert described["loggingConfiguration"]["includeExecutionData"] is False  # ticket text stays out of the log
    lam = emulator.client("lambda")
    for inst in of_type(instances, "aws_lambda_function"):
        config = lam.get_function_configuration(FunctionName=inst.args["function_name"])
        assert (config["MemorySize"], config["Timeout"]) == (inst.args["memory_size"], inst.args["timeout"])
    names = {m["name"] for m in sfn.list_state_machines()["stateMachines"]}
    assert names == {machine.args["name"]}  # the previous variant's stack was replaced, not left beside it
    if "sagemaker" in example.stem:
        (endpoint,) = of_type(instances, "aws_sagemaker_endpoint")
        assert result.outputs["embed_endpoint_name"] == endpoint.args["name"]


def _log_messages(emulator: Emulator, group: str, needle: str) -> list[str]:
    """The execution log's events for the execution whose ARN contains needle, once its end is logged."""
    logs = emulator.client("logs")

    def mine() -> list[str]:
        return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"] if needle in e["message"]]

    def ended() -> list[str] | None:
        found = mine()
        return found if any('"ExecutionSucceeded"' in m for m in found) else None

    return list(wait_for(ended, f"ExecutionSucceeded of {needle} in {group}", observe=lambda: len(mine())))


def test_ticket_text_reaches_the_execution_log_only_when_asked(deployed: tuple[Emulator, dict[str, Any], Path]) -> None:
    """include_execution_data is off by default: the log keeps event types and errors, not the tickets' text."""
    emulator, _, tfvars = deployed
    marker = "quokka-zebra-marker"
    ticket = {"ticket_id": "T-LOG", "text": f"My parcel never arrived {marker}"}
    for include in (False, True):
        outputs = local.deploy(emulator.target, tfvars, {"state_machine_include_execution_data": include}).outputs
        done = run(emulator, outputs, {"tickets": [ticket], "max_concurrency": 1})
        assert done["status"] == "SUCCEEDED"
        name = done["executionArn"].rsplit(":", 1)[1]
        messages = _log_messages(emulator, outputs["log_group_names"]["state_machine"], name)
        assert any('"TaskSucceeded"' in m for m in messages), messages[:3]
        assert any(marker in m for m in messages) is include


def test_destroy_removes_everything_and_verifies_it(deployed: tuple[Emulator, dict[str, Any], Path]) -> None:
    from scaleorfail.usecases.deploy import leftover_resources

    emulator, _, _ = deployed
    assert leftover_resources(emulator.target)  # something to remove
    removed = local.destroy(emulator.target)
    assert {a.type for a in removed} >= {"aws_lambda_function", "aws_sfn_state_machine", "aws_iam_role"}
    assert leftover_resources(emulator.target) == []
    assert emulator.client("iam").list_roles()["Roles"] == []
    assert not local.inventory_path().exists()
