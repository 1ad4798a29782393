"""CloudFormation: stacks whose resources the other services' APIs serve.

* ``AWS::StepFunctions::StateMachine`` (``moto.stepfunctions.models.StateMachine`` handlers):
  into the backend the Step Functions API serves, with every property.
* ``AWS::Lambda::Function`` (``moto.awslambda.models.LambdaFunction`` handlers): environment
  values as strings, updates that work (inline ZipFile, ReservedConcurrentExecutions).
* ``AWS::SageMaker::Model`` / ``EndpointConfig`` / ``Endpoint``: their name properties
  (``cloudformation_name_type``).
* ``AWS::CloudWatch::Alarm`` (absent from moto 5.2.5): :func:`register_alarm_type` adds a
  ``CloudFormationModel`` subclass (moto finds resource types among its subclasses) and
  clears ``parsing.get_model_list`` / ``get_model_map`` / ``get_name_type_map``.
* Stacks through change sets (``aws cloudformation deploy``) as through CreateStack:
  ``CloudFormationBackend.create_stack`` / ``create_change_set`` / ``execute_change_set`` /
  ``update_stack``, ``Stack.create_resources`` and ``parsing.parse_and_update_resource``:
  unrecognized types refused, failures rolled back as on AWS, outputs refreshed.
"""

from __future__ import annotations

import contextlib
from typing import Any

from scaleorfail.emulator import cfn_props
from scaleorfail.emulator.moto_ext.core import declare, error_text, log, on_first_request, replace, state
from scaleorfail.emulator.settings import ACCOUNT_ID


def _cfn_read_s3(bucket: str, key: str, version: str | None) -> bytes:
    from moto.s3.models import s3_backends

    try:
        stored = s3_backends[ACCOUNT_ID]["aws"].get_object(bucket, key, version_id=version)
    except Exception:  # moto raises MissingBucket / MissingKey
        stored = None
    if stored is None:
        from moto.cloudformation.exceptions import ValidationError

        raise ValidationError(message=f"s3://{bucket}/{key} does not exist")
    return bytes(stored.value)


def _template_error(exc: cfn_props.TemplateError) -> Exception:
    from moto.cloudformation.exceptions import ValidationError

    return ValidationError(message=str(exc))


