"""Step Functions tasks: Lambda and SageMaker called in-process by the ASL interpreter.

* ``...state_task.lambda_eval_utils._invoke_lambda_function`` / ``exec_lambda_function`` /
  ``execute_lambda_function_integration`` (with ``_mocked_invoke_lambda_function`` and
  ``LambdaFunctionErrorException``): a Lambda task calls the runtime through
  :func:`..awslambda.direct_invoke` (no boto3 client per task, no HTTP; a throttle is the
  429 ClientError AWS records), and the lambda:invoke result keeps AWS's SdkHttpMetadata /
  SdkResponseMetadata (the invocation's RequestId), which moto's ``select_from_typed_dict`` dropped.
* ``...state_task.service.state_task_service_aws_sdk.StateTaskServiceAwsSdk._eval_service_task``
  (``_get_boto_service_name`` / ``_get_boto_service_action``): the
  ``aws-sdk:sagemakerruntime:invokeEndpoint`` task calls :func:`..sagemaker.invoke_endpoint`;
  ``_normalise_exception_name`` and ``_SERVICE_ERROR_NAMES``: errors named
  ``SageMakerRuntime.ThrottlingException`` as Step Functions names them (moto 5.2.5 names
  every ClientError ``<service>.<service>Exception``).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from scaleorfail.emulator.moto_ext.awslambda import direct_invoke
from scaleorfail.emulator.moto_ext.core import declare, replace, replace_item
from scaleorfail.emulator.moto_ext.sagemaker import invoke_endpoint

LAMBDA_EVAL_UTILS = "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils"
AWS_SDK = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk"


@declare(f"{LAMBDA_EVAL_UTILS}._invoke_lambda_function", why="a Lambda task invokes in-process (no boto3, no HTTP)")
@declare(
    f"{LAMBDA_EVAL_UTILS}.exec_lambda_function",
    why="the arn:aws:lambda resource form, invoked in-process; FunctionError raised as moto does",
)
@declare(
    f"{LAMBDA_EVAL_UTILS}.execute_lambda_function_integration",
    why="lambda:invoke in-process, its result as AWS records it (SdkHttpMetadata / SdkResponseMetadata kept)",
)
def _lambda_tasks() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    def invoke_lambda_function(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        return direct_invoke(parameters, region)

    def exec_lambda_function(env: Any, parameters: dict[str, Any], region: str, account: str, credentials: Any) -> None:
        response = direct_invoke(parameters, region)
        if response.get("FunctionError"):
            payload = json.dumps(response["Payload"], separators=(",", ":"))
            raise lambda_eval_utils.LambdaFunctionErrorException(response["FunctionError"], payload)
        env.stack.append(response["Payload"])

    def execute_integration(env: Any, parameters: dict[str, Any], region: str, state_credentials: Any) -> None:
        """The lambda:invoke integration's result as AWS records it: moto kept only the InvocationResponse
        keys, dropping the SdkHttpMetadata / SdkResponseMetadata (the invocation's RequestId) AWS adds."""
        if env.is_mocked_mode():
            response = lambda_eval_utils._mocked_invoke_lambda_function(env=env)
        else:
            response = direct_invoke(parameters, region)
        if response.get("FunctionError"):
            payload = json.dumps(response["Payload"], separators=(",", ":"))
            raise lambda_eval_utils.LambdaFunctionErrorException(response["FunctionError"], payload)
        env.stack.append(response)

    replace(lambda_eval_utils, "_invoke_lambda_function", invoke_lambda_function)
    replace(lambda_eval_utils, "exec_lambda_function", exec_lambda_function)
    replace(lambda_eval_utils, "execute_lambda_function_integration", execute_integration)


@declare(
    f"{AWS_SDK}._SERVICE_ERROR_NAMES[sagemakerruntime]",
    adds=True,
    why="errors of the sagemakerruntime SDK integration named SageMakerRuntime.<Code>",
)
@declare(
    f"{AWS_SDK}.StateTaskServiceAwsSdk._normalise_exception_name",
    why='Step Functions names errors "<Service>.<ErrorCode>" (moto: "<service>.<service>Exception")',
)
@declare(
    f"{AWS_SDK}.StateTaskServiceAwsSdk._eval_service_task",
    why="aws-sdk:sagemakerruntime:invokeEndpoint served in-process by the endpoint runtime",
)
def _aws_sdk_tasks() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    replace_item(aws_sdk, "_SERVICE_ERROR_NAMES", "sagemakerruntime", "SageMakerRuntime")
    task_class = aws_sdk.StateTaskServiceAwsSdk
    original_eval = task_class._eval_service_task

    def normalise_exception_name(norm_service_name: str, ex: Exception) -> str:
        # Step Functions: "<Service>.<ErrorCode>", with an "Exception" suffix added when missing.
        name = ex.response["Error"]["Code"] if isinstance(ex, ClientError) else ex.__class__.__name__
        return f"{norm_service_name}.{name}" + ("" if name.endswith("Exception") else "Exception")

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        service, action = self._get_boto_service_name(), self._get_boto_service_action()
        if service not in ("sagemakerruntime", "sagemaker-runtime") or action != "invoke_endpoint":
            original_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        body = normalised_parameters.get("Body", "")
        if not isinstance(body, str):
            body = json.dumps(body)
        result = invoke_endpoint(
            str(normalised_parameters["EndpointName"]),
            body,
            str(normalised_parameters.get("ContentType") or "application/json"),
            str(normalised_parameters.get("Accept") or "application/json"),
            resource_runtime_part.region,
        )
        env.stack.append(
            {"Body": result.body, "ContentType": result.content_type, "InvokedProductionVariant": result.variant}
        )

    replace(task_class, "_normalise_exception_name", staticmethod(normalise_exception_name))
    replace(task_class, "_eval_service_task", eval_service_task)
