"""SageMaker: the serverless endpoint variant, served by the endpoint runtime.

* The endpoint's configuration and model bundle are read in-process:
  ``moto.sagemaker.models.sagemaker_backends`` (``endpoints``, ``endpoint_configs``,
  ``_models``; ``FakeEndpoint.endpoint_config_name`` / ``arn``,
  ``FakeEndpointConfig.production_variants``, ``Model.primary_container``) and
  ``moto.s3.models.s3_backends`` (``get_object(...).value`` / ``etag``).
* InvokeEndpoint: :class:`SageMakerRuntimeAPI`, a ``SageMakerRuntimeResponse`` subclass on
  moto's ``url_paths`` (reading ``body``, ``headers``, ``path``), served by
  :mod:`scaleorfail.emulator.endpoints`; :func:`invoke_endpoint` is the same call for the
  ``aws-sdk:sagemakerruntime:invokeEndpoint`` Step Functions task (``stepfunctions.tasks``).

CloudFormation's SageMaker name properties are in :mod:`.cloudformation`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError
from moto.core.exceptions import JsonRESTError
from moto.sagemakerruntime import urls as runtime_urls
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from scaleorfail.emulator.endpoints import ServeResult, endpoint_spec
from scaleorfail.emulator.moto_ext.core import client_error, declare, endpoint_runtime, override, replace_item
from scaleorfail.emulator.runtime import FunctionSpec, ThrottledError
from scaleorfail.emulator.settings import ACCOUNT_ID

INVOCATIONS_ROUTE = "{0}/endpoints/(?P<name>[^/]+)/invocations$"


_endpoint_specs: dict[tuple[Any, ...], FunctionSpec] = {}


def _endpoint_spec(account: str, region: str, name: str) -> FunctionSpec:
    """The endpoint's serving spec: its config's first variant, its model, the bundle from S3."""
    from moto.s3.models import s3_backends
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[account][region]
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        raise client_error("ValidationError", f"Endpoint {name} of account {account} not found.", 400, "InvokeEndpoint")
    config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    variant = config.production_variants[0] if config and config.production_variants else {}
    model = backend._models.get(variant.get("ModelName", ""))
    container = (model.primary_container if model else None) or {}
    url = str(container.get("ModelDataUrl") or "")
    if not url.startswith("s3://"):
        raise client_error("ModelError", f"endpoint {name}: its model has no s3:// ModelDataUrl", 424, "InvokeEndpoint")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    s3 = s3_backends[account]["aws"]
    try:
        stored = s3.get_object(bucket, key)
    except Exception:  # moto raises MissingBucket / MissingKey
        stored = None
    if stored is None:
        raise client_error("ModelError", f"endpoint {name}: model data {url} not found", 424, "InvokeEndpoint")
    serverless = variant.get("ServerlessConfig") or {}
    cache_key = (endpoint.arn, endpoint.endpoint_config_name, model.model_name if model else "", stored.etag)
    spec = _endpoint_specs.get(cache_key)
    if spec is None:
        code = bytes(stored.value)
        spec = _endpoint_specs[cache_key] = endpoint_spec(
            name=name,
            arn=endpoint.arn,
            variant=str(variant.get("VariantName") or "AllTraffic"),
            max_concurrency=int(serverless.get("MaxConcurrency") or 1000),  # instance variants: no cap modelled
            memory_mb=int(serverless.get("MemorySizeInMB") or 6144),
            environment={str(k): str(v) for k, v in (container.get("Environment") or {}).items()},
            code=code,
            code_sha256=hashlib.sha256(code).hexdigest(),
        )
    return spec


def invoke_endpoint(name: str, body: str, content_type: str, accept: str, region: str) -> ServeResult:
    """InvokeEndpoint in-process; ClientErrors as SageMaker Runtime returns them."""
    account = ACCOUNT_ID
    if name.startswith("arn:"):
        name = name.rsplit("/", 1)[-1]
    spec = _endpoint_spec(account, region, name)
    try:
        result = endpoint_runtime().serve(spec, body, content_type, accept)
    except ThrottledError as throttled:
        raise client_error(
            "ThrottlingException", f"Rate exceeded ({throttled.detail})", 400, "InvokeEndpoint"
        ) from None
    if result.error is not None:
        message = (
            f"Received {'server' if result.died else 'client'} error ({500 if not result.died else 0}) from primary "
            f'with message "{result.error.get("errorType")}: {result.error.get("errorMessage")}".'
        )
        raise client_error("ModelError", message, 424, "InvokeEndpoint", OriginalStatusCode=500)
    return result


@override(
    "moto.sagemakerruntime.responses.SageMakerRuntimeResponse.invoke_endpoint",
    why="InvokeEndpoint served by the endpoint runtime (moto answers a canned result); errors as SageMaker "
    "Runtime returns them",
)
def _invoke_endpoint(self: Any) -> Any:
    name = self.path.split("/")[2] if self.path.count("/") >= 3 else ""
    body = self.body.decode("utf-8", errors="replace") if isinstance(self.body, bytes) else str(self.body or "")
    content_type = self.headers.get("Content-Type") or "application/json"
    accept = self.headers.get("Accept") or "application/json"
    try:
        result = invoke_endpoint(name, body, content_type, accept, self.region)
    except ClientError as error:
        details = error.response["Error"]
        status = int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        raised = JsonRESTError(details["Code"], details["Message"])
        raised.code = status
        raise raised from None
    headers = {"Content-Type": result.content_type, "x-Amzn-Invoked-Production-Variant": result.variant}
    return 200, headers, result.body


class SageMakerRuntimeAPI(SageMakerRuntimeResponse):
    """moto's SageMaker Runtime API with InvokeEndpoint served by the endpoint runtime."""

    invoke_endpoint = _invoke_endpoint


@declare(
    f"moto.sagemakerruntime.urls.url_paths[{INVOCATIONS_ROUTE}]",
    why="InvokeEndpoint served by SageMakerRuntimeAPI (async invocations stay moto's)",
)
def _invocations_route() -> None:
    replace_item(runtime_urls, "url_paths", INVOCATIONS_ROUTE, SageMakerRuntimeAPI.dispatch)
