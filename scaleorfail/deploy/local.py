"""`sof deploy --target local`: apply terraform/ to the emulator, through the AWS APIs.

The root module is evaluated exactly as Terraform would plan it (variable defaults,
a tfvars file, -var overrides, locals, modules, templatefile(), policy documents, the
archive), then every resource instance is created or updated with the same API call
the AWS provider makes. An inventory of what was applied (``.sof/deploy-local.json``)
lets a re-run update in place, remove what is no longer declared, and `destroy`
remove everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.packaging import build_model_bundle
from scaleorfail.target import Target, read_outputs_file, write_outputs
from scaleorfail.tf.aws import AwsModel
from scaleorfail.tf.expr import HclError
from scaleorfail.tf.instance import ModuleInstance, ResourceInstance, load_tfvars, root_instance

# Creation order; deletion runs in reverse.
ORDER = [
    "aws_cloudwatch_log_group",
    "aws_iam_role",
    "aws_iam_role_policy",
    "aws_s3_bucket",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_object",
    "aws_sagemaker_model",
    "aws_sagemaker_endpoint_configuration",
    "aws_sagemaker_endpoint",
    "aws_lambda_function",
    "aws_sfn_state_machine",
    "aws_sns_topic",
    "aws_sns_topic_subscription",
    "aws_cloudwatch_dashboard",
    "aws_cloudwatch_metric_alarm",
    "aws_cloudwatch_query_definition",
]


@dataclass
class Applied:
    address: str
    type: str
    id: str
    action: str  # created | updated | deleted


@dataclass
class DeployResult:
    applied: list[Applied] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    outputs_path: Path | None = None


def inventory_path() -> Path:
    return paths.state_dir() / "deploy-local.json"


def read_inventory() -> dict[str, dict[str, str]]:
    path = inventory_path()
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except ValueError:
        return {}


def write_inventory(inventory: dict[str, dict[str, str]]) -> None:
    path = inventory_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(inventory, indent=2, sort_keys=True) + "\n")


def evaluate(
    target: Target, tfvars: Path | None = None, overrides: dict[str, Any] | None = None, account_id: str | None = None
) -> ModuleInstance:
    """The root module evaluated for this target (what `terraform plan` would show)."""
    variables: dict[str, Any] = {}
    try:
        if tfvars is not None:
            variables.update(load_tfvars(str(tfvars)))
        variables.update(overrides or {})
        variables.setdefault("region", target.region)
        terraform = paths.terraform_dir()
        model = AwsModel(region=target.region, account_id=account_id or "123456789012", root_dir=str(terraform))
        return root_instance(str(terraform), model, variables)
    except HclError as error:
        raise UserError(str(error), "fix the variable (see terraform/variables.tf) and deploy again") from None


class Applier:
    """Create-or-update of one resource instance per AWS provider semantics."""

    def __init__(self, target: Target, root_dir: Path) -> None:
        self.target = target
        self.root_dir = root_dir
        self.clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.target.client(service)
        return self.clients[service]

    def apply(self, inst: ResourceInstance) -> tuple[str, str]:
        handler: Callable[[dict[str, Any]], tuple[str, str]] | None = getattr(self, f"_apply_{inst.type}", None)
        if handler is None:
            raise UserError(f"{inst.address}: the local target cannot create {inst.type} yet", "file an issue")
        return handler(inst.attrs)  # the arguments, and what the provider computes (a prefixed bucket's name)

    def delete(self, rtype: str, ident: str) -> None:
        handler: Callable[[str], None] | None = getattr(self, f"_delete_{rtype}", None)
        if handler is not None:
            try:
                handler(ident)
            except ClientError as error:
                if error.response["Error"]["Code"] not in ("ResourceNotFoundException", "NoSuchEntity", "NotFound"):
                    raise

    # -- log groups ---------------------------------------------------------------------

    def _apply_aws_cloudwatch_log_group(self, args: dict[str, Any]) -> tuple[str, str]:
        logs = self.client("logs")
        name = args["name"]
        action = "created"
        try:
            logs.create_log_group(logGroupName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
            action = "updated"
        if args.get("retention_in_days"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(args["retention_in_days"]))
        return name, action

    def _delete_aws_cloudwatch_log_group(self, ident: str) -> None:
        self.client("logs").delete_log_group(logGroupName=ident)

    # -- IAM --------------------------------------------------------------------------------

    def _apply_aws_iam_role(self, args: dict[str, Any]) -> tuple[str, str]:
        iam = self.client("iam")
        name = args["name"]
        try:
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=args["assume_role_policy"],
                Description=args.get("description") or "",
            )
            return name, "created"
        except ClientError as error:
            if error.response["Error"]["Code"] != "EntityAlreadyExists":
                raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=args["assume_role_policy"])
        return name, "updated"

    def _delete_aws_iam_role(self, ident: str) -> None:
        iam = self.client("iam")
        for policy in iam.list_role_policies(RoleName=ident).get("PolicyNames", []):
            iam.delete_role_policy(RoleName=ident, PolicyName=policy)
        iam.delete_role(RoleName=ident)

    def _apply_aws_iam_role_policy(self, args: dict[str, Any]) -> tuple[str, str]:
        self.client("iam").put_role_policy(
            RoleName=args["role"], PolicyName=args["name"], PolicyDocument=args["policy"]
        )
        return f"{args['role']}:{args['name']}", "updated"

    def _delete_aws_iam_role_policy(self, ident: str) -> None:
        role, _, name = ident.partition(":")
        self.client("iam").delete_role_policy(RoleName=role, PolicyName=name)

    # -- S3: the model bundle's bucket ---------------------------------------------------------

    def _apply_aws_s3_bucket(self, args: dict[str, Any]) -> tuple[str, str]:
        s3 = self.client("s3")
        name = str(args["id"])
        request: dict[str, Any] = {"Bucket": name}
        if self.target.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.target.region}
        try:
            s3.create_bucket(**request)
            return name, "created"
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        return name, "updated"

    def _delete_aws_s3_bucket(self, ident: str) -> None:
        s3 = self.client("s3")  # force_destroy: empty it first
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ident):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=ident, Key=item["Key"])
        s3.delete_bucket(Bucket=ident)

    def _apply_aws_s3_bucket_public_access_block(self, args: dict[str, Any]) -> tuple[str, str]:
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        names = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        self.client("s3").put_public_access_block(
            Bucket=args["bucket"],
            PublicAccessBlockConfiguration={n: bool(args.get(f)) for f, n in zip(flags, names, strict=True)},
        )
        return str(args["bucket"]), "updated"

    def _delete_aws_s3_bucket_public_access_block(self, ident: str) -> None:
        self.client("s3").delete_public_access_block(Bucket=ident)

    def _apply_aws_s3_bucket_server_side_encryption_configuration(self, args: dict[str, Any]) -> tuple[str, str]:
        rules = []
        for rule in args.get("rule") or []:
            default = (rule.get("apply_server_side_encryption_by_default") or [{}])[0]
            by_default = {"SSEAlgorithm": default["sse_algorithm"]}
            if default.get("kms_master_key_id"):
                by_default["KMSMasterKeyID"] = default["kms_master_key_id"]
            rules.append(
                {
                    "ApplyServerSideEncryptionByDefault": by_default,
                    "BucketKeyEnabled": bool(rule.get("bucket_key_enabled")),
                }
            )
        self.client("s3").put_bucket_encryption(
            Bucket=args["bucket"], ServerSideEncryptionConfiguration={"Rules": rules}
        )
        return str(args["bucket"]), "updated"

    def _delete_aws_s3_bucket_server_side_encryption_configuration(self, ident: str) -> None:
        self.client("s3").delete_bucket_encryption(Bucket=ident)

    def _apply_aws_s3_object(self, args: dict[str, Any]) -> tuple[str, str]:
        source = self.root_dir / args["source"]
        if not source.is_file():
            raise UserError(f"{source} does not exist", "build it with `make package`")
        self.client("s3").put_object(Bucket=args["bucket"], Key=args["key"], Body=source.read_bytes())
        return f"{args['bucket']}/{args['key']}", "updated"

    def _delete_aws_s3_object(self, ident: str) -> None:
        bucket, _, key = ident.partition("/")
        self.client("s3").delete_object(Bucket=bucket, Key=key)

    # -- SageMaker: model, serverless endpoint configuration, endpoint ---------------------------
    # Models and endpoint configurations are immutable (their names carry a content hash), so an
    # existing one with the same name is the same one.

    def _apply_aws_sagemaker_model(self, args: dict[str, Any]) -> tuple[str, str]:
        sm = self.client("sagemaker")
        container = (args.get("primary_container") or [{}])[0]
        try:
            sm.describe_model(ModelName=args["name"])
            return str(args["name"]), "updated"
        except ClientError:
            pass
        sm.create_model(
            ModelName=args["name"],
            ExecutionRoleArn=args["execution_role_arn"],
            PrimaryContainer={
                "Image": container["image"],
                "ModelDataUrl": container["model_data_url"],
                "Environment": dict(container.get("environment") or {}),
            },
            EnableNetworkIsolation=bool(args.get("enable_network_isolation")),
        )
        return str(args["name"]), "created"

    def _delete_aws_sagemaker_model(self, ident: str) -> None:
        self.client("sagemaker").delete_model(ModelName=ident)

    def _apply_aws_sagemaker_endpoint_configuration(self, args: dict[str, Any]) -> tuple[str, str]:
        sm = self.client("sagemaker")
        try:
            sm.describe_endpoint_config(EndpointConfigName=args["name"])
            return str(args["name"]), "updated"
        except ClientError:
            pass
        variants = []
        for variant in args["production_variants"]:
            serverless = (variant.get("serverless_config") or [{}])[0]
            variants.append(
                {
                    "VariantName": variant.get("variant_name") or "AllTraffic",
                    "ModelName": variant["model_name"],
                    "ServerlessConfig": {
                        "MaxConcurrency": int(serverless["max_concurrency"]),
                        "MemorySizeInMB": int(serverless["memory_size_in_mb"]),
                    },
                }
            )
        sm.create_endpoint_config(EndpointConfigName=args["name"], ProductionVariants=variants)
        return str(args["name"]), "created"

    def _delete_aws_sagemaker_endpoint_configuration(self, ident: str) -> None:
        self.client("sagemaker").delete_endpoint_config(EndpointConfigName=ident)

    def _apply_aws_sagemaker_endpoint(self, args: dict[str, Any]) -> tuple[str, str]:
        sm = self.client("sagemaker")
        name, config = str(args["name"]), str(args["endpoint_config_name"])
        try:
            current = sm.describe_endpoint(EndpointName=name)
        except ClientError:
            current = None
        if current is not None and current["EndpointConfigName"] == config:
            return name, "updated"
        if current is not None:  # the provider calls UpdateEndpoint; moto 5.2.5 has none: replace it
            sm.delete_endpoint(EndpointName=name)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        return name, "created" if current is None else "updated"

    def _delete_aws_sagemaker_endpoint(self, ident: str) -> None:
        self.client("sagemaker").delete_endpoint(EndpointName=ident)

    # -- Lambda -------------------------------------------------------------------------------

    def _apply_aws_lambda_function(self, args: dict[str, Any]) -> tuple[str, str]:
        lam = self.client("lambda")
        name = args["function_name"]
        package = self.root_dir / args["filename"]
        config: dict[str, Any] = {
            "Role": args["role"],
            "Handler": args["handler"],
            "Runtime": args["runtime"],
            "Description": args.get("description") or "",
            "Timeout": int(args.get("timeout") or 3),
            "MemorySize": int(args.get("memory_size") or 128),
            "Environment": {"Variables": dict((args.get("environment") or [{}])[0].get("variables") or {})},
        }
        tracing = args.get("tracing_config")
        if tracing:
            config["TracingConfig"] = {"Mode": tracing[0]["mode"]}
        try:
            current = lam.get_function(FunctionName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            current = None
        if current is None:
            lam.create_function(
                FunctionName=name,
                Code={"ZipFile": package.read_bytes()},
                Architectures=list(args.get("architectures") or ["x86_64"]),
                PackageType="Zip",
                **config,
            )
            action = "created"
        else:
            # source_code_hash is the archive's base64 SHA-256, as Lambda reports CodeSha256
            if current["Configuration"].get("CodeSha256") != args["source_code_hash"]:
                lam.update_function_code(FunctionName=name, ZipFile=package.read_bytes())
            lam.update_function_configuration(FunctionName=name, **config)
            action = "updated"
        reserved = int(args.get("reserved_concurrent_executions", -1))
        if reserved >= 0:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
        else:
            lam.delete_function_concurrency(FunctionName=name)
        return name, action

    def _delete_aws_lambda_function(self, ident: str) -> None:
        self.client("lambda").delete_function(FunctionName=ident)

    # -- Step Functions -------------------------------------------------------------------

    def _apply_aws_sfn_state_machine(self, args: dict[str, Any]) -> tuple[str, str]:
        sfn = self.client("stepfunctions")
        logging = (args.get("logging_configuration") or [{}])[0]
        logging_config: dict[str, Any] = {
            "level": logging.get("level") or "OFF",
            "includeExecutionData": bool(logging.get("include_execution_data")),
        }
        if logging.get("log_destination"):
            logging_config["destinations"] = [{"cloudWatchLogsLogGroup": {"logGroupArn": logging["log_destination"]}}]
        tracing = {"enabled": bool((args.get("tracing_configuration") or [{}])[0].get("enabled"))}
        existing = {m["name"]: m["stateMachineArn"] for m in _all_state_machines(sfn)}
        if args["name"] in existing:
            arn = existing[args["name"]]
            sfn.update_state_machine(
                stateMachineArn=arn,
                definition=args["definition"],
                roleArn=args["role_arn"],
                loggingConfiguration=logging_config,
                tracingConfiguration=tracing,
            )
            return arn, "updated"
        created = sfn.create_state_machine(
            name=args["name"],
            definition=args["definition"],
            roleArn=args["role_arn"],
            type=args.get("type") or "STANDARD",
            loggingConfiguration=logging_config,
            tracingConfiguration=tracing,
        )
        return str(created["stateMachineArn"]), "created"

    def _delete_aws_sfn_state_machine(self, ident: str) -> None:
        self.client("stepfunctions").delete_state_machine(stateMachineArn=ident)

    # -- CloudWatch -------------------------------------------------------------------------

    def _apply_aws_cloudwatch_dashboard(self, args: dict[str, Any]) -> tuple[str, str]:
        self.client("cloudwatch").put_dashboard(
            DashboardName=args["dashboard_name"], DashboardBody=args["dashboard_body"]
        )
        return args["dashboard_name"], "updated"

    def _delete_aws_cloudwatch_dashboard(self, ident: str) -> None:
        self.client("cloudwatch").delete_dashboards(DashboardNames=[ident])

    def _apply_aws_cloudwatch_metric_alarm(self, args: dict[str, Any]) -> tuple[str, str]:
        request: dict[str, Any] = {
            "AlarmName": args["alarm_name"],
            "AlarmDescription": args.get("alarm_description") or "",
            "Namespace": args["namespace"],
            "MetricName": args["metric_name"],
            "Dimensions": [{"Name": k, "Value": v} for k, v in (args.get("dimensions") or {}).items()],
            "Period": int(args["period"]),
            "EvaluationPeriods": int(args["evaluation_periods"]),
            "Threshold": float(args["threshold"]),
            "ComparisonOperator": args["comparison_operator"],
            "TreatMissingData": args.get("treat_missing_data") or "missing",
            "AlarmActions": list(args.get("alarm_actions") or []),
            "OKActions": list(args.get("ok_actions") or []),
            "ActionsEnabled": bool(args.get("actions_enabled", True)),
        }
        if args.get("datapoints_to_alarm"):
            request["DatapointsToAlarm"] = int(args["datapoints_to_alarm"])
        if args.get("extended_statistic"):
            request["ExtendedStatistic"] = args["extended_statistic"]
        else:
            request["Statistic"] = args.get("statistic") or "Sum"
        self.client("cloudwatch").put_metric_alarm(**request)
        return args["alarm_name"], "updated"

    def _delete_aws_cloudwatch_metric_alarm(self, ident: str) -> None:
        self.client("cloudwatch").delete_alarms(AlarmNames=[ident])

    def _apply_aws_cloudwatch_query_definition(self, args: dict[str, Any]) -> tuple[str, str]:
        logs = self.client("logs")
        existing = {
            q["name"]: q["queryDefinitionId"]
            for q in logs.describe_query_definitions(queryDefinitionNamePrefix=args["name"]).get("queryDefinitions", [])
        }
        request = {
            "name": args["name"],
            "queryString": args["query_string"],
            "logGroupNames": list(args.get("log_group_names") or []),
        }
        if args["name"] in existing:
            logs.put_query_definition(queryDefinitionId=existing[args["name"]], **request)
            return existing[args["name"]], "updated"
        created = logs.put_query_definition(**request)
        return str(created["queryDefinitionId"]), "created"

    def _delete_aws_cloudwatch_query_definition(self, ident: str) -> None:
        self.client("logs").delete_query_definition(queryDefinitionId=ident)

    # -- SNS --------------------------------------------------------------------------------------

    def _apply_aws_sns_topic(self, args: dict[str, Any]) -> tuple[str, str]:
        attributes = {"KmsMasterKeyId": args["kms_master_key_id"]} if args.get("kms_master_key_id") else {}
        created = self.client("sns").create_topic(Name=args["name"], Attributes=attributes)
        return str(created["TopicArn"]), "updated"

    def _delete_aws_sns_topic(self, ident: str) -> None:
        self.client("sns").delete_topic(TopicArn=ident)

    def _apply_aws_sns_topic_subscription(self, args: dict[str, Any]) -> tuple[str, str]:
        created = self.client("sns").subscribe(
            TopicArn=args["topic_arn"], Protocol=args["protocol"], Endpoint=args["endpoint"], ReturnSubscriptionArn=True
        )
        return str(created["SubscriptionArn"]), "updated"

    def _delete_aws_sns_topic_subscription(self, ident: str) -> None:
        self.client("sns").unsubscribe(SubscriptionArn=ident)


def _all_state_machines(sfn: Any) -> list[dict[str, Any]]:
    machines: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_state_machines").paginate():
        machines.extend(page["stateMachines"])
    return machines


def managed_instances(root: ModuleInstance) -> list[ResourceInstance]:
    instances = [i for i in root.instances() if i.mode == "managed"]
    unknown = sorted({i.type for i in instances} - set(ORDER))
    if unknown:
        raise UserError(
            f"terraform/ declares resource types the local target does not know: {unknown}", "file an issue"
        )
    return sorted(instances, key=lambda i: ORDER.index(i.type))


def _reverse_order(inventory: dict[str, dict[str, str]]) -> list[tuple[str, dict[str, str]]]:
    """Inventory entries in deletion order (the reverse of creation)."""
    return sorted(inventory.items(), key=lambda kv: -ORDER.index(kv[1]["type"]))


def deploy(target: Target, tfvars: Path | None = None, overrides: dict[str, Any] | None = None) -> DeployResult:
    account = str(target.client("sts").get_caller_identity()["Account"])
    build_model_bundle(paths.lambda_src_dir(), paths.build_dir() / "model.tar.gz")  # Terraform only uploads it
    root = evaluate(target, tfvars, overrides, account_id=account)
    applier = Applier(target, paths.terraform_dir())
    previous = read_inventory()
    # what this emulator already holds from the last deploy (a restarted emulator holds nothing of it)
    earlier = read_outputs_file(target.name) or {}
    held = previous if earlier.get("emulator_instance") in (None, target.instance) else {}
    inventory: dict[str, dict[str, str]] = {}
    result = DeployResult()
    for inst in managed_instances(root):
        ident, action = applier.apply(inst)
        if held.get(inst.address, {}).get("id") != ident:  # a put of something new creates it, as Terraform says
            action = "created"
        inventory[inst.address] = {"type": inst.type, "id": ident}
        result.applied.append(Applied(inst.address, inst.type, ident, action))
        write_inventory({**previous, **inventory})
    for address, entry in _reverse_order(previous):
        if address not in inventory or inventory[address]["id"] != entry["id"]:
            applier.delete(entry["type"], entry["id"])
            result.applied.append(Applied(address, entry["type"], entry["id"], "deleted"))
    write_inventory(inventory)
    result.outputs = root.outputs()
    given: dict[str, Any] = dict(load_tfvars(str(tfvars))) if tfvars is not None else {}
    given.update(overrides or {})
    result.outputs_path = write_outputs(target, result.outputs, given)  # what `sof scenario` restores
    return result


def destroy(target: Target) -> list[Applied]:
    """Delete everything the local deploys created (reverse order)."""
    inventory = read_inventory()
    applier = Applier(target, paths.terraform_dir())
    removed = []
    remaining = dict(inventory)
    for address, entry in _reverse_order(inventory):
        applier.delete(entry["type"], entry["id"])
        removed.append(Applied(address, entry["type"], entry["id"], "deleted"))
        del remaining[address]
        write_inventory(remaining)  # an interrupted destroy leaves the rest listed
    inventory_path().unlink(missing_ok=True)
    return removed
