"""Every use of moto's internals, in one place.

Written against **moto == 5.2.5** (pinned exactly in pyproject.toml); :func:`install`
refuses any other version, because each patch below relies on a private detail:

Lambda
  * ``moto.awslambda.urls.url_paths`` and ``LambdaResponse``: GetAccountSettings added.
  * ``moto.awslambda.utils.get_backend`` (the Docker-less ``LambdaSimpleBackend`` when
    ``use_docker`` is off), ``LambdaBackend.invoke`` / ``LambdaSimpleBackend.invoke``
    and ``LambdaFunction`` attributes
    (``code_bytes``, ``code_sha_256``, ``handler``, ``run_time``, ``memory_size``,
    ``timeout``, ``environment_vars``, ``reserved_concurrency``, ``version``,
    ``function_arn``): invocations are served by our process runtime instead of Docker.
  * ``moto.awslambda.models.LambdaBackend.list_functions`` for account reservations.
Step Functions (moto's ASL interpreter, ``execute_state_machine``)
  * ``...state_task.lambda_eval_utils._invoke_lambda_function`` / ``exec_lambda_function``:
    Lambda tasks call the runtime in-process (no boto3 client per task, no HTTP).
  * ``...state_map.iteration.inline_iteration_component.InlineIterationComponent._eval_body``
    and ``InlineIterationComponentEvalInput``: the inline Map cap of 40.
  * ``...state_map.iteration.iteration_worker.IterationWorker._eval_pool``: a loop instead
    of one recursion per item (1,000+ items at low concurrency overflowed the stack).
  * ``...parser.backend.execution_worker.ExecutionWorker._get_evaluation_entrypoint`` /
    ``_execution_logic`` (``_evaluation_details.state_machine_details.definition``):
    parsed programs pooled per definition instead of an ANTLR parse per execution.
  * ``moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution``:
    unnamed executions, the 256 KB input limit.
  * ``...parser.backend.execution.Execution.start`` and
    ``BaseExecutionWorkerCommunication.terminated`` (``execution.state_machine.loggingConfiguration``,
    ``to_history_output``): AWS/States metrics and execution logging to CloudWatch Logs.
  * ``...parser.asl.utils.json_path.parse`` and ``...common.path.result_path.parse``
    (jsonpath_ng parsers, rebuilt per evaluation in 5.2.5): memoised.
  * ``StepFunctionResponse.list_executions`` (``ActionResult.result``): stopDate for TIMED_OUT.
  * ``moto.stepfunctions.responses.StepFunctionResponse.get_execution_history``:
    maxResults/nextToken/reverseOrder paging, as AWS pages (at most 1,000 events).
SageMaker (the serverless endpoint variant)
  * ``moto.sagemaker.models.sagemaker_backends`` (``endpoints``, ``endpoint_configs``,
    ``_models``; ``FakeEndpoint.endpoint_config_name`` / ``arn``,
    ``FakeEndpointConfig.production_variants``, ``Model.primary_container``) and
    ``moto.s3.models.s3_backends`` (``get_object(...).value`` / ``etag``): the endpoint's
    configuration and model bundle, read in-process.
  * ``moto.sagemakerruntime.responses.SageMakerRuntimeResponse.invoke_endpoint`` (``body``,
    ``headers``, ``_get_param``): InvokeEndpoint served by our endpoint runtime.
  * ``...state_task.service.state_task_service_aws_sdk.StateTaskServiceAwsSdk._eval_service_task``
    (``_get_boto_service_name`` / ``_get_boto_service_action``): the
    ``aws-sdk:sagemakerruntime:invokeEndpoint`` task calls the runtime in-process;
    ``_normalise_exception_name`` and ``_SERVICE_ERROR_NAMES``: errors named
    ``SageMakerRuntime.ThrottlingException`` as Step Functions names them (moto 5.2.5 names
    every ClientError ``<service>.<service>Exception``).
CloudWatch
  * ``moto.cloudwatch.models.CloudWatchBackend.metric_data`` / ``MetricDatum`` (writing
    metrics) and ``get_metric_data`` (replaced: percentiles, one pass per query).
Logs
  * ``moto.logs.models.LogsBackend`` groups/streams and ``put_log_events`` (writing logs);
    ``moto.logs.models.execute_query`` (replaced by our Logs Insights engine);
    ``moto.logs.responses.LogsResponse`` gains Put/Describe/DeleteQueryDefinition(s).
Reads
  * ``LogsResponse.call_action`` / ``CloudWatchResponse.call_action`` (from
    ``moto.core.responses.BaseResponse``): flush the write-behind sink first.
Config
  * ``moto.core.config.default_user_config`` (interpreter on, Docker off).
Reliability (issue 12)
  * ``moto.core.common_models.BaseModel.__new__`` / ``instances_tracked``
    (``moto.core.model_instances.model_data``): model instances no longer kept forever.
  * ``moto.awslambda.models.LambdaFunction._set_function_code`` (``code_bytes``, ``code``):
    unsafe or broken zips refused at CreateFunction / UpdateFunctionCode.
  * ``BaseExecutionWorkerCommunication.terminated``, ``Execution.exec_worker.env``
    (``event_manager``, ``callback_pool_manager``, ``map_run_record_pool_manager``),
    ``StateMachine.executions``, ``StepFunctionsParserBackend.start_execution`` /
    ``describe_execution``, ``parser.utils.TMP_THREADS``: finished executions packed and
    evicted past the retention.
  * ``LogsBackend.groups`` / ``LogStream.events`` and ``CloudWatchBackend.metric_data``:
    trimmed, oldest first, past the retention counts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import moto
from botocore.exceptions import ClientError

from scaleorfail.emulator import cwstats, insights
from scaleorfail.emulator.endpoints import EndpointRuntime, ServeResult, endpoint_spec
from scaleorfail.emulator.runtime import Datum, FunctionSpec, LambdaRuntime, ThrottledError
from scaleorfail.emulator.settings import ACCOUNT_ID, EmulatorSettings

MOTO_VERSION = "5.2.5"
INLINE_MAP_CAP = 40
MAX_PAYLOAD_BYTES = 256 * 1024
HISTORY_PAGE_MAX = 1000
PROGRAM_POOL_SIZE = 256
THREADS_PRUNE_AT = 2048

_state: dict[str, Any] = {}
_install_lock = threading.Lock()


def _replace(owner: Any, name: str, new: Any) -> Any:
    """Monkeypatch owner.name with new; returns what was there."""
    original = getattr(owner, name, None)
    setattr(owner, name, new)
    return original


def runtime() -> LambdaRuntime:
    value = _state.get("runtime")
    if value is None:
        raise RuntimeError("the emulator extensions are not installed")
    assert isinstance(value, LambdaRuntime)
    return value


# -- sink: logs and metrics into moto's backends ------------------------------------------


class MotoSink:
    """Writes logs and metrics into moto's CloudWatch Logs and CloudWatch, write-behind.

    Invocations only queue their records; a flusher thread writes them every
    FLUSH_INTERVAL_S (as CloudWatch itself shows data after a short delay), and every
    read path (GetMetricData, Logs Insights, GetLogEvents ...) flushes first, so what a
    client reads always includes everything that happened before its request.
    """

    FLUSH_INTERVAL_S = 0.25

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._logs: list[tuple[str, str, list[tuple[int, str]]]] = []
        self._metrics: list[tuple[str, Datum]] = []
        threading.Thread(target=self._flush_forever, name="cloudwatch-sink", daemon=True).start()

    def log_events(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        with self._lock:
            self._logs.append((group, stream, events))

    def metrics(self, namespace: str, data: list[Datum]) -> None:
        with self._lock:
            self._metrics.extend((namespace, d) for d in data)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_INTERVAL_S)
            self.flush()

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                logs, self._logs = self._logs, []
                metrics, self._metrics = self._metrics, []
            if logs:
                self._write_logs(logs)
            if metrics:
                self._write_metrics(metrics)
            trimmer = _state.get("trimmer")
            if trimmer is not None and (logs or metrics):
                trimmer.maybe_trim()  # under the flush lock: no write of ours can land in a list being replaced

    def _write_logs(self, batches: list[tuple[str, str, list[tuple[int, str]]]]) -> None:
        from moto.logs.models import logs_backends

        backend = logs_backends[self.account_id][self.region]
        by_stream: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for group, stream, events in batches:
            by_stream.setdefault((group, stream), []).extend(events)
        for (group, stream), events in by_stream.items():
            if group not in backend.groups:
                backend.create_log_group(group, {})
            log_group = backend.groups[group]
            if stream not in log_group.streams:
                log_group.create_log_stream(stream)
            ordered = sorted(events, key=lambda e: e[0])
            backend.put_log_events(group, stream, [{"timestamp": t, "message": m} for t, m in ordered])

    def _write_metrics(self, data: list[tuple[str, Datum]]) -> None:
        from moto.cloudwatch.models import MetricDatum, cloudwatch_backends

        backend = cloudwatch_backends[self.account_id][self.region]
        # Appended directly (what put_metric_data does after validating), to keep this cheap.
        backend.metric_data.extend(self._datum(MetricDatum, namespace, d) for namespace, d in data)

    _dimensions: ClassVar[dict[tuple[tuple[str, str], ...], list[Any]]] = {}

    def _datum(self, kind: Any, namespace: str, d: Datum) -> Any:
        """A moto MetricDatum whose Dimension list is shared with every datum of the same dimensions (memory)."""
        key = tuple(d.dimensions.items())
        datum = kind(
            namespace=namespace,
            name=d.name,
            value=float(d.value),
            dimensions=[] if key in self._dimensions else [{"Name": k, "Value": v} for k, v in key],
            timestamp=d.timestamp.astimezone(UTC).replace(tzinfo=None),  # moto keeps naive UTC
            unit=d.unit,
        )
        datum.dimensions = self._dimensions.setdefault(key, datum.dimensions)
        return datum


def flush_sink() -> None:
    sink = _state.get("sink")
    if sink is not None:
        sink.flush()


# -- Lambda ------------------------------------------------------------------------------------


def function_spec(fn: Any) -> FunctionSpec:
    reserved = fn.reserved_concurrency
    return FunctionSpec(
        name=fn.function_name,
        arn=fn.function_arn,
        version=str(fn.version),
        handler=fn.handler or "",
        runtime=fn.run_time or "python3.12",
        memory_mb=int(fn.memory_size),
        timeout_s=float(fn.timeout),
        environment={str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
        code_sha256=fn.code_sha_256 or "none",
        reserved_concurrency=None if reserved is None else int(reserved),
        code=fn.code_bytes or b"",
    )


def _lambda_backend(account_id: str, region: str) -> Any:
    from moto.awslambda.utils import get_backend  # the Docker-less backend, as configured

    return get_backend(account_id, region)


RESERVATIONS_TTL_S = 1.0
_reservations_cache: dict[tuple[str, str], tuple[float, dict[str, int]]] = {}


def reservations(account_id: str, region: str) -> dict[str, int]:
    """Reserved concurrency of every function (re-read at most once a second: it is on the hot path)."""
    now = time.monotonic()
    cached = _reservations_cache.get((account_id, region))
    if cached is not None and now - cached[0] < RESERVATIONS_TTL_S:
        return cached[1]
    backend = _lambda_backend(account_id, region)
    table = {
        fn.function_name: int(fn.reserved_concurrency)
        for fn in backend.list_functions()
        if fn.reserved_concurrency is not None
    }
    _reservations_cache[(account_id, region)] = (now, table)
    return table


_specs: dict[tuple[Any, ...], FunctionSpec] = {}


def cached_spec(fn: Any) -> FunctionSpec:
    """The FunctionSpec of a moto function, rebuilt only when its code or configuration changed."""
    # moto's update_configuration does not touch last_modified: key on the configuration itself.
    key = (
        fn.function_arn,
        fn.version,
        fn.code_sha_256,
        fn.reserved_concurrency,
        fn.memory_size,
        fn.timeout,
        fn.handler,
        fn.run_time,
        tuple(sorted((fn.environment_vars or {}).items())),
    )
    spec = _specs.get(key)
    if spec is None:
        spec = _specs[key] = function_spec(fn)
    return spec


class TooManyRequestsError(Exception):
    """Placeholder replaced in install() by a moto JsonRESTError subclass (HTTP 429)."""


def _make_http_error_classes() -> None:
    from moto.core.exceptions import JsonRESTError

    class LambdaTooManyRequestsError(JsonRESTError):
        code = 429

        def __init__(self, reason: str, detail: str) -> None:
            super().__init__("TooManyRequestsException", "Rate Exceeded.")
            self.description = json.dumps(
                {"__type": "TooManyRequestsException", "message": "Rate Exceeded.", "Reason": reason, "Type": "User"}
            )

    _state["TooManyRequests"] = LambdaTooManyRequestsError


def _split_function_arn(name: str, default_account: str, default_region: str) -> tuple[str, str]:
    parts = name.split(":")
    if len(parts) >= 7 and parts[2] == "lambda":
        return parts[4], parts[3]
    return default_account, default_region


def _backend_invoke(
    self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes | None:
    """LambdaBackend.invoke: the Invoke API (HTTP) served by the process runtime."""
    fn = self.get_function(function_name, qualifier)
    spec = cached_spec(fn)
    payload = body.encode("utf-8") if isinstance(body, str) else (body or b"{}")
    invocation_type = headers.get("X-Amz-Invocation-Type", "RequestResponse")
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        threading.Thread(target=_invoke_quietly, args=(spec, payload), daemon=True).start()
        return b""
    try:
        result = runtime().invoke(spec, payload)
    except ThrottledError as throttled:
        raise _state["TooManyRequests"](throttled.reason, throttled.detail) from None
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    import base64

    response_headers["x-amz-log-result"] = base64.b64encode(result.log_tail.encode("utf-8")).decode("ascii")
    response_headers["x-amz-executed-version"] = result.executed_version
    response_headers["Content-Length"] = str(len(result.payload))
    return result.payload


def _invoke_quietly(spec: FunctionSpec, payload: bytes) -> None:
    with contextlib.suppress(ThrottledError):  # the throttle is already counted in the metrics
        runtime().invoke(spec, payload)


def _client_error(code: str, message: str, status: int, operation: str = "Invoke", **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())},
        **extra,
    }
    return ClientError(response, operation)


def _direct_invoke(parameters: dict[str, Any], region: str) -> dict[str, Any]:
    """Invoke from a Step Functions task, in-process (same semantics as the API)."""
    name = str(parameters["FunctionName"])
    account, fn_region = _split_function_arn(name, ACCOUNT_ID, region)
    backend = _lambda_backend(account, fn_region)
    try:
        fn = backend.get_function(name, parameters.get("Qualifier"))
    except Exception as exc:  # moto raises UnknownFunctionException
        raise _client_error("ResourceNotFoundException", f"Function not found: {name} ({exc})", 404) from None
    payload = parameters.get("Payload")
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    try:
        result = runtime().invoke(cached_spec(fn), payload or b"{}")
    except ThrottledError as throttled:
        raise _client_error(
            "TooManyRequestsException", f"Rate Exceeded. ({throttled.detail})", 429, Reason=throttled.reason
        ) from None
    response: dict[str, Any] = {
        "StatusCode": 200,
        "ExecutedVersion": result.executed_version,
        "Payload": result.body,
    }
    if result.function_error:
        response["FunctionError"] = result.function_error
    return response


def _patch_account_settings() -> None:
    """GetAccountSettings (absent from moto 5.2.5): the emulator's account concurrency limit."""
    from moto.awslambda import urls
    from moto.awslambda.responses import LambdaResponse

    route = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"
    urls.url_paths.setdefault(route, LambdaResponse.dispatch)

    def get_account_settings(self: Any) -> Any:
        functions = list(_lambda_backend(self.current_account, self.region).list_functions())
        reserved = sum(int(f.reserved_concurrency) for f in functions if f.reserved_concurrency is not None)
        code = sum(len(f.code_bytes or b"") for f in functions)
        body = {
            "AccountLimit": {
                "TotalCodeSize": 80530636800,
                "CodeSizeUnzipped": 262144000,
                "CodeSizeZipped": 52428800,
                "ConcurrentExecutions": runtime().settings.account_concurrency,
                "UnreservedConcurrentExecutions": runtime().settings.account_concurrency - reserved,
            },
            "AccountUsage": {"TotalCodeSize": code, "FunctionCount": len(functions)},
        }
        return 200, {}, json.dumps(body)

    _replace(LambdaResponse, "get_account_settings", get_account_settings)


