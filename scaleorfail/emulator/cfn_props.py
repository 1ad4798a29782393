"""CloudFormation resource properties -> the AWS API requests that create them.

Pure translation (no moto): what CloudFormation does between a template's
``Properties`` block and the service API - PascalCase to the API's member names,
``DefinitionSubstitutions``, number parameters turned into strings where the API wants
strings. :mod:`.moto_ext.cloudformation` calls these from the resource handlers it installs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from scaleorfail.emulator import asl_validation

SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_.:-]+)\}")


class TemplateError(ValueError):
    """The template asks for something CloudFormation would reject."""


def as_text(value: Any) -> str:
    """How CloudFormation renders a scalar where a string is expected (10 -> "10", True -> "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parameter_text(value: Any) -> str:
    """A stack parameter's value as CloudFormation holds it: text (a list joined with commas)."""
    if isinstance(value, list):
        return ",".join(as_text(v) for v in value)
    return as_text(value)


def substitute_definition(definition: str, substitutions: Mapping[str, Any] | None) -> str:
    """Replace ``${name}`` in a state machine definition by DefinitionSubstitutions[name].

    As on AWS, a ``${name}`` without a substitution is left as it is (it may be ASL text).
    """
    if not substitutions:
        return definition
    table = {str(k): as_text(v) for k, v in substitutions.items()}

    def replace(match: re.Match[str]) -> str:
        return table.get(match.group(1), match.group(0))

    return SUBSTITUTION.sub(replace, definition)


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def camel_keys(value: Any) -> Any:
    """{"Level": "ALL", "Destinations": [{"CloudWatchLogsLogGroup": ...}]} -> camelCase keys, recursively."""
    if isinstance(value, dict):
        return {_camel(str(k)): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


def state_machine_request(
    properties: Mapping[str, Any], default_name: str, read_s3: Callable[[str, str, str | None], bytes]
) -> dict[str, Any]:
    """AWS::StepFunctions::StateMachine properties -> CreateStateMachine parameters."""
    sources = [k for k in ("Definition", "DefinitionString", "DefinitionS3Location") if k in properties]
    if len(sources) != 1:
        raise TemplateError(
            "AWS::StepFunctions::StateMachine needs exactly one of Definition, DefinitionString, DefinitionS3Location"
        )
    if "Definition" in properties:
        definition = json.dumps(properties["Definition"])
    elif "DefinitionString" in properties:
        definition = str(properties["DefinitionString"])
    else:
        location = properties["DefinitionS3Location"]
        definition = read_s3(str(location["Bucket"]), str(location["Key"]), location.get("Version")).decode("utf-8")
    definition = substitute_definition(definition, properties.get("DefinitionSubstitutions"))
    found = asl_validation.diagnose(definition)
    if found:  # CloudFormation fails the resource with the service's own InvalidDefinition message
        raise TemplateError(asl_validation.message(found))
    request: dict[str, Any] = {
        "name": str(properties.get("StateMachineName") or default_name),
        "definition": definition,
        "roleArn": str(properties.get("RoleArn", "")),
        "sm_type": str(properties.get("StateMachineType") or "STANDARD"),
        "tags": [{"key": str(t["Key"]), "value": str(t["Value"])} for t in properties.get("Tags") or []],
    }
    if properties.get("LoggingConfiguration"):
        logging = camel_keys(properties["LoggingConfiguration"])
        logging.setdefault("level", "OFF")
        logging.setdefault("includeExecutionData", False)
        request["loggingConfiguration"] = logging
    if properties.get("TracingConfiguration"):
        request["tracingConfiguration"] = camel_keys(properties["TracingConfiguration"])
    return request


def lambda_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """AWS::Lambda::Function properties with environment values as strings (CloudFormation converts them)."""
    out = dict(properties)
    environment = out.get("Environment")
    if isinstance(environment, dict) and isinstance(environment.get("Variables"), dict):
        out["Environment"] = {
            **environment,
            "Variables": {str(k): as_text(v) for k, v in environment["Variables"].items()},
        }
    return out


ALARM_REQUIRED = ("ComparisonOperator", "EvaluationPeriods")
ALARM_FIELDS = {
    "AlarmDescription": "description",
    "Namespace": "namespace",
    "MetricName": "metric_name",
    "ComparisonOperator": "comparison_operator",
    "Statistic": "statistic",
    "ExtendedStatistic": "extended_statistic",
    "Unit": "unit",
    "TreatMissingData": "treat_missing_data",
    "EvaluateLowSampleCountPercentile": "evaluate_low_sample_count_percentile",
    "ThresholdMetricId": "threshold_metric_id",
}


def alarm_request(properties: Mapping[str, Any], default_name: str) -> dict[str, Any]:
    """AWS::CloudWatch::Alarm properties -> the keyword arguments of PutMetricAlarm."""
    missing = [k for k in ALARM_REQUIRED if k not in properties]
    if missing:
        raise TemplateError(f"AWS::CloudWatch::Alarm is missing required properties: {', '.join(missing)}")
    has_metric = "MetricName" in properties
    has_metrics = "Metrics" in properties
    if has_metric == has_metrics:
        raise TemplateError("AWS::CloudWatch::Alarm needs either MetricName or Metrics (not both)")
    if has_metric and ("Statistic" in properties) == ("ExtendedStatistic" in properties):
        raise TemplateError("AWS::CloudWatch::Alarm needs either Statistic or ExtendedStatistic")
    request: dict[str, Any] = {
        "name": str(properties.get("AlarmName") or default_name),
        "namespace": None,
        "metric_name": None,
        "statistic": None,
        "description": None,
        "dimensions": [
            {"Name": str(d["Name"]), "Value": as_text(d["Value"])} for d in properties.get("Dimensions") or []
        ],
        "alarm_actions": [str(a) for a in properties.get("AlarmActions") or []],
        "ok_actions": [str(a) for a in properties.get("OKActions") or []],
        "insufficient_data_actions": [str(a) for a in properties.get("InsufficientDataActions") or []],
        "evaluation_periods": int(properties["EvaluationPeriods"]),
        "period": int(properties["Period"]) if "Period" in properties else 0,
        "threshold": float(properties["Threshold"]) if "Threshold" in properties else 0.0,
        "datapoints_to_alarm": int(properties["DatapointsToAlarm"]) if "DatapointsToAlarm" in properties else None,
        "actions_enabled": bool(properties.get("ActionsEnabled", True)),
        "metric_data_queries": None,
    }
    for key, field in ALARM_FIELDS.items():
        if key in properties:
            request[field] = str(properties[key])
    if has_metrics:
        request["metric_data_queries"] = list(properties["Metrics"])
    return request


def unrecognized_types(resource_types: Iterable[str], known: set[str]) -> list[str]:
    """Resource types CloudFormation would reject ("Unrecognized resource types")."""
    return sorted(
        {
            t
            for t in resource_types
            if t not in known and not t.startswith("Custom::") and t != "AWS::CloudFormation::CustomResource"
        }
    )
