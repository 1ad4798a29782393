"""What the AWS and archive providers compute for the resources this project declares.

ARNs follow AWS's documented formats; ``aws_iam_policy_document`` renders the same
IAM JSON the provider renders; ``archive_file`` builds the zip (see
:mod:`scaleorfail.packaging`). Used by the static tests (fake account) and by the
local deployment (the emulator's account and region).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleorfail.packaging import build_zip
from scaleorfail.tf.expr import HclError, Unknown

# Accounts of the SageMaker scikit-learn (and Spark ML) serving images by region, as AWS
# publishes them ("Docker Registry Paths and Example Code") and the provider's
# aws_sagemaker_prebuilt_ecr_image data source knows them.
SKLEARN_REGISTRIES = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-south-1": "720646828776",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ca-central-1": "341280168497",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}
PREBUILT_REGISTRIES = {"sagemaker-scikit-learn": SKLEARN_REGISTRIES, "sagemaker-sparkml-serving": SKLEARN_REGISTRIES}


def _one_or_list(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def policy_json(args: dict[str, Any]) -> str:
    """Render aws_iam_policy_document arguments to an IAM policy JSON string."""
    statements = []
    for statement in args.get("statement", []):
        rendered: dict[str, Any] = {}
        if statement.get("sid"):
            rendered["Sid"] = statement["sid"]
        rendered["Effect"] = statement.get("effect") or "Allow"
        for key, name in (("actions", "Action"), ("not_actions", "NotAction")):
            if statement.get(key):
                rendered[name] = _one_or_list(sorted(set(statement[key]), reverse=True))
        for key, name in (("resources", "Resource"), ("not_resources", "NotResource")):
            if statement.get(key):
                rendered[name] = _one_or_list(sorted(set(statement[key]), reverse=True))
        for key, name in (("principals", "Principal"), ("not_principals", "NotPrincipal")):
            blocks = statement.get(key) or []
            if blocks:
                principal: dict[str, Any] = {}
                for block in blocks:
                    principal.setdefault(block["type"], []).extend(block["identifiers"])
                rendered[name] = {k: _one_or_list(sorted(set(v), reverse=True)) for k, v in principal.items()}
        conditions = statement.get("condition") or []
        if conditions:
            condition: dict[str, dict[str, Any]] = {}
            for block in conditions:
                condition.setdefault(block["test"], {})[block["variable"]] = _one_or_list(list(block["values"]))
            rendered["Condition"] = condition
        statements.append(rendered)
    return json.dumps({"Version": args.get("version") or "2012-10-17", "Statement": statements}, indent=2)


@dataclass
class AwsModel:
    """Computed attributes of AWS resources in one account and region."""

    region: str = "us-east-1"
    account_id: str = "123456789012"
    partition: str = "aws"
    root_dir: str = "."
    build_archives: bool = True

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"

    def computed(self, mode: str, rtype: str, address: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"_{mode}_{rtype}", None)
        if handler is None:
            raise HclError(f"{address}: {mode} resource type {rtype} is not modelled (add it to scaleorfail/tf/aws.py)")
        result: dict[str, Any] = handler(args)
        return result

    # -- data sources -------------------------------------------------------------

    @property
    def dns_suffix(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"

    def _data_aws_partition(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"partition": self.partition, "dns_suffix": self.dns_suffix, "id": self.partition}

    def _data_aws_sagemaker_prebuilt_ecr_image(self, args: dict[str, Any]) -> dict[str, Any]:
        repository = args["repository_name"]
        region = args.get("region") or self.region
        registries = PREBUILT_REGISTRIES.get(repository)
        if registries is None:
            raise HclError(f"aws_sagemaker_prebuilt_ecr_image: repository {repository!r} is not modelled locally")
        account = registries.get(region)
        if account is None:
            raise HclError(
                f"aws_sagemaker_prebuilt_ecr_image: no registry ID available for region ({region}) "
                f"and repository ({repository}); set sagemaker_image_uri"
            )
        suffix = args.get("dns_suffix") or self.dns_suffix
        tag = args.get("image_tag") or "1"
        path = f"{account}.dkr.ecr.{region}.{suffix}/{repository}:{tag}"
        return {"registry_id": account, "registry_path": path, "id": account, "region": region}

    def _data_aws_region(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"region": self.region, "name": self.region, "id": self.region}

    def _data_aws_caller_identity(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "arn": f"arn:{self.partition}:iam::{self.account_id}:user/scale-or-fail",
            "user_id": "AIDASCALEORFAIL",
            "id": self.account_id,
        }

    def _data_aws_iam_policy_document(self, args: dict[str, Any]) -> dict[str, Any]:
        document = policy_json(args)
        return {"json": document, "minified_json": json.dumps(json.loads(document), separators=(",", ":"))}

    def _data_archive_file(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("type") != "zip" or "source_dir" not in args:
            raise HclError("archive_file: only type = zip with source_dir is modelled")
        source = Path(self.root_dir, args["source_dir"])
        output = Path(self.root_dir, args["output_path"])
        if not self.build_archives:
            return {"output_base64sha256": Unknown("archive hash"), "output_size": Unknown("archive size")}
        archive = build_zip(source, output, tuple(args.get("excludes") or ()))
        return {
            "output_base64sha256": archive.base64sha256,
            "output_sha256": archive.sha256_hex,
            "output_size": archive.size,
            "output_path": args["output_path"],
            "id": archive.sha256_hex,
        }

    # -- managed resources ----------------------------------------------------------

    def _managed_aws_cloudwatch_log_group(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"arn": self.arn("logs", f"log-group:{args['name']}"), "id": args["name"]}

    def _managed_aws_iam_role(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args["name"]
        return {"arn": self.arn("iam", f"role/{name}", regional=False), "id": name, "unique_id": f"AROA{name[:16]}"}

    def _managed_aws_iam_role_policy(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"{args['role']}:{args['name']}"}

    def _managed_aws_lambda_function(self, args: dict[str, Any]) -> dict[str, Any]:
        arn = self.arn("lambda", f"function:{args['function_name']}")
        api = f"arn:{self.partition}:apigateway:{self.region}:lambda:path/2015-03-31/functions"
        return {
            "arn": arn,
            "qualified_arn": f"{arn}:$LATEST",
            "invoke_arn": f"{api}/{arn}/invocations",
            "version": "$LATEST",
            "id": args["function_name"],
        }

    def _managed_aws_sfn_state_machine(self, args: dict[str, Any]) -> dict[str, Any]:
        arn = self.arn("states", f"stateMachine:{args['name']}")
        return {"arn": arn, "id": arn}

    def _managed_aws_cloudwatch_dashboard(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args["dashboard_name"]
        return {"dashboard_arn": self.arn("cloudwatch", f"dashboard/{name}", regional=False), "id": name}

    def _managed_aws_cloudwatch_metric_alarm(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args["alarm_name"]
        return {"arn": self.arn("cloudwatch", f"alarm:{name}"), "id": name}

    def _managed_aws_cloudwatch_query_definition(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"query_definition_id": Unknown(f"query definition id of {args['name']}")}

    def _managed_aws_sns_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        arn = self.arn("sns", args["name"])
        return {"arn": arn, "id": arn}

    def _managed_aws_sns_topic_subscription(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"arn": Unknown("subscription arn (pending confirmation)")}

    # -- the SageMaker endpoint variant --------------------------------------------------

    def _managed_aws_s3_bucket(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("bucket")
        if not name:  # bucket_prefix: the provider appends a unique 26-character suffix; here a stable one
            prefix = args.get("bucket_prefix") or "terraform-"
            name = prefix + hashlib.sha256(f"{self.account_id}/{self.region}/{prefix}".encode()).hexdigest()[:26]
        return {
            "id": name,
            "bucket": name,
            "arn": f"arn:{self.partition}:s3:::{name}",
            "bucket_regional_domain_name": f"{name}.s3.{self.region}.amazonaws.com",
            "region": self.region,
        }

    def _managed_aws_s3_bucket_public_access_block(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": args["bucket"]}

    def _managed_aws_s3_bucket_server_side_encryption_configuration(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": args["bucket"]}

    def _managed_aws_s3_object(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": args["key"],
            "arn": f"arn:{self.partition}:s3:::{args['bucket']}/{args['key']}",
            "etag": Unknown("object etag"),
            "version_id": Unknown("object version"),
        }

    def _sagemaker(self, kind: str, name: str) -> dict[str, Any]:
        return {"arn": self.arn("sagemaker", f"{kind}/{name.lower()}"), "id": name, "name": name}

    def _managed_aws_sagemaker_model(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._sagemaker("model", args["name"])

    def _managed_aws_sagemaker_endpoint_configuration(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._sagemaker("endpoint-config", args["name"])

    def _managed_aws_sagemaker_endpoint(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._sagemaker("endpoint", args["name"])
