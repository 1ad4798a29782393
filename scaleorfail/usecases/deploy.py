"""Deploy the stack to a target (the emulator, or AWS with Terraform) with a set of variables; what is left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scaleorfail import target as targets


def deploy(target: targets.Target, variables: dict[str, Any], auto_approve: bool, tfvars: Path | None = None) -> None:
    if target.name == "local":
        from scaleorfail.deploy import local

        local.deploy(target, tfvars, variables)
    else:
        from scaleorfail.deploy import aws

        aws.deploy(target, tfvars, variables, auto_approve)


def leftover_resources(target: targets.Target) -> list[str]:
    """Anything of the pipeline still in the target, by listing every kind it deploys."""
    prefix_outputs = targets.read_outputs_file(target.name)
    prefix = str((prefix_outputs or {}).get("outputs", {}).get("name_prefix", "scale-or-fail"))
    found = []
    lam, sfn, logs, cw = (target.client(s) for s in ("lambda", "stepfunctions", "logs", "cloudwatch"))
    found += [f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(prefix)]
    found += [m["name"] for m in sfn.list_state_machines()["stateMachines"] if m["name"].startswith(prefix)]
    for group_prefix in (
        f"/aws/lambda/{prefix}",
        f"/aws/vendedlogs/states/{prefix}",
        f"/aws/sagemaker/Endpoints/{prefix}",
    ):
        found += [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=group_prefix)["logGroups"]]
    found += [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]]
    found += [d["DashboardName"] for d in cw.list_dashboards(DashboardNamePrefix=prefix)["DashboardEntries"]]
    found += [q["name"] for q in logs.describe_query_definitions(queryDefinitionNamePrefix=prefix)["queryDefinitions"]]
    sm = target.client("sagemaker")  # the embed_backend = "sagemaker" variant
    found += [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"].startswith(prefix)]
    found += [
        c["EndpointConfigName"]
        for c in sm.list_endpoint_configs()["EndpointConfigs"]
        if c["EndpointConfigName"].startswith(prefix)
    ]
    found += [m["ModelName"] for m in sm.list_models()["Models"] if m["ModelName"].startswith(prefix)]
    found += [b["Name"] for b in target.client("s3").list_buckets().get("Buckets", []) if b["Name"].startswith(prefix)]
    return found