def _patch_lambda() -> None:
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    _replace(LambdaBackend, "invoke", _backend_invoke)
    _replace(LambdaSimpleBackend, "invoke", _backend_invoke)

    def invoke_lambda_function(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        return _direct_invoke(parameters, region)

    def exec_lambda_function(env: Any, parameters: dict[str, Any], region: str, account: str, credentials: Any) -> None:
        response = _direct_invoke(parameters, region)
        if response.get("FunctionError"):
            payload = json.dumps(response["Payload"], separators=(",", ":"))
            raise lambda_eval_utils.LambdaFunctionErrorException(response["FunctionError"], payload)
        env.stack.append(response["Payload"])

    _replace(lambda_eval_utils, "_invoke_lambda_function", invoke_lambda_function)
    _replace(lambda_eval_utils, "exec_lambda_function", exec_lambda_function)


# -- SageMaker endpoints ------------------------------------------------------------------------


def endpoint_runtime() -> EndpointRuntime:
    value = _state.get("endpoints")
    if not isinstance(value, EndpointRuntime):
        raise RuntimeError("the emulator extensions are not installed")
    return value


_endpoint_specs: dict[tuple[Any, ...], FunctionSpec] = {}


def _endpoint_spec(account: str, region: str, name: str) -> FunctionSpec:
    """The endpoint's serving spec: its config's first variant, its model, the bundle from S3."""
    from moto.s3.models import s3_backends
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[account][region]
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        raise _client_error(
            "ValidationError", f"Endpoint {name} of account {account} not found.", 400, "InvokeEndpoint"
        )
    config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    variant = config.production_variants[0] if config and config.production_variants else {}
    model = backend._models.get(variant.get("ModelName", ""))
    container = (model.primary_container if model else None) or {}
    url = str(container.get("ModelDataUrl") or "")
    if not url.startswith("s3://"):
        raise _client_error(
            "ModelError", f"endpoint {name}: its model has no s3:// ModelDataUrl", 424, "InvokeEndpoint"
        )
    bucket, _, key = url.removeprefix("s3://").partition("/")
    s3 = s3_backends[account]["aws"]
    try:
        stored = s3.get_object(bucket, key)
    except Exception:  # moto raises MissingBucket / MissingKey
        stored = None
    if stored is None:
        raise _client_error("ModelError", f"endpoint {name}: model data {url} not found", 424, "InvokeEndpoint")
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
        raise _client_error(
            "ThrottlingException", f"Rate exceeded ({throttled.detail})", 400, "InvokeEndpoint"
        ) from None
    if result.error is not None:
        message = (
            f"Received {'server' if result.died else 'client'} error ({500 if not result.died else 0}) from primary "
            f'with message "{result.error.get("errorType")}: {result.error.get("errorMessage")}".'
        )
        raise _client_error("ModelError", message, 424, "InvokeEndpoint", OriginalStatusCode=500)
    return result


def _patch_sagemaker_runtime() -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    def respond(self: Any) -> Any:
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

    _replace(SageMakerRuntimeResponse, "invoke_endpoint", respond)


def _patch_aws_sdk_tasks() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    aws_sdk._SERVICE_ERROR_NAMES.setdefault("sagemakerruntime", "SageMakerRuntime")
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

    _replace(task_class, "_normalise_exception_name", staticmethod(normalise_exception_name))
    _replace(task_class, "_eval_service_task", eval_service_task)


# -- Step Functions ---------------------------------------------------------------------------


def _patch_map_cap() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import inline_iteration_component
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.max_concurrency import (
        DEFAULT_MAX_CONCURRENCY_VALUE,
    )

    component = inline_iteration_component.InlineIterationComponent
    original = component._eval_body

    def capped_eval_body(self: Any, env: Any) -> None:
        eval_input = env.stack[-1]
        requested = eval_input.max_concurrency
        items = len(eval_input.input_items)
        wanted = items if requested == DEFAULT_MAX_CONCURRENCY_VALUE else requested
        capped = max(1, min(wanted, INLINE_MAP_CAP, max(items, 1)))
        if capped != requested:
            env.stack[-1] = inline_iteration_component.InlineIterationComponentEvalInput(
                state_name=eval_input.state_name,
                max_concurrency=capped,
                input_items=eval_input.input_items,
                parameters=eval_input.parameters,
                item_selector=eval_input.item_selector,
            )
            for attribute, value in vars(eval_input).items():  # subclasses carry more fields
                if not hasattr(env.stack[-1], attribute):
                    setattr(env.stack[-1], attribute, value)
        original(self, env)

    _replace(component, "_eval_body", capped_eval_body)


def _patch_program_pool() -> None:
    """Each execution re-parsed its definition with ANTLR (~30 ms of CPU per StartExecution).

    Parsed programs are kept in a pool per definition and reused - by one execution at a
    time, since a few components (Parallel's branches) keep per-run fields.
    """
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    pools: dict[str, list[Any]] = {}
    lock = threading.Lock()
    original_logic: Any = ExecutionWorker._execution_logic

    def get_evaluation_entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            pool = pools.get(definition)
            program = pool.pop() if pool else None
        if program is None:
            program = AmazonStateLanguageParser.parse(definition)[0]
        self._sof_program = (definition, program)
        return program

    def execution_logic(self: Any) -> Any:
        try:
            return original_logic(self)
        finally:
            taken = getattr(self, "_sof_program", None)
            if taken is not None:
                with lock:
                    pool = pools.setdefault(taken[0], [])
                    if len(pool) < PROGRAM_POOL_SIZE:
                        pool.append(taken[1])

    _replace(ExecutionWorker, "_get_evaluation_entrypoint", get_evaluation_entrypoint)
    _replace(ExecutionWorker, "_execution_logic", execution_logic)


def _patch_iteration_loop() -> None:
    """IterationWorker._eval_pool recurses once per item a worker processes: a Map of 1,000+
    items at low concurrency overflows the stack and the execution hangs. Same logic, as a loop."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (
        IterationWorker,
    )

    def eval_pool(self: Any, job: Any, worker_frame: Any) -> None:
        while True:
            if job is None:
                self._env.close_frame(worker_frame)
                return
            job_frame = worker_frame.open_inner_frame()
            self._eval_job(env=job_frame, job=job)
            worker_frame.close_frame(job_frame)
            if isinstance(job.job_output, Exception) or self.stopped():
                self._env.close_frame(worker_frame)
                self._job_pool.close_job(job)
                return
            next_job = self._job_pool.next_job()
            if next_job is None:
                worker_frame.event_history_context.source_event_id = (
                    job_frame.event_history_context.last_published_event_id
                )
                self._env.close_frame(worker_frame)
                self._job_pool.close_job(job)
                return
            self._job_pool.close_job(job)
            job = next_job

    _replace(IterationWorker, "_eval_pool", eval_pool)


def _patch_start_execution() -> None:
    from moto.stepfunctions.exceptions import InvalidExecutionInput
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, trace_header: Any = None
    ) -> Any:
        if execution_input is not None and len(execution_input.encode("utf-8")) > MAX_PAYLOAD_BYTES:
            raise InvalidExecutionInput(
                f"The input is {len(execution_input.encode('utf-8'))} bytes; the maximum is {MAX_PAYLOAD_BYTES} bytes."
            )
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    _replace(StepFunctionsParserBackend, "start_execution", start_execution)


def _states_metric(execution: Any, name: str, value: float, unit: str = "Count") -> None:
    sink: MotoSink = _state["sink"]
    arn = execution.state_machine.arn
    sink.metrics("AWS/States", [Datum(name, value, unit, {"StateMachineArn": arn}, datetime.now(UTC))])


def _patch_execution_metrics() -> None:
    from moto.stepfunctions.parser.backend import execution as execution_module

    execution_class = execution_module.Execution
    original_start = execution_class.start

    def start(self: Any) -> None:
        _states_metric(self, "ExecutionsStarted", 1)
        original_start(self)

    _replace(execution_class, "start", start)

    comm_class = execution_module.BaseExecutionWorkerCommunication
    original_terminated = comm_class.terminated
    names = {
        "SUCCEEDED": "ExecutionsSucceeded",
        "FAILED": "ExecutionsFailed",
        "TIMED_OUT": "ExecutionsTimedOut",
        "ABORTED": "ExecutionsAborted",
    }

    def terminated(self: Any) -> None:
        original_terminated(self)
        execution = self.execution
        try:
            _log_execution(execution)
        except Exception:  # logging must never break an execution
            import logging

            logging.getLogger("scale-or-fail").exception("could not write the execution log")
        status = str(getattr(execution.exec_status, "value", execution.exec_status))
        if status in names:
            _states_metric(execution, names[status], 1)
            if execution.stop_date and execution.start_date:
                elapsed = (execution.stop_date - execution.start_date).total_seconds() * 1000.0
                _states_metric(execution, "ExecutionTime", elapsed, "Milliseconds")

    _replace(comm_class, "terminated", terminated)


def _patch_list_executions_stop_date() -> None:
    """moto 5.2.5 leaves stopDate out of ListExecutions for TIMED_OUT executions; AWS includes it."""
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.list_executions

    def list_executions(self: Any) -> Any:
        result = original(self)
        items = result.result.get("executions", []) if isinstance(result.result, dict) else []
        missing = [i for i in items if i.get("status") == "TIMED_OUT" and "stopDate" not in i]
        for item in missing:
            execution = self.stepfunction_backend.describe_execution(item["executionArn"])
            if execution.stop_date:
                item["stopDate"] = execution.stop_date
        return result

    _replace(StepFunctionResponse, "list_executions", list_executions)


ERROR_EVENTS = ("Failed", "TimedOut", "Aborted")


def _log_execution(execution: Any) -> None:
    """Step Functions execution logging: history events as JSON lines in the configured log group.

    AWS delivers them as they happen; here they are written when the execution ends. The
    level works as on AWS: ALL (every event), ERROR (failures), FATAL (execution failures).
    """
    config = getattr(execution.state_machine, "loggingConfiguration", None) or {}
    level = config.get("level", "OFF")
    destinations = config.get("destinations") or []
    if level == "OFF" or not destinations:
        return
    arn = destinations[0].get("cloudWatchLogsLogGroup", {}).get("logGroupArn", "")
    group = arn.split(":log-group:", 1)[-1].removesuffix(":*")
    include_data = bool(config.get("includeExecutionData"))
    events = execution.to_history_output().get("events", [])
    lines: list[tuple[int, str]] = []
    for event in events:
        kind = str(getattr(event["type"], "value", event["type"]))
        if level == "ERROR" and not kind.endswith(ERROR_EVENTS):
            continue
        if level == "FATAL" and kind not in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            continue
        details = next((dict(v) for k, v in event.items() if k.endswith("EventDetails")), {})
        if not include_data:
            for key in ("input", "output", "parameters"):
                details.pop(key, None)
        moment = event["timestamp"]
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        stamp = int(moment.timestamp() * 1000) if hasattr(moment, "timestamp") else int(moment)
        record = {
            "id": str(event["id"]),
            "type": kind,
            "details": details,
            "previous_event_id": str(event.get("previousEventId", 0)),
            "event_timestamp": str(stamp),
            "execution_arn": execution.exec_arn,
            "redrive_count": "0",
        }
        lines.append((stamp, json.dumps(record, default=str, separators=(",", ":"))))
    stream = f"states/{execution.state_machine.name}/{datetime.now(UTC):%Y-%m-%d-%H-%M}/{execution.name}"
    _state["sink"].log_events(group, stream, lines)


def _patch_history_paging() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def get_execution_history(self: Any) -> Any:
        execution_arn = self._get_param("executionArn")
        max_results = self._get_int_param("maxResults") or HISTORY_PAGE_MAX
        max_results = max(1, min(int(max_results), HISTORY_PAGE_MAX))
        reverse = bool(self._get_param("reverseOrder"))
        token = self._get_param("nextToken")
        history = self.stepfunction_backend.get_execution_history(execution_arn)
        events = list(history["events"])
        if reverse:
            events.reverse()
        start = 0
        if token:
            try:
                start = int(str(token).rsplit(":", 1)[1])
            except (IndexError, ValueError):
                from moto.stepfunctions.exceptions import InvalidToken

                raise InvalidToken("the nextToken does not belong to this history") from None
        page = events[start : start + max_results]
        result: dict[str, Any] = {"events": page}
        if start + max_results < len(events):
            result["nextToken"] = f"{execution_arn}:{start + max_results}"
        return ActionResult(result)

    _replace(StepFunctionResponse, "get_execution_history", get_execution_history)


def _patch_jsonpath_cache() -> None:
    """moto's interpreter re-parses every JSONPath (building a ply parser) at each use: memoise it."""
    import functools

    from jsonpath_ng.ext.parser import parse as parse_extended
    from jsonpath_ng.parser import parse as parse_plain
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    _replace(json_path, "parse", functools.lru_cache(maxsize=4096)(parse_extended))
    _replace(result_path, "parse", functools.lru_cache(maxsize=4096)(parse_plain))


# -- CloudWatch and Logs ------------------------------------------------------------------------


def _patch_cloudwatch() -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    def get_metric_data(
        self: Any,
        queries: list[dict[str, Any]],
        start_time: datetime,
        end_time: datetime,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        flush_sink()
        wanted = {
            (q["MetricStat"]["Metric"]["Namespace"], q["MetricStat"]["Metric"]["MetricName"])
            for q in queries
            if "MetricStat" in q
        }
        data = [
            cwstats.Point(
                namespace=md.namespace,
                name=md.name,
                dimensions=tuple(sorted((d.name, d.value) for d in md.dimensions)),
                timestamp=md.timestamp,
                values=_values(md),
                unit=md.unit,
            )
            for md in self.get_all_metrics()
            if (md.namespace, md.name) in wanted
        ]
        results = cwstats.get_metric_data(data, queries, start_time, end_time, scan_by)
        expressions = [q for q in queries if "Expression" in q and not str(q["Expression"]).startswith("SELECT")]
        if expressions:
            from moto.cloudwatch.metric_data_expression_parser import parse_expression

            for query in expressions:
                values, timestamps = parse_expression(query["Expression"], results)
                results.append(
                    {
                        "id": query["Id"],
                        "label": query.get("Label") or query["Id"],
                        "values": values,
                        "timestamps": timestamps,
                        "status_code": "Complete",
                        "return_data": query.get("ReturnData", True),
                    }
                )
        return [{k: v for k, v in r.items() if k != "return_data"} for r in results if r["return_data"]]

    _replace(CloudWatchBackend, "get_metric_data", get_metric_data)


def _values(md: Any) -> tuple[float, ...] | cwstats.Aggregate:
    if hasattr(md, "value"):
        return (float(md.value),)
    return cwstats.Aggregate(
        sample_count=float(md.sample_count), total=float(md.sum), minimum=float(md.min), maximum=float(md.max)
    )


def _patch_logs_insights() -> None:
    from moto.logs import models as logs_models

    def execute_query(log_groups: list[Any], query: str, start_time: int, end_time: int) -> list[dict[str, Any]]:
        flush_sink()
        events = [
            insights.Event(
                timestamp=event.timestamp,
                message=event.message,
                log_stream=stream_name,
                log_group=group.name,
                ingestion_time=getattr(event, "ingestion_time", event.timestamp),
            )
            for group in log_groups
            for stream_name, stream in list(group.streams.items())
            for event in list(stream.events)
        ]
        return insights.run(query, events, start_time * 1000, end_time * 1000 + 999)

    _replace(logs_models, "execute_query", execute_query)


def _patch_read_your_writes() -> None:
    """Reads of logs and metrics see every record queued before the request."""
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.logs.responses import LogsResponse

    for response_class in (LogsResponse, CloudWatchResponse):
        original = response_class.call_action

        def call_action(self: Any, _original: Any = original) -> Any:
            flush_sink()
            return _original(self)

        _replace(response_class, "call_action", call_action)


def _patch_query_definitions() -> None:
    """Saved Logs Insights queries (moto 5.2.5 has none of these three actions)."""
    from moto.logs.responses import LogsResponse

    store: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    lock = threading.Lock()

    def definitions(response: Any) -> dict[str, dict[str, Any]]:
        return store.setdefault((response.current_account, response.region), {})

    def put_query_definition(self: Any) -> str:
        name = self._get_param("name")
        query = self._get_param("queryString")
        if not name or not query:
            from moto.logs.exceptions import InvalidParameterException

            raise InvalidParameterException("name and queryString are required")
        with lock:
            table = definitions(self)
            ident = self._get_param("queryDefinitionId") or str(uuid.uuid4())
            table[ident] = {
                "queryDefinitionId": ident,
                "name": name,
                "queryString": query,
                "lastModified": int(datetime.now(UTC).timestamp() * 1000),
                "logGroupNames": list(self._get_param("logGroupNames") or []),
            }
        return json.dumps({"queryDefinitionId": ident})

    def describe_query_definitions(self: Any) -> str:
        prefix = self._get_param("queryDefinitionNamePrefix") or ""
        with lock:
            found = [dict(d) for d in definitions(self).values() if d["name"].startswith(prefix)]
        return json.dumps({"queryDefinitions": sorted(found, key=lambda d: d["name"])})

    def delete_query_definition(self: Any) -> str:
        ident = self._get_param("queryDefinitionId")
        with lock:
            removed = definitions(self).pop(ident, None)
        if removed is None:
            from moto.logs.exceptions import ResourceNotFoundException

            raise ResourceNotFoundException("The specified query definition does not exist.")
        return json.dumps({"success": True})

    _replace(LogsResponse, "put_query_definition", put_query_definition)
    _replace(LogsResponse, "describe_query_definitions", describe_query_definitions)
    _replace(LogsResponse, "delete_query_definition", delete_query_definition)


# -- Lambda: deployment packages checked on upload (issue 12) ----------------------------------


def _patch_package_validation() -> None:
    """CreateFunction / UpdateFunctionCode refuse an unsafe or broken zip with InvalidParameterValueException.

    moto 5.2.5 stores any bytes; the runtime would only fail at the first Invoke (HTTP 500).
    ``LambdaFunction._set_function_code`` sets ``code_bytes`` / ``code_size`` / ``code_sha_256`` /
    ``code_digest`` / ``code`` for both calls: the patch checks the new bytes and, for an
    update, puts the previous code back before refusing.
    """
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaFunction

    from scaleorfail.emulator.packages import PackageError, validate

    original = LambdaFunction._set_function_code
    fields = ("code_bytes", "code_size", "code_sha_256", "code_digest")

    def set_function_code(self: Any, updated_spec: dict[str, Any]) -> None:
        previous = {name: getattr(self, name) for name in fields if hasattr(self, name)}
        previous_code = dict(self.code) if isinstance(getattr(self, "code", None), dict) else None
        original(self, updated_spec)
        code = getattr(self, "code_bytes", b"") or b""
        if getattr(self, "package_type", "Zip") != "Zip" or not code:
            return
        try:
            validate(code)
        except PackageError as refused:
            for name, value in previous.items():
                setattr(self, name, value)
            if previous_code is not None and updated_spec is not self.code:
                self.code.clear()
                self.code.update(previous_code)
            raise InvalidParameterValueException(str(refused)) from None

    _replace(LambdaFunction, "_set_function_code", set_function_code)


# -- moto's registry of every model instance (issue 12) ------------------------------------------


def _patch_instance_registry() -> None:
    """moto 5.2.5 appends every ``BaseModel`` instance ever made to ``cls.instances_tracked``
    (``moto.core.common_models.BaseModel.__new__``), for its dashboard: no log event, metric
    datum or execution could ever be freed. Only S3's models keep it (``S3Backend.reset``
    closes their temporary files through it); the rest are not tracked.
    """
    from moto.core import common_models
    from moto.core.model_instances import model_data

    base = common_models.BaseModel

    def new(cls: Any, *args: Any, **kwargs: Any) -> Any:
        instance = super(base, cls).__new__(cls)
        if cls.__module__.startswith("moto.s3."):
            cls.instances_tracked.append(instance)
        return instance

    _replace(base, "__new__", new)
    for service, models in model_data.items():
        if service != "s3":
            for model in models.values():
                model.instances_tracked = []  # type: ignore[attr-defined]


# -- Step Functions: retention of finished executions (issue 12) --------------------------------


class PackedEvents:
    """Stands in for a finished execution's ``EventManager``: its history, packed."""

    CACHE_SIZE = 4  # unpacked histories kept: a paged read asks for the same one page after page
    _cache: ClassVar[list[tuple[PackedEvents, list[Any]]]] = []  # most recent last; entries hold their owner
    _cache_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def get_event_history(self) -> list[Any]:
        from scaleorfail.emulator import retention

        with self._cache_lock:
            cached = next((events for owner, events in self._cache if owner is self), None)
        if cached is None:
            cached = retention.unpack(self.blob)
            with self._cache_lock:
                self._cache.append((self, cached))
                del self._cache[: -self.CACHE_SIZE]
        return list(cached)


class PackedEnvironment:
    """What a finished execution keeps of its interpreter ``Environment``.

    moto 5.2.5 reads, after an execution ended, only ``env.event_manager.get_event_history()``
    (history, execution logging), ``env.callback_pool_manager`` (SendTask* scans) and
    ``env.map_run_record_pool_manager`` (Describe/ListMapRuns), and calls ``env.set_stop``
    from StopExecution; everything else (frames, states, per-iteration inputs) is dropped.
    """

    def __init__(self, blob: bytes, env: Any) -> None:
        self.event_manager = PackedEvents(blob)
        self.callback_pool_manager = env.callback_pool_manager
        self.map_run_record_pool_manager = env.map_run_record_pool_manager

    def set_stop(self, **_: Any) -> None:
        """The execution has already ended: nothing to stop."""


_executions_lock = threading.RLock()  # StartExecution appends to a state machine's list; eviction replaces it


def _patch_execution_retention(settings: EmulatorSettings) -> None:
    """Finished executions: history packed at once, the oldest evicted past the retention budget.

    Relies on ``BaseExecutionWorkerCommunication.terminated`` (called once, on the worker's
    thread, when an execution ends), ``Execution.exec_worker.env`` (replaced by a
    :class:`PackedEnvironment`), ``StateMachine.executions`` of the parser backend's
    ``state_machines`` (the list moto scans for Describe/List/GetExecutionHistory),
    ``StepFunctionsParserBackend.start_execution`` (appends to that list: serialised with
    eviction), ``StepFunctionBackend.describe_execution`` / ``ExecutionDoesNotExist``
    (an evicted execution says so), and ``parser.utils.TMP_THREADS`` (moto keeps every
    execution's Thread object there forever: finished ones are pruned).
    """
    from moto.stepfunctions.parser import utils as parser_utils
    from moto.stepfunctions.parser.backend import execution as execution_module
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend, stepfunctions_parser_backends

    from scaleorfail.emulator import retention

    ledger = retention.Ledger(settings.retain_executions, int(settings.retain_execution_mb * 1024 * 1024))
    tombstones = retention.Tombstones()
    _state["retention"] = (ledger, tombstones)

    original_start = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _executions_lock:
            return original_start(self, *args, **kwargs)

    _replace(StepFunctionsParserBackend, "start_execution", start_execution)

    def evict(account: str, region: str, arns: set[str]) -> None:
        backend = stepfunctions_parser_backends[account][region]
        with _executions_lock:
            for machine in list(backend.state_machines):
                kept = [e for e in machine.executions if e.execution_arn not in arns]
                if len(kept) != len(machine.executions):
                    machine.executions = kept  # readers still iterating the old list see it whole
        tombstones.add(arns)

    def retain(execution: Any) -> None:
        worker = execution.exec_worker
        env = getattr(worker, "env", None)
        if env is None or isinstance(env, PackedEnvironment):
            return
        blob = retention.pack(env.event_manager.get_event_history())
        worker.env = PackedEnvironment(blob, env)
        output = execution.output
        size = len(blob) + len(execution.execution_input or "") + (len(json.dumps(output)) if output else 0)
        evicted = ledger.add(execution.exec_arn, size)
        if evicted:
            evict(execution.account_id, execution.region_name, set(evicted))
        threads = parser_utils.TMP_THREADS  # one per execution, Map iteration worker and task: pruned when long
        if len(threads) > THREADS_PRUNE_AT:
            threads[:] = [t for t in list(threads) if t.is_alive()]

    comm_class = execution_module.BaseExecutionWorkerCommunication
    original_terminated = comm_class.terminated

    def terminated(self: Any) -> None:
        original_terminated(self)
        try:
            retain(self.execution)
        except Exception:  # retention must never break an execution
            import logging

            logging.getLogger("scale-or-fail").exception("could not pack a finished execution")

    _replace(comm_class, "terminated", terminated)
    _patch_evicted_executions(settings, tombstones)


def _patch_evicted_executions(settings: EmulatorSettings, tombstones: Any) -> None:
    """DescribeExecution (and so GetExecutionHistory) of an evicted execution says it was evicted."""
    from moto.stepfunctions.exceptions import ExecutionDoesNotExist
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_describe = StepFunctionsParserBackend.describe_execution

    def describe_execution(self: Any, execution_arn: str) -> Any:
        try:
            return original_describe(self, execution_arn)
        except ExecutionDoesNotExist:
            if execution_arn in tombstones:
                raise ExecutionDoesNotExist(
                    f"Execution Does Not Exist: '{execution_arn}' (finished and evicted by the emulator's retention: "
                    f"it keeps the last {settings.retain_executions} finished executions, "
                    f"{settings.retain_execution_mb:g} MB; see SOF_RETAIN_EXECUTIONS in docs/emulator.md)"
                ) from None
            raise

    _replace(StepFunctionsParserBackend, "describe_execution", describe_execution)


# -- CloudWatch Logs and metrics: retention (issue 12) -------------------------------------------


def trim_logs(account_id: str, region: str, budget: int) -> int:
    """Drop the oldest log events of every group past `budget` events in all; returns how many.

    Relies on ``LogsBackend.groups`` -> ``LogGroup.streams`` -> ``LogStream.events``
    (``LogEvent.timestamp``) and ``LogStream.stored_bytes``.
    """
    from moto.logs.models import logs_backends

    from scaleorfail.emulator import retention

    backend = logs_backends[account_id][region]
    streams = [stream for group in list(backend.groups.values()) for stream in list(group.streams.values())]
    if sum(len(stream.events) for stream in streams) <= budget:
        return 0
    moment = retention.cutoff((event.timestamp for stream in streams for event in list(stream.events)), budget)
    if moment is None:
        return 0
    dropped = 0
    for stream in streams:
        events = stream.events
        if events and min(e.timestamp for e in events) < moment:
            kept = [e for e in events if e.timestamp >= moment]
            dropped += len(events) - len(kept)
            stream.events = kept
            stream.stored_bytes = sum(len(e.message) for e in kept)
    return dropped


def trim_metrics(account_id: str, region: str, budget: int) -> int:
    """Drop the oldest metric data points past `budget`; returns how many.

    Relies on ``CloudWatchBackend.metric_data`` (a list of ``MetricDatum`` with ``timestamp``).
    """
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    data = backend.metric_data
    if len(data) <= budget:
        return 0
    from scaleorfail.emulator import retention

    ordered = sorted(data, key=lambda d: d.timestamp)
    keep = max(1, int(budget * retention.TRIM_TO))
    backend.metric_data = ordered[len(ordered) - keep :]
    return len(ordered) - keep


class Trimmer:
    """Keeps CloudWatch Logs and metrics within the retention counts, checked after sink writes."""

    CHECK_INTERVAL_S = 5.0

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.dropped_log_events = 0
        self.dropped_metric_points = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def maybe_trim(self) -> None:
        now = time.monotonic()
        if now - self._last < self.CHECK_INTERVAL_S or not self._lock.acquire(blocking=False):
            return
        try:
            self._last = now
            region = self.settings.region
            self.dropped_log_events += trim_logs(ACCOUNT_ID, region, self.settings.retain_log_events)
            self.dropped_metric_points += trim_metrics(ACCOUNT_ID, region, self.settings.retain_metric_points)
        finally:
            self._lock.release()


def retention_stats() -> dict[str, Any]:
    """What the emulator keeps and has let go (for /_sof/health and `sof local status`)."""
    kept = _state.get("retention")
    trimmer = _state.get("trimmer")
    out: dict[str, Any] = {}
    if kept is not None:
        ledger, tombstones = kept
        stats = ledger.stats()
        out.update(
            finished_executions=stats["count"],
            finished_execution_bytes=stats["bytes"],
            evicted_executions=tombstones.total,
        )
    if isinstance(trimmer, Trimmer):
        out.update(dropped_log_events=trimmer.dropped_log_events, dropped_metric_points=trimmer.dropped_metric_points)
    return out


# -- installation -------------------------------------------------------------------------------


def install(settings: EmulatorSettings, work_dir: Path) -> LambdaRuntime:
    """Apply every extension to the moto in this process (once) and start the runtime."""
    with _install_lock:
        if "runtime" in _state:
            return runtime()
        if moto.__version__ != MOTO_VERSION:
            raise RuntimeError(
                f"scaleorfail's emulator extends moto {MOTO_VERSION} internals; found moto {moto.__version__}. "
                "Reinstall with `make setup`."
            )
        from moto.core.config import default_user_config

        default_user_config["stepfunctions"]["execute_state_machine"] = True
        default_user_config["lambda"]["use_docker"] = False
        sink = MotoSink(ACCOUNT_ID, settings.region)
        _state["sink"] = sink
        _make_http_error_classes()
        _patch_lambda()
        _patch_account_settings()
        _patch_map_cap()
        _patch_iteration_loop()
        _patch_program_pool()
        _patch_start_execution()
        _patch_execution_metrics()
        _patch_history_paging()
        _patch_list_executions_stop_date()
        _patch_jsonpath_cache()
        _patch_cloudwatch()
        _patch_logs_insights()
        _patch_query_definitions()
        _patch_read_your_writes()
        _patch_sagemaker_runtime()
        _patch_aws_sdk_tasks()
        _patch_package_validation()
        _patch_instance_registry()
        _patch_execution_retention(settings)
        _state["trimmer"] = Trimmer(settings)
        lambda_runtime = LambdaRuntime(settings, sink, lambda: reservations(ACCOUNT_ID, settings.region), work_dir)
        _state["runtime"] = lambda_runtime
        _state["endpoints"] = EndpointRuntime(settings, sink, dict, work_dir / "endpoints")
        return lambda_runtime


def reap_all() -> int:
    """Stop every idle Lambda environment and endpoint container now; returns how many."""
    return sum(value.reap_idle(older_than_s=0) for value in (runtime(), endpoint_runtime()))


def shutdown() -> None:
    """Stop every Lambda environment and endpoint container."""
    for key in ("runtime", "endpoints"):
        value = _state.get(key)
        if isinstance(value, LambdaRuntime):
            value.shutdown()