@on_first_request("cloudformation")
@declare(
    "moto.stepfunctions.models.StateMachine.create_from_cloudformation_json",
    why="into the parser backend the API serves (moto wrote stepfunctions_backends), with Definition, "
    "DefinitionSubstitutions, DefinitionS3Location, LoggingConfiguration, TracingConfiguration, StateMachineType",
)
@declare("moto.stepfunctions.models.StateMachine.update_from_cloudformation_json", why="updates, or replacement")
@declare("moto.stepfunctions.models.StateMachine.delete_from_cloudformation_json", why="from the parser backend")
@declare("moto.stepfunctions.models.StateMachine.get_cfn_attribute", why="Arn and StateMachineRevisionId")
@declare("moto.stepfunctions.models.StateMachine.has_cfn_attr", why="the attributes AWS has")
def _state_machine() -> None:
    """AWS::StepFunctions::StateMachine into the backend the Step Functions API serves.

    moto 5.2.5's ``StateMachine.create_from_cloudformation_json`` writes to
    ``stepfunctions_backends`` while, with the interpreter on, the API reads
    ``stepfunctions_parser_backends`` (``moto.stepfunctions.responses.get_backend``); it also
    ignores Definition, DefinitionSubstitutions, DefinitionS3Location, LoggingConfiguration,
    TracingConfiguration and StateMachineType.
    """
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend

    def create(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        try:
            request = cfn_props.state_machine_request(cloudformation_json["Properties"], resource_name, _cfn_read_s3)
        except cfn_props.TemplateError as exc:
            raise _template_error(exc) from None
        return get_backend(account_id, region_name).create_state_machine(**request)

    def update(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        try:
            request = cfn_props.state_machine_request(
                cloudformation_json["Properties"], original_resource.name, _cfn_read_s3
            )
        except cfn_props.TemplateError as exc:
            raise _template_error(exc) from None
        backend = get_backend(account_id, region_name)
        if request["name"] != original_resource.name or request["sm_type"] != original_resource.sm_type:
            replacement = backend.create_state_machine(**request)  # replacement: new first, then the old one goes
            backend.delete_state_machine(original_resource.arn)
            return replacement
        state_machine = backend.update_state_machine(
            original_resource.arn,
            definition=request["definition"],
            role_arn=request["roleArn"] or None,
            logging_configuration=request.get("loggingConfiguration"),
            tracing_configuration=request.get("tracingConfiguration"),
        )
        if request["tags"]:
            backend.tag_resource(state_machine.arn, request["tags"])
        return state_machine

    def delete(cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str) -> None:
        get_backend(account_id, region_name).delete_state_machine(resource_name)

    original_attribute = StateMachine.get_cfn_attribute

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        if attribute_name == "Arn":
            return self.arn
        if attribute_name == "StateMachineRevisionId":
            return getattr(self, "revision_id", None) or self.arn
        return original_attribute(self, attribute_name)

    def has_cfn_attr(cls: Any, /, attr: str) -> bool:
        return attr in ("Arn", "Name", "StateMachineRevisionId", "DefinitionString", "RoleArn", "StateMachineName")

    replace(StateMachine, "create_from_cloudformation_json", classmethod(create))
    replace(StateMachine, "update_from_cloudformation_json", classmethod(update))
    replace(StateMachine, "delete_from_cloudformation_json", classmethod(delete))
    replace(StateMachine, "get_cfn_attribute", get_cfn_attribute)
    replace(StateMachine, "has_cfn_attr", classmethod(has_cfn_attr))


@on_first_request("cloudformation")
@declare(
    "moto.awslambda.models.LambdaFunction.create_from_cloudformation_json",
    why="environment values as strings (Terraform and CloudFormation give numbers and booleans)",
)
@declare(
    "moto.awslambda.models.LambdaFunction.update_from_cloudformation_json",
    why="an inline ZipFile zipped (moto took it for base64), ReservedConcurrentExecutions applied",
)
def _lambda_function() -> None:
    """AWS::Lambda::Function: environment values as strings, and updates that work.

    ``LambdaFunction.update_from_cloudformation_json`` in moto 5.2.5 passes an inline
    ``ZipFile`` (plain source text) to ``update_function_code`` as if it were a base64 zip,
    and ignores ReservedConcurrentExecutions; ``_create_zipfile_from_plaintext_code`` makes
    the ``index.py`` zip CloudFormation makes.
    """
    import base64

    from moto.awslambda.models import LambdaFunction

    original_create = LambdaFunction.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        cloudformation_json = {
            **cloudformation_json,
            "Properties": cfn_props.lambda_properties(cloudformation_json["Properties"]),
        }
        return original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kw)

    def update(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = cfn_props.lambda_properties(cloudformation_json["Properties"])
        if new_resource_name != original_resource.function_name and "FunctionName" in properties:
            replacement = create(
                cls, new_resource_name, {**cloudformation_json, "Properties": properties}, account_id, region_name
            )
            original_resource.delete(account_id, region_name)
            return replacement
        original_resource.update_configuration(properties)
        code = dict(properties["Code"])
        if "ZipFile" in code:
            code["ZipFile"] = base64.b64encode(LambdaFunction._create_zipfile_from_plaintext_code(code["ZipFile"]))
        original_resource.update_function_code(code)
        reserved = properties.get("ReservedConcurrentExecutions")
        original_resource.reserved_concurrency = None if reserved is None else int(reserved)
        return original_resource

    replace(LambdaFunction, "create_from_cloudformation_json", classmethod(create))
    replace(LambdaFunction, "update_from_cloudformation_json", classmethod(update))


def _make_cfn_alarm_class() -> Any:
    """AWS::CloudWatch::Alarm (absent from moto 5.2.5): a ``CloudFormationModel`` over PutMetricAlarm."""
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    class CfnAlarm(CloudFormationModel):
        def __init__(self, name: str, arn: str) -> None:
            self.name = name
            self.arn = arn

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            if attribute_name == "Arn":
                return self.arn
            raise UnformattedGetAttTemplateException()

        @property
        def physical_resource_id(self) -> str:
            return self.name

        def is_created(self) -> bool:
            return True

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> CfnAlarm:
            try:
                request = cfn_props.alarm_request(cloudformation_json["Properties"], resource_name)
            except cfn_props.TemplateError as exc:
                raise _template_error(exc) from None
            alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(**request)
            return cls(alarm.name, alarm.alarm_arn)

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> CfnAlarm:
            try:
                request = cfn_props.alarm_request(cloudformation_json["Properties"], original_resource.name)
            except cfn_props.TemplateError as exc:
                raise _template_error(exc) from None
            if request["name"] != original_resource.name:
                original_resource.delete(account_id, region_name)
            alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(**request)
            return cls(alarm.name, alarm.alarm_arn)

        @classmethod
        def delete_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
        ) -> None:
            cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

        def delete(self, account_id: str, region_name: str) -> None:
            cloudwatch_backends[account_id][region_name].delete_alarms([self.name])

    return CfnAlarm


def _cfn_known_types() -> set[str]:
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    return set(get_model_map()) | set(NULL_MODELS)


def _cfn_validate_types(template: Any) -> None:
    """Unsupported resource types fail the request, as AWS fails an unrecognized type."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import Stack

    parsed = Stack.parse_template(template) if isinstance(template, str) else template
    if not isinstance(parsed, dict):
        raise ValidationError(message="Template format error: the template is not a JSON or YAML object")
    resources = parsed.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise ValidationError(message="Template format error: At least one Resources member must be defined.")
    types = [str(r.get("Type")) for r in resources.values() if isinstance(r, dict)]
    unknown = cfn_props.unrecognized_types(types, _cfn_known_types())
    if unknown:
        raise ValidationError(message=f"Template format error: Unrecognized resource types: [{', '.join(unknown)}]")


def _cfn_roll_back(stack: Any, kind: str, exc: Exception) -> None:
    """A failed create or update ends as on AWS: *_FAILED, then ROLLBACK_COMPLETE / UPDATE_ROLLBACK_COMPLETE."""
    log.warning("stack %s: %s failed: %s", stack.name, kind, exc)
    reason = error_text(exc)
    if kind == "CREATE":
        stack._add_stack_event("CREATE_FAILED", resource_status_reason=reason)
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
        with contextlib.suppress(Exception):  # best effort, as a rollback can also leave resources behind
            stack.resource_map.delete()
        stack._add_stack_event("ROLLBACK_COMPLETE")
        stack.status = "ROLLBACK_COMPLETE"
    else:
        stack._add_stack_event("UPDATE_FAILED", resource_status_reason=reason)
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
    stack.status_reason = reason


def _cfn_refresh_outputs(backend: Any, stack: Any) -> None:
    """What ``create_stack`` does and ``execute_change_set`` forgets: template, outputs, exports."""
    stack._parse_template()
    # Every parameter, defaults included, as text: what UsePreviousValue and "no changes" compare with.
    stack.parameters = {k: cfn_props.parameter_text(v) for k, v in stack.resource_map.resolved_parameters.items()}
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()
    for export in stack.exports:
        backend.exports[export.name] = export


@on_first_request("cloudformation")
@declare(
    "moto.sagemaker.models.Model.cloudformation_name_type", why="ModelName names the model (moto: a generated name)"
)
@declare(
    "moto.sagemaker.models.FakeEndpointConfig.cloudformation_name_type",
    why="EndpointConfigName names the config (moto: a generated name)",
)
@declare(
    "moto.sagemaker.models.FakeEndpoint.cloudformation_name_type",
    why="EndpointName names the endpoint (moto: a generated name)",
)
def _sagemaker_names() -> None:
    """The SageMaker types' name properties (before :func:`register_alarm_type` clears the caches).

    moto 5.2.5's ``Model`` / ``FakeEndpointConfig`` / ``FakeEndpoint`` answer "" from
    ``cloudformation_name_type``: ModelName, EndpointConfigName and EndpointName were ignored
    for generated names.
    """
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, Model

    for model, prop in (
        (Model, "ModelName"),
        (FakeEndpointConfig, "EndpointConfigName"),
        (FakeEndpoint, "EndpointName"),
    ):
        replace(model, "cloudformation_name_type", staticmethod(lambda prop=prop: prop))


@on_first_request("cloudformation")
@declare("moto.cloudformation.models.CloudFormationBackend.create_stack", why="unrecognized resource types refused")
@declare(
    "moto.cloudformation.models.Stack.create_resources",
    why="a failed create rolls back (CREATE_FAILED, ROLLBACK_COMPLETE); CreateStack itself succeeds",
)
@declare(
    "moto.cloudformation.models.CloudFormationBackend.create_change_set",
    why="unrecognized types refused; UsePreviousValue's typed parameters as text",
)
@declare(
    "moto.cloudformation.models.CloudFormationBackend.execute_change_set",
    why="only an AVAILABLE change set runs; a failure rolls back; template, outputs and exports refreshed",
)
@declare(
    "moto.cloudformation.models.CloudFormationBackend.update_stack",
    why="unrecognized types refused; a failed update rolls back (UPDATE_ROLLBACK_COMPLETE)",
)
@declare(
    "moto.cloudformation.parsing.parse_and_update_resource",
    why="a resource of a type without an update handler is kept (moto lost it from the stack)",
)
def _stacks() -> None:
    """Stacks through change sets (``aws cloudformation deploy``) as through CreateStack.

    moto 5.2.5 internals: ``CloudFormationBackend.create_stack`` / ``create_change_set`` /
    ``execute_change_set`` / ``update_stack`` / ``stacks``, ``Stack.create_resources`` /
    ``_parse_template`` / ``_create_output_map`` / ``_add_stack_event`` / ``resource_map``
    / ``output_map`` / ``exports`` / ``status``, ``ChangeSet.change_set_type`` / ``stack_id``
    / ``template`` / ``execution_status``, and ``parsing.get_model_list`` (an lru_cache of
    ``CloudFormationModel.__subclasses__()``, cleared by :func:`register_alarm_type`).
    """
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend, Stack

    original_create_stack = CloudFormationBackend.create_stack
    original_change_set = CloudFormationBackend.create_change_set
    original_execute = CloudFormationBackend.execute_change_set
    original_update = CloudFormationBackend.update_stack
    original_create_resources = Stack.create_resources

    def create_stack(self: Any, name: str, template: str, *args: Any, **kwargs: Any) -> Any:
        _cfn_validate_types(template)
        return original_create_stack(self, name, template, *args, **kwargs)

    def create_resources(self: Any) -> None:
        try:
            original_create_resources(self)
        except Exception as exc:  # the stack fails and rolls back; CreateStack itself succeeded
            _cfn_roll_back(self, "CREATE", exc)
            return
        self.parameters = {k: cfn_props.parameter_text(v) for k, v in self.resource_map.resolved_parameters.items()}

    def create_change_set(
        self: Any, stack_name: str, change_set_name: str, template: str, *args: Any, **kwargs: Any
    ) -> Any:
        _cfn_validate_types(template)
        if isinstance(kwargs.get("parameters"), dict):  # UsePreviousValue gave typed values: parameters are text
            kwargs["parameters"] = {k: cfn_props.parameter_text(v) for k, v in kwargs["parameters"].items()}
        return original_change_set(self, stack_name, change_set_name, template, *args, **kwargs)

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks[change_set.stack_id]
        if change_set.execution_status != "AVAILABLE":
            from moto.cloudformation.exceptions import ValidationError

            raise ValidationError(
                message=f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status "
                f"of [{change_set.execution_status}]"
            )
        try:
            original_execute(self, change_set_name, stack_name)
        except Exception as exc:
            change_set.execution_status = "EXECUTE_FAILED"
            _cfn_roll_back(stack, change_set.change_set_type, exc)
            return
        stack.template = change_set.template
        _cfn_refresh_outputs(self, stack)

    def update_stack(self: Any, name: str, template: str, *args: Any, **kwargs: Any) -> Any:
        _cfn_validate_types(template)
        stack = self.get_stack(name)
        try:
            return original_update(self, name, template, *args, **kwargs)
        except Exception as exc:
            _cfn_roll_back(stack, "UPDATE", exc)
            return stack

    original_update_resource = parsing.parse_and_update_resource

    def parse_and_update_resource(logical_id: str, resource_json: Any, resources_map: Any, **kwargs: Any) -> Any:
        # moto answers None for a type without an update handler, and the stack then lost the
        # resource (a later Fn::GetAtt found it "undefined"): such a resource is kept as it is.
        updated = original_update_resource(logical_id, resource_json, resources_map, **kwargs)
        return resources_map[logical_id] if updated is None else updated

    replace(parsing, "parse_and_update_resource", parse_and_update_resource)
    replace(CloudFormationBackend, "create_stack", create_stack)
    replace(Stack, "create_resources", create_resources)
    replace(CloudFormationBackend, "create_change_set", create_change_set)
    replace(CloudFormationBackend, "execute_change_set", execute_change_set)
    replace(CloudFormationBackend, "update_stack", update_stack)


@on_first_request("cloudformation")
def register_alarm_type() -> None:
    """AWS::CloudWatch::Alarm registered: after the patches (moto caches the types and their name properties)."""
    from moto.cloudformation import parsing

    state["CfnAlarm"] = _make_cfn_alarm_class()
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
