"""Static checks of terraform/ (Terraform itself cannot run here).

Every .tf file is parsed with python-hcl2; arguments and blocks are checked against the
provider argument reference; references between resources are resolved; IAM policies
are evaluated and checked for least privilege; the ASL template is rendered through the
real root module (all locals, variables and templatefile() evaluated) and checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
from lark import Tree

from scaleorfail.tf.aws import AwsModel
from scaleorfail.tf.config import Block, Body, ModuleConfig, all_modules, module_source_dir, parse_file
from scaleorfail.tf.expr import HclError, tokens_removed
from scaleorfail.tf.instance import ModuleInstance, root_instance

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
# A copy of ../shared/reference/terraform-aws-arguments.json (provider argument names read
# from the AWS provider v6 / archive 2.8 docs), kept in the repo so CI has it.
REFERENCE_PATHS = [
    Path(__file__).resolve().parent / "reference" / "terraform-aws-arguments.json",
    ROOT.parent / "shared" / "reference" / "terraform-aws-arguments.json",
]
TF_FILES = sorted(TERRAFORM.rglob("*.tf"))
META = {"count", "for_each", "depends_on", "provider", "lifecycle"}

# Statements that may use Resource "*" because AWS offers no resource-level permission
# for their actions. Keyed by (module dir, policy document, Sid).
STAR_RESOURCE_ALLOWED = {
    ("modules/state_machine", "this", "DeliverExecutionLogs"): "CloudWatch Logs delivery actions "
    "(CreateLogDelivery, PutResourcePolicy, DescribeLogGroups ...) do not support resource-level permissions.",
    ("modules/state_machine", "this", "XRayTraces"): "X-Ray PutTraceSegments/GetSampling* accept only '*'.",
    ("modules/lambda_step", "this", "XRayTraces"): "X-Ray PutTraceSegments/PutTelemetryRecords accept only '*'.",
    ("modules/sagemaker_endpoint", "execution", "EcrAuthorizationToken"): "ecr:GetAuthorizationToken has no "
    "resource-level permission.",
}


def reference() -> dict[str, Any]:
    for path in REFERENCE_PATHS:
        if path.is_file():
            return dict(json.loads(path.read_text()))
    pytest.skip("the provider argument reference (../shared/reference) is not on this machine")


def modules() -> dict[str, ModuleConfig]:
    return all_modules(str(TERRAFORM))


def rel(config: ModuleConfig) -> str:
    path = Path(config.path)
    return path.relative_to(TERRAFORM).as_posix() if path.is_relative_to(TERRAFORM) else str(path)


def evaluated(**variables: Any) -> ModuleInstance:
    model = AwsModel(root_dir=str(TERRAFORM), build_archives=False)
    return root_instance(str(TERRAFORM), model, variables)


# -- parsing and declarations --------------------------------------------------------------------


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: p.relative_to(TERRAFORM).as_posix())
def test_every_tf_file_parses_with_python_hcl2(path: Path) -> None:
    with path.open(encoding="utf-8") as handle:
        assert isinstance(hcl2.load(handle), dict)
    assert parse_file(str(path)).blocks


def test_every_module_is_reached_and_has_its_main_resource_named_this() -> None:
    found = {rel(c) for c in modules().values()}
    on_disk = {p.parent.relative_to(TERRAFORM).as_posix() for p in TERRAFORM.glob("modules/*/main.tf")}
    assert on_disk <= found, f"modules never called: {on_disk - found}"
    for config in modules().values():
        if rel(config) != ".":
            assert any(name == "this" for _, name in config.resources), f"{rel(config)} has no resource named this"


def test_every_variable_is_typed_and_described_and_ranges_are_validated() -> None:
    for config in modules().values():
        for name, block in config.variables.items():
            attrs = block.body.attributes
            assert "type" in attrs, f"{block.where}: variable {name} has no type"
            assert "description" in attrs, f"{block.where}: variable {name} has no description"
    root = modules()[str(TERRAFORM)]
    unvalidated = {
        name
        for name, block in root.variables.items()
        if not block.body.blocks_of("validation") and _type_text(block) in ("number", "string")
    }
    assert unvalidated == set(), f"root number/string variables without validation: {unvalidated}"


def _type_text(block: Block) -> str:
    node = block.body.attributes["type"].expr
    while isinstance(node, Tree) and node.data == "expr_term":
        node = tokens_removed(node.children)[0]
    return str(node.children[0]) if node.data == "identifier" else node.data


def test_every_output_is_described() -> None:
    for config in modules().values():
        for name, block in config.outputs.items():
            assert "description" in block.body.attributes, f"{block.where}: output {name} has no description"


def test_providers_are_pinned_exactly_in_the_root_module() -> None:
    root = modules()[str(TERRAFORM)]
    (terraform,) = root.terraform
    (required,) = terraform.body.blocks_of("required_providers")
    model = AwsModel(build_archives=False)
    providers = root_instance(str(TERRAFORM), model).scope
    values = {name: _literal(attr.expr, providers) for name, attr in required.body.attributes.items()}
    assert set(values) == {"aws", "archive"}
    for name, spec in values.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", spec["version"]), f"{name} is not pinned: {spec['version']}"
    assert (TERRAFORM / "versions.tf").is_file()


def _literal(expr: Any, scope: Any) -> Any:
    from scaleorfail.tf.expr import evaluate

    return evaluate(expr, scope)


# -- arguments against the provider reference --------------------------------------------------------


def schema_problems(
    body: Body, schema: dict[str, Any], where: str, schema_only: set[str], prefix: str = ""
) -> list[str]:
    problems = []
    arguments = set(schema.get("arguments", [])) | {n[len(prefix) :] for n in schema_only if n.startswith(prefix)}
    blocks = schema.get("blocks", {})
    for name, attribute in body.attributes.items():
        if prefix == "" and name in META:
            continue
        if name not in arguments:
            problems.append(f"{attribute.file}:{attribute.line}: {where}: unknown argument {prefix}{name}")
    present = set(body.attributes)
    for block in body.blocks:
        if prefix == "" and block.type == "lifecycle":
            continue
        if block.type == "dynamic":
            label = block.labels[0]
            present.add(label)
            (content,) = block.body.blocks_of("content")
            inner_body, block_name = content.body, label
        else:
            present.add(block.type)
            inner_body, block_name = block.body, block.type
        if block_name not in blocks:
            problems.append(f"{block.where}: {where}: unknown block {prefix}{block_name}")
            continue
        problems += schema_problems(inner_body, blocks[block_name], where, schema_only, f"{prefix}{block_name}.")
    for required in schema.get("required", []):
        if required not in present:
            problems.append(f"{where}: required {prefix}{required} is missing")
    return problems


def declared_blocks() -> Iterator[tuple[str, str, str, Block]]:
    for config in modules().values():
        for (rtype, name), block in config.resources.items():
            yield "resource", rtype, name, block
        for (rtype, name), block in config.data.items():
            yield "data", rtype, name, block
        for block in config.providers:
            yield "provider", block.labels[0], "", block


def test_every_argument_and_block_exists_in_the_provider_reference() -> None:
    ref = reference()
    problems = []
    for kind, rtype, name, block in declared_blocks():
        schema = ref[kind].get(rtype)
        if schema is None:
            problems.append(f"{block.where}: {kind} type {rtype} is not in the reference")
            continue
        only = set(schema.get("_schema_only", []))
        problems += schema_problems(block.body, schema, f"{kind} {rtype}.{name}".rstrip("."), only)
    assert problems == []


def test_the_schema_check_catches_a_misspelt_argument() -> None:
    body = hcl2.parses_to_tree('resource "aws_lambda_function" "x" {\n  functon_name = "a"\n  role = "r"\n}\n')
    from scaleorfail.tf.config import read_body

    block = read_body(body.children[0], "inline.tf").blocks[0]
    schema = reference()["resource"]["aws_lambda_function"]
    problems = schema_problems(block.body, schema, "x", set())
    assert any("unknown argument functon_name" in p for p in problems)
    assert any("required function_name is missing" in p for p in problems)


# -- references -----------------------------------------------------------------------------------------


def traversal(node: Any) -> list[str] | None:
    """['aws_iam_role', 'this', 'arn'] for aws_iam_role.this.arn (indexes dropped)."""
    if not isinstance(node, Tree):
        return None
    if node.data == "expr_term":
        inner = tokens_removed(node.children)
        return traversal(inner[0]) if len(inner) == 1 and len(node.children) == 1 else None
    if node.data == "identifier":
        return [str(node.children[0])]
    if node.data == "get_attr_expr_term":
        target, attr = tokens_removed(node.children)
        head = traversal(target)
        return None if head is None else [*head, str(tokens_removed(attr.children)[0].children[0])]
    if node.data == "index_expr_term":
        return traversal(tokens_removed(node.children)[0])
    return None


def references(node: Any) -> Iterator[tuple[list[str], int]]:
    if not isinstance(node, Tree):
        return
    if node.data in ("get_attr_expr_term", "index_expr_term", "identifier"):
        chain = traversal(node)
        if chain is not None and node.data != "identifier":
            yield chain, node.meta.line
            if node.data == "index_expr_term":
                yield from references(tokens_removed(node.children)[1])
            return
    if node.data == "function_call":
        for child in tokens_removed(node.children)[1:]:
            yield from references(child)
        return
    if node.data == "object_elem_key":
        return
    for child in node.children:
        yield from references(child)


def expressions(body: Body) -> Iterator[Any]:
    for attribute in body.attributes.values():
        yield attribute.expr
    for block in body.blocks:
        yield from expressions(block.body)


def module_expressions(config: ModuleConfig) -> Iterator[tuple[str, Any]]:
    for attribute in config.locals.values():
        yield attribute.file, attribute.expr
    blocks = [*config.resources.values(), *config.data.values(), *config.modules.values(), *config.outputs.values()]
    blocks += config.providers
    for block in blocks:
        for expr in expressions(block.body):
            yield block.file, expr


def reference_problems(config: ModuleConfig, ref: dict[str, Any]) -> list[str]:
    all_configs = modules()
    problems = []
    for file, expr in module_expressions(config):
        for chain, line in references(expr):
            where = f"{file}:{line}: {'.'.join(chain)}"
            root = chain[0]
            if root == "var" and chain[1] not in config.variables:
                problems.append(f"{where}: no variable {chain[1]}")
            elif root == "local" and chain[1] not in config.locals:
                problems.append(f"{where}: no local {chain[1]}")
            elif root == "module":
                if chain[1] not in config.modules:
                    problems.append(f"{where}: no module {chain[1]}")
                elif len(chain) > 2:
                    child = all_configs[module_source_dir(config, config.modules[chain[1]])]
                    if chain[2] not in child.outputs:
                        problems.append(f"{where}: module {chain[1]} has no output {chain[2]}")
            elif root == "data":
                if (chain[1], chain[2]) not in config.data:
                    problems.append(f"{where}: no data source {chain[1]}.{chain[2]}")
                elif len(chain) > 3 and not _attribute_known(ref["data"][chain[1]], chain[3]):
                    problems.append(f"{where}: data {chain[1]} has no attribute {chain[3]}")
            elif re.match(r"(aws|archive)_", root) and len(chain) >= 2:
                if (root, chain[1]) not in config.resources:
                    problems.append(f"{where}: no resource {root}.{chain[1]} in {rel(config)}")
                elif len(chain) > 2 and not _attribute_known(ref["resource"][root], chain[2]):
                    problems.append(f"{where}: {root} has no attribute {chain[2]}")
    return problems


def _attribute_known(schema: dict[str, Any], name: str) -> bool:
    names = set(schema.get("arguments", [])) | {a.split(".")[0] for a in schema.get("attributes", [])}
    names |= set(schema.get("blocks", {})) | set(schema.get("_schema_only", []))
    return name in names or name == "id"


def test_every_reference_points_at_something_declared() -> None:
    ref = reference()
    problems = [p for config in modules().values() for p in reference_problems(config, ref)]
    assert problems == []


def test_the_reference_check_catches_a_dangling_reference(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        'resource "aws_iam_role" "this" {\n  assume_role_policy = data.aws_iam_policy_document.nope.json\n'
        "  name = aws_iam_role.other.name\n  description = var.missing\n}\n"
    )
    from scaleorfail.tf.config import load_module

    problems = reference_problems(load_module(str(tmp_path)), reference())
    assert len(problems) == 3


# -- IAM: least privilege --------------------------------------------------------------------------------


def policy_documents(**variables: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    root = evaluated(**variables)
    for inst in root.instances():
        if inst.type == "aws_iam_policy_document":
            module_dir = rel(inst.module.config)
            yield module_dir, inst.name, json.loads(inst.attrs["json"])


def test_no_statement_allows_wildcard_actions_and_star_resources_only_where_aws_requires() -> None:
    seen_star = set()
    for variables in (
        {},
        {"enable_xray": True},
        {"embed_backend": "sagemaker"},
        {"embed_backend": "sagemaker", "enable_xray": True},
    ):
        for module_dir, doc, policy in policy_documents(**variables):
            for statement in policy["Statement"]:
                actions = statement.get("Action", [])
                actions = [actions] if isinstance(actions, str) else actions
                assert actions, f"{module_dir}/{doc}: statement without actions"
                assert not [a for a in actions if "*" in a], f"{module_dir}/{doc}: wildcard action in {actions}"
                assert "NotAction" not in statement and statement["Effect"] == "Allow"
                resources = statement.get("Resource", [])
                resources = [resources] if isinstance(resources, str) else resources
                if "*" in resources:
                    key = (module_dir, doc, statement.get("Sid"))
                    assert key in STAR_RESOURCE_ALLOWED, f"Resource '*' not allowed for {key}"
                    seen_star.add(key)
    assert seen_star == set(STAR_RESOURCE_ALLOWED), "an allow-list entry is no longer needed"


def test_lambda_roles_write_only_their_own_log_group() -> None:
    root = evaluated()
    outputs = root.outputs()
    for module_dir, doc, policy in policy_documents():
        if module_dir == "modules/lambda_step" and doc == "this":
            (statement,) = policy["Statement"]
            assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
            assert re.fullmatch(
                r"arn:aws:logs:us-east-1:\d{12}:log-group:/aws/lambda/[a-z-]+:\*", statement["Resource"]
            )
    assert set(outputs["log_group_names"]) == {"preprocess", "embed", "postprocess", "state_machine"}


def test_state_machine_may_invoke_exactly_the_three_functions() -> None:
    root = evaluated()
    arns = sorted(root.outputs()["function_arns"].values())
    (doc,) = [p for m, d, p in policy_documents() if m == "modules/state_machine" and d == "this"]
    invoke = next(s for s in doc["Statement"] if s["Sid"] == "InvokePipelineFunctions")
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert sorted(invoke["Resource"]) == sorted(arns + [f"{a}:*" for a in arns])


def test_roles_and_policies_come_from_policy_documents() -> None:
    for config in modules().values():
        for (rtype, name), block in config.resources.items():
            for arg in {"aws_iam_role": ["assume_role_policy"], "aws_iam_role_policy": ["policy"]}.get(rtype, []):
                chains = [c for c, _ in references(block.body.attributes[arg].expr)]
                assert chains and chains[0][:2] == ["data", "aws_iam_policy_document"], f"{rtype}.{name}.{arg}"


# -- the state machine definition --------------------------------------------------------------------------


def rendered_definition(**variables: Any) -> dict[str, Any]:
    root = evaluated(**variables)
    (machine,) = [i for i in root.instances() if i.type == "aws_sfn_state_machine"]
    return dict(json.loads(machine.args["definition"]))


def transition_problems(machine: dict[str, Any], where: str = "top") -> list[str]:
    states = machine["States"]
    problems = []
    if machine["StartAt"] not in states:
        problems.append(f"{where}: StartAt {machine['StartAt']} is not a state")
    reachable, frontier = set(), [machine["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name in reachable or name not in states:
            continue
        reachable.add(name)
        state = states[name]
        targets = [state.get("Next"), state.get("Default")]
        targets += [c["Next"] for c in state.get("Choices", [])] + [c["Next"] for c in state.get("Catch", [])]
        for target in filter(None, targets):
            if target not in states:
                problems.append(f"{where}.{name}: transition to unknown state {target}")
            frontier.append(target)
        terminal = state.get("End") is True or state["Type"] in ("Succeed", "Fail")
        if state["Type"] != "Choice" and terminal == ("Next" in state):
            problems.append(f"{where}.{name}: needs exactly one of Next and End")
        if "ItemProcessor" in state:
            problems += transition_problems(state["ItemProcessor"], f"{where}.{name}")
    problems += [f"{where}.{n}: unreachable" for n in set(states) - reachable]
    return problems


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"bad_input_policy": "quarantine"},
        {"lambda_retry": {"max_attempts": 0}},
        {"bad_input_policy": "quarantine", "lambda_retry": {"max_attempts": 0}, "default_max_concurrency": 40},
    ],
    ids=["fail+retry", "quarantine+retry", "fail+no-retry", "quarantine+no-retry"],
)
def test_the_asl_template_renders_to_a_valid_state_machine(variables: dict[str, Any]) -> None:
    definition = rendered_definition(**variables)
    assert transition_problems(definition) == []
    map_state = definition["States"]["ProcessTickets"]
    assert map_state["Type"] == "Map" and map_state["MaxConcurrencyPath"] == "$.max_concurrency"
    assert definition["States"]["DefaultMaxConcurrency"]["Result"] == variables.get("default_max_concurrency", 2)
    tasks = map_state["ItemProcessor"]["States"]
    for step in ("Preprocess", "Embed", "Postprocess"):
        assert tasks[step]["Resource"] == "arn:aws:states:::lambda:invoke"
        assert re.fullmatch(
            r"arn:aws:lambda:us-east-1:\d{12}:function:scale-or-fail-" + step.lower(),
            tasks[step]["Parameters"]["FunctionName"],
        )
        retry = tasks[step]["Retry"]
        if variables.get("lambda_retry"):
            assert retry == []
        else:
            (rule,) = retry
            assert "Lambda.TooManyRequestsException" in rule["ErrorEquals"] and rule["MaxAttempts"] == 6
            # AWS's recommended Lambda retry list (Step Functions guide, "Handle transient Lambda errors")
            aws_recommended = {
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.ClientExecutionTimeoutException",
            }
            assert aws_recommended <= set(rule["ErrorEquals"])
        quarantined = variables.get("bad_input_policy") == "quarantine"
        assert ("Catch" in tasks[step]) == quarantined
        if quarantined:
            assert tasks[step]["Catch"][0]["ErrorEquals"] == ["PayloadTooLarge", "InvalidTicket"]
    assert ("Quarantine" in tasks) == (variables.get("bad_input_policy") == "quarantine")


def test_the_transition_check_catches_a_broken_definition() -> None:
    broken = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "C": {"Type": "Pass", "End": True}}}
    problems = transition_problems(broken)
    assert any("unknown state B" in p for p in problems) and any("C: unreachable" in p for p in problems)


def test_function_settings_reach_the_functions() -> None:
    root = evaluated(embed_memory_mb=512, simulated_infer_ms=100, embed_reserved_concurrency=5)
    functions = {i.args["function_name"]: i.args for i in root.instances() if i.type == "aws_lambda_function"}
    embed = functions["scale-or-fail-embed"]
    assert (embed["memory_size"], embed["timeout"], embed["reserved_concurrent_executions"]) == (512, 6, 5)
    assert embed["environment"][0]["variables"]["SIMULATED_INFER_MS"] == "100"
    assert functions["scale-or-fail-preprocess"]["reserved_concurrent_executions"] == -1
    assert functions["scale-or-fail-preprocess"]["handler"] == "pipeline.preprocess.handler"


def test_environment_variables_are_the_ones_the_handlers_read() -> None:
    source = "".join(p.read_text() for p in (ROOT / "lambda_src" / "pipeline").glob("*.py"))
    root = evaluated()
    for inst in root.instances():
        if inst.type == "aws_lambda_function":
            for name in inst.args["environment"][0]["variables"]:
                assert f'"{name}"' in source, f"{inst.address} sets {name}, which no handler reads"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"default_max_concurrency": 41}, "between 1 and 40"),
        ({"default_max_concurrency": 0}, "between 1 and 40"),
        ({"bad_input_policy": "ignore"}, "'fail' or 'quarantine'"),
        ({"lambda_runtime": "python2.7"}, "python3.11, python3.12 or python3.13"),
        ({"embed_reserved_concurrency": -2}, "null or a whole number"),
        ({"embed_reserved_concurrency": 901}, "at least 100 of the default 1,000"),
        ({"lambda_retry": {"jitter_strategy": "SOME"}}, "FULL or NONE"),
        ({"log_retention_days": 8}, "must be one of"),
        ({"name_prefix": "Bad_Prefix"}, "3-24 characters"),
        ({"alarm_email": "not-an-email"}, "e-mail address"),
        ({"emulator_endpoint": "http://10.0.0.5:4566"}, "loopback URL"),
        ({"embed_backend": "ecs"}, 'embed_backend must be "lambda" or "sagemaker"'),
        ({"sagemaker_max_concurrency": 201}, "between 1 and 200"),
        ({"sagemaker_memory_mb": 1000}, "1024, 2048, 3072, 4096, 5120 or 6144"),
        ({"sagemaker_throttle_retry_attempts": 11}, "between 0 and 10"),
        ({"sagemaker_image_uri": "docker.io/python:3.12"}, "must be an ECR image URI"),
    ],
)
def test_variable_validations_reject_bad_values(variables: dict[str, Any], message: str) -> None:
    with pytest.raises(HclError, match=re.escape(message)):
        evaluated(**variables)


def test_dashboard_alarms_and_queries() -> None:
    root = evaluated(alarm_email="oncall@example.com")
    by_type: dict[str, list[Any]] = {}
    for inst in root.instances():
        by_type.setdefault(inst.type, []).append(inst)
    (dashboard,) = by_type["aws_cloudwatch_dashboard"]
    body = json.loads(dashboard.args["dashboard_body"])
    text = json.dumps(body)
    for metric in (
        "Invocations",
        "Duration",
        "ConcurrentExecutions",
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "Errors",
        "Throttles",
        "ExecutionThrottled",
    ):
        assert f'"{metric}"' in text, metric
    alarms = {a.name: a.args for a in by_type["aws_cloudwatch_metric_alarm"]}
    assert alarms["embed_throttles"]["metric_name"] == "Throttles" and alarms["embed_throttles"]["threshold"] == 0
    assert alarms["executions_failed"]["metric_name"] == "ExecutionsFailed"
    assert alarms["embed_p95_duration"]["extended_statistic"] == "p95"
    assert all(a["alarm_actions"] for a in alarms.values())
    queries = {q.args["name"]: q.args for q in by_type["aws_cloudwatch_query_definition"]}
    index = json.loads((TERRAFORM / "queries" / "queries.json").read_text())
    assert set(queries) == {f"scale-or-fail/{key}" for key in index}
    for key, entry in index.items():
        assert queries[f"scale-or-fail/{key}"]["query_string"] == (TERRAFORM / "queries" / entry["file"]).read_text()
    bad_input = queries["scale-or-fail/bad-input"]["query_string"]
    assert "filter @message like /PayloadTooLarge/" in bad_input


def test_the_state_machine_definition_comes_from_a_template_file() -> None:
    templates = sorted(p.name for p in (TERRAFORM / "templates").glob("*.asl.json.tftpl"))
    assert templates == ["pipeline.asl.json.tftpl"]
    main = (TERRAFORM / "main.tf").read_text()
    assert 'templatefile("${path.module}/templates/pipeline.asl.json.tftpl"' in main


def test_emulator_endpoint_switches_every_service_endpoint() -> None:
    root = modules()[str(TERRAFORM)]
    (provider,) = root.providers
    (dynamic,) = [b for b in provider.body.blocks if b.type == "dynamic"]
    assert dynamic.labels == ["endpoints"]
    (content,) = dynamic.body.blocks_of("content")
    assert {"lambda", "sfn", "logs", "cloudwatch", "iam", "sts"} <= set(content.body.attributes)


def test_every_checkov_skip_is_justified_inline() -> None:
    skips = []
    for path in TF_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip=" in line:
                check, _, reason = line.split("checkov:skip=", 1)[1].partition(":")
                assert re.fullmatch(r"CKV2?_AWS_\d+", check), f"{path}:{number}"
                assert len(reason.strip()) > 20, f"{path}:{number}: skip {check} needs a reason"
                skips.append(check)
    assert skips, "expected the documented skips (log group KMS, Lambda VPC, ...)"


def test_emulator_endpoint_variable_points_every_service_at_the_emulator() -> None:
    from scaleorfail.tf.instance import evaluate_body

    for endpoint, expected in (("http://127.0.0.1:4566", True), (None, False)):
        root = evaluated(emulator_endpoint=endpoint)
        (provider,) = root.config.providers
        args = evaluate_body(provider.body, root.scope)
        assert args["skip_credentials_validation"] is expected
        if expected:
            (endpoints,) = args["endpoints"]
            assert set(endpoints.values()) == {"http://127.0.0.1:4566"}
        else:
            assert "endpoints" not in args


# -- Activity 9: Embed served by a SageMaker serverless endpoint -------------------------------------------

SAGEMAKER = {"embed_backend": "sagemaker"}


def instances_by_type(root: ModuleInstance) -> dict[str, list[Any]]:
    table: dict[str, list[Any]] = {}
    for inst in root.instances():
        if inst.mode == "managed":
            table.setdefault(inst.type, []).append(inst)
    return table


def test_the_lambda_backend_creates_no_sagemaker_or_s3_resource() -> None:
    types = set(instances_by_type(evaluated()))
    assert not {t for t in types if t.startswith(("aws_sagemaker", "aws_s3"))}
    assert evaluated().outputs()["embed_endpoint_name"] is None


def test_the_sagemaker_backend_replaces_the_embed_function_with_a_serverless_endpoint() -> None:
    root = evaluated(**SAGEMAKER)
    table = instances_by_type(root)
    functions = sorted(i.args["function_name"] for i in table["aws_lambda_function"])
    assert functions == ["scale-or-fail-postprocess", "scale-or-fail-preprocess"]
    (config,) = table["aws_sagemaker_endpoint_configuration"]
    (variant,) = config.args["production_variants"]
    (serverless,) = variant["serverless_config"]
    assert (serverless["max_concurrency"], serverless["memory_size_in_mb"]) == (2, 1024)
    (model,) = table["aws_sagemaker_model"]
    (container,) = model.args["primary_container"]
    assert container["model_data_url"].startswith("s3://scale-or-fail-embed-model-")
    assert container["environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["environment"]["SIMULATED_INFER_MS"] == "250"  # the same knobs as the Embed function
    assert container["image"] == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    assert model.args["enable_network_isolation"] is True
    outputs = root.outputs()
    assert outputs["embed_endpoint_name"] == "scale-or-fail-embed"
    assert outputs["log_group_names"]["embed"] == "/aws/sagemaker/Endpoints/scale-or-fail-embed"


def test_the_model_bucket_is_private_and_encrypted() -> None:
    table = instances_by_type(evaluated(**SAGEMAKER))
    (block,) = table["aws_s3_bucket_public_access_block"]
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    assert all(block.args[flag] is True for flag in flags)
    (encryption,) = table["aws_s3_bucket_server_side_encryption_configuration"]
    (rule,) = encryption.args["rule"]
    assert rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    (bucket,) = table["aws_s3_bucket"]
    assert block.args["bucket"] == encryption.args["bucket"] == bucket.attrs["id"]
    assert "acl" not in bucket.args and "policy" not in bucket.args


def test_the_sagemaker_roles_are_scoped_to_that_endpoint_bucket_object_image_and_log_group() -> None:
    root = evaluated(**SAGEMAKER)
    documents = {(m, d): p for m, d, p in policy_documents(**SAGEMAKER)}
    machine = documents[("modules/state_machine", "this")]
    (invoke,) = [s for s in machine["Statement"] if s["Sid"] == "InvokeEmbedEndpoint"]
    assert invoke["Action"] == "sagemaker:InvokeEndpoint"
    assert invoke["Resource"] == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/scale-or-fail-embed"
    lambdas = next(s for s in machine["Statement"] if s["Sid"] == "InvokePipelineFunctions")
    assert not [r for r in lambdas["Resource"] if "embed" in r]
    execution = {s["Sid"]: s for s in documents[("modules/sagemaker_endpoint", "execution")]["Statement"]}
    (bucket,) = instances_by_type(root)["aws_s3_bucket"]
    (bundle,) = instances_by_type(root)["aws_s3_object"]
    assert execution["ReadModelBundle"]["Action"] == "s3:GetObject"
    assert execution["ReadModelBundle"]["Resource"] == f"{bucket.attrs['arn']}/{bundle.args['key']}"
    assert execution["PullServingImage"]["Resource"] == (
        "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"
    )
    assert execution["WriteEndpointLogs"]["Resource"].endswith(
        ":log-group:/aws/sagemaker/Endpoints/scale-or-fail-embed:*"
    )
    custom = {
        (m, d): p
        for m, d, p in policy_documents(
            **SAGEMAKER, sagemaker_image_uri=("111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-serving:v1")
        )
    }
    pull = next(
        s for s in custom[("modules/sagemaker_endpoint", "execution")]["Statement"] if s["Sid"] == "PullServingImage"
    )
    assert pull["Resource"] == "arn:aws:ecr:eu-west-1:111122223333:repository/my-serving"


def test_the_embed_task_calls_the_endpoint_through_the_aws_sdk_integration() -> None:
    definition = rendered_definition(**SAGEMAKER)
    assert transition_problems(definition) == []
    embed = definition["States"]["ProcessTickets"]["ItemProcessor"]["States"]["Embed"]
    assert embed["Resource"] == "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint"
    assert embed["Parameters"]["EndpointName"] == "scale-or-fail-embed"
    assert embed["Parameters"]["Body.$"] == "States.JsonToString($)"  # JSON string in
    assert embed["ResultSelector"] == {"Payload.$": "States.StringToJson($.Body)"}  # parsed JSON out
    assert embed["OutputPath"] == "$.Payload" and embed["Retry"] == []  # throttled = failed, not queued
    (rule,) = rendered_definition(**SAGEMAKER, sagemaker_throttle_retry_attempts=3)["States"]["ProcessTickets"][
        "ItemProcessor"
    ]["States"]["Embed"]["Retry"]
    assert rule["ErrorEquals"] == ["SageMakerRuntime.ThrottlingException"] and rule["MaxAttempts"] == 3


def test_models_and_configurations_are_renamed_when_their_content_changes() -> None:
    def names(**variables: Any) -> tuple[str, str]:
        table = instances_by_type(evaluated(**SAGEMAKER, **variables))
        return table["aws_sagemaker_model"][0].args["name"], table["aws_sagemaker_endpoint_configuration"][0].args[
            "name"
        ]

    base = names()
    assert names() == base
    assert names(sagemaker_max_concurrency=4)[0] == base[0] and names(sagemaker_max_concurrency=4)[1] != base[1]
    slower = names(simulated_infer_ms=400)
    assert slower[0] != base[0] and slower[1] != base[1]


def test_the_dashboard_and_alarms_watch_the_endpoint_instead_of_the_embed_function() -> None:
    table = instances_by_type(evaluated(**SAGEMAKER))
    (dashboard,) = table["aws_cloudwatch_dashboard"]
    body = json.loads(dashboard.args["dashboard_body"])
    metrics = [m for widget in body["widgets"] for m in widget["properties"].get("metrics", [])]
    assert ["AWS/SageMaker", "ModelLatency"] in [m[:2] for m in metrics]
    assert ["AWS/SageMaker", "Invocations"] in [m[:2] for m in metrics]
    assert not [m for m in metrics if m[0] == "AWS/Lambda" and "scale-or-fail-embed" in m]
    alarms = {a.args["alarm_name"]: a.args for a in table["aws_cloudwatch_metric_alarm"]}
    throttles = alarms["scale-or-fail-embed-throttles"]
    assert (throttles["namespace"], throttles["metric_name"]) == ("AWS/SageMaker", "Invocation4XXErrors")
    assert throttles["dimensions"] == {"EndpointName": "scale-or-fail-embed", "VariantName": "AllTraffic"}
    latency = alarms["scale-or-fail-embed-p95-duration"]
    assert (latency["metric_name"], latency["threshold"]) == ("ModelLatency", 1_000_000)  # microseconds
