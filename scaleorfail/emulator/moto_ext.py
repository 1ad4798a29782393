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
  * ``LambdaBackend.put_function_concurrency`` (``get_function``, ``reserved_concurrency``): AWS keeps
    at least min(100, account limit) unreserved (InvalidParameterValueException otherwise).
Step Functions (moto's ASL interpreter, ``execute_state_machine``)
  * ``...state_task.lambda_eval_utils._invoke_lambda_function`` / ``exec_lambda_function`` /
    ``execute_lambda_function_integration`` (and ``_mocked_invoke_lambda_function``,
    ``LambdaFunctionErrorException``): Lambda tasks call the runtime in-process (no boto3 client
    per task, no HTTP), and the lambda:invoke result keeps AWS's SdkHttpMetadata /
    SdkResponseMetadata (the invocation's RequestId), which moto's ``select_from_typed_dict`` dropped.
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
  * ``...backend.execution.BaseExecutionWorkerCommunication._reflect_execution_status``
    (``execution.exec_status`` / ``output`` / ``error`` / ``cause``): the status is set last.
  * ``...asl.eval.event.event_manager.EventManager.add_event`` (``_mutex``, ``_event_id_gen._next_id``)
    and ``...asl.eval.environment.Environment.__init__`` / ``set_error`` (``event_manager``): the
    timing model's serialised history writer and task dispatch latency, and the 25,000-event
    history limit (the execution fails with States.Runtime as event 25,000, as on AWS).
  * ``moto.stepfunctions.responses.StepFunctionResponse.get_execution_history``:
    maxResults/nextToken/reverseOrder paging, as AWS pages (at most 1,000 events).
  * ``StepFunctionResponse.stop_execution`` (``Execution.stop`` / ``exec_worker.env`` /
    ``exec_status``) and ``...common.retry.retrier_decl`` (``time``, ``RetrierDecl._eval_body``):
    StopExecution ABORTED at once - before the program started, in a Retry back-off, during a
    Task (sfn_stop.py).
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
Client compatibility (each ``_patch_*`` docstring names the internals it relies on)
  * Step Functions: ``StepFunctionResponse.stop_execution`` / ``describe_execution``,
    ``...parser.asl.eval.environment.Environment.set_error`` (a stop is not overwritten).
  * Logs: ``LogsResponse.filter_log_events`` / ``start_query`` / ``get_query_results`` /
    ``describe_queries`` and the added ``stop_query`` / ``get_log_record``.
  * CloudWatch: ``CloudWatchResponse.get_metric_statistics`` / ``describe_alarm_history``,
    ``CloudWatchBackend.put_metric_alarm`` / ``set_alarm_state`` / ``alarms``, ``Alarm``,
    ``MetricDataQuery``; ``sns_backends[...].publish`` for alarm actions.
  * CloudFormation: ``CloudFormationBackend.create_stack`` / ``create_change_set`` /
    ``execute_change_set`` / ``update_stack``, ``Stack``, ``parsing.parse_and_update_resource``
    and ``get_model_list`` (cache cleared), ``StateMachine`` / ``LambdaFunction`` CloudFormation
    handlers, SageMaker models' ``cloudformation_name_type``; an added ``AWS::CloudWatch::Alarm``.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import moto
from botocore.exceptions import ClientError

from scaleorfail.emulator import alarms, cfn_props, cwstats, filterpattern, insights, metricmath
from scaleorfail.emulator.endpoints import EndpointRuntime, ServeResult, endpoint_spec
from scaleorfail.emulator.runtime import Datum, FunctionSpec, LambdaRuntime, ThrottledError
from scaleorfail.emulator.settings import ACCOUNT_ID, EmulatorSettings
from scaleorfail.emulator.timing import HistoryWriter
from scaleorfail.pipeline import MAP_LIMIT

MOTO_VERSION = "5.2.5"
INLINE_MAP_CAP = MAP_LIMIT
MAX_PAYLOAD_BYTES = 256 * 1024
HISTORY_PAGE_MAX = 1000
HISTORY_EVENT_LIMIT = 25_000  # Step Functions' hard quota of events per execution history
HISTORY_LIMIT_CAUSE = f"The execution reached the maximum number of history events ({HISTORY_EVENT_LIMIT})."
MIN_UNRESERVED = 100  # AWS keeps min(100, account limit) of the account concurrency unreserved
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
        # Lambda's message is exactly "Rate Exceeded."; Step Functions records it as the cause
        # "Rate Exceeded. (Service: AWSLambda; Status Code: 429; Error Code: TooManyRequestsException; ...)".
        raise _client_error("TooManyRequestsException", "Rate Exceeded.", 429, Reason=throttled.reason) from None
    # AWS's lambda:invoke result carries the SDK's response metadata: the invocation's RequestId (the one
    # in its START/END/REPORT log lines), by which the harvest ties log lines to the run's task attempts.
    headers = {"x-amzn-RequestId": result.request_id, "X-Amz-Executed-Version": result.executed_version}
    response: dict[str, Any] = {
        "StatusCode": 200,
        "ExecutedVersion": result.executed_version,
        "Payload": result.body,
        "SdkHttpMetadata": {"HttpHeaders": headers, "HttpStatusCode": 200},
        "SdkResponseMetadata": {"RequestId": result.request_id},
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

    def execute_integration(env: Any, parameters: dict[str, Any], region: str, state_credentials: Any) -> None:
        """The lambda:invoke integration's result as AWS records it: moto kept only the InvocationResponse
        keys, dropping the SdkHttpMetadata / SdkResponseMetadata (the invocation's RequestId) AWS adds."""
        if env.is_mocked_mode():
            response = lambda_eval_utils._mocked_invoke_lambda_function(env=env)
        else:
            response = _direct_invoke(parameters, region)
        if response.get("FunctionError"):
            payload = json.dumps(response["Payload"], separators=(",", ":"))
            raise lambda_eval_utils.LambdaFunctionErrorException(response["FunctionError"], payload)
        env.stack.append(response)

    _replace(lambda_eval_utils, "_invoke_lambda_function", invoke_lambda_function)
    _replace(lambda_eval_utils, "exec_lambda_function", exec_lambda_function)
    _replace(lambda_eval_utils, "execute_lambda_function_integration", execute_integration)


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
        if self._get_param("includeExecutionData") is False:
            page = without_execution_data(page)
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
        try:
            results = cwstats.get_metric_data(data, queries, start_time, end_time, scan_by)
        except cwstats.StatisticError as exc:
            from moto.cloudwatch.exceptions import InvalidParameterValue

            raise InvalidParameterValue(str(exc)) from None
        results += _metric_math(queries, results, scan_by)
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


# -- Step Functions: the timing model and the history limit -------------------------------------


_writer_setup = threading.Lock()


def _history_writer(manager: Any) -> tuple[HistoryWriter, threading.Lock]:
    """The execution's history writer (one per EventManager, i.e. per execution) and its append lock."""
    found = manager.__dict__.get("_sof_writer")
    if found is None:
        with _writer_setup:
            found = manager.__dict__.get("_sof_writer")
            if found is None:
                settings = runtime().settings
                writer = HistoryWriter(settings.history_write_ms / 1000.0, settings.history_event_ms / 1000.0)
                found = manager._sof_writer = (writer, threading.Lock())
    return found  # type: ignore[no-any-return]


def _patch_history_timing() -> None:
    """Every history event passes the execution's serialised writer (timing.HistoryWriter);
    TaskStarted waits for the modelled dispatch first. The 25,000th event of a history that
    is still growing becomes, as on AWS, ExecutionFailed with States.Runtime; events after
    that are dropped (the iterations still running see the execution failed and stop)."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval import environment as environment_module
    from moto.stepfunctions.parser.asl.eval.event import event_manager as event_module

    manager_class = event_module.EventManager
    original_add = manager_class.add_event
    environment_class = environment_module.Environment
    original_init = environment_class.__init__
    original_set_error = environment_class.set_error
    terminal = {
        HistoryEventType.ExecutionFailed,
        HistoryEventType.ExecutionSucceeded,
        HistoryEventType.ExecutionAborted,
        HistoryEventType.ExecutionTimedOut,
    }
    limit_error = ExecutionFailedEventDetails(error="States.Runtime", cause=HISTORY_LIMIT_CAUSE)

    def add_event(
        self: Any,
        context: Any,
        event_type: Any,
        event_details: Any = None,
        timestamp: Any = None,
        update_source_event_id: bool = True,
    ) -> int:
        dispatch_ms = runtime().settings.task_dispatch_ms
        if event_type == HistoryEventType.TaskStarted and dispatch_ms > 0:
            time.sleep(dispatch_ms / 1000.0)
        writer, order = _history_writer(self)
        writer.write()
        reached = False
        with order:  # the limit check and the append are one step
            next_id = int(self._event_id_gen._next_id)
            capped = bool(self.__dict__.get("_sof_capped"))
            if event_type in terminal:
                if capped:
                    event_type = HistoryEventType.ExecutionFailed
                    event_details = {"executionFailedEventDetails": limit_error}  # an EventDetails
            elif (capped or next_id >= HISTORY_EVENT_LIMIT) and not capped:
                self._sof_capped = reached = True
            if not (capped or reached) or event_type in terminal:
                return int(original_add(self, context, event_type, event_details, timestamp, update_source_event_id))
        if reached:
            root = self.__dict__.get("_sof_root")
            if root is not None:
                root.set_error(limit_error)
        return next_id - 1

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.event_manager._sof_root = self  # frames replace theirs with the root's shared manager

    def set_error(self: Any, error: Any) -> None:
        if self.event_manager.__dict__.get("_sof_capped"):
            error = limit_error  # the limit is why it failed, whatever an iteration raised afterwards
        original_set_error(self, error)

    _replace(manager_class, "add_event", add_event)
    _replace(environment_class, "__init__", init)
    _replace(environment_class, "set_error", set_error)


# -- Lambda: reserved concurrency leaves the minimum unreserved ---------------------------------


def _patch_reserved_concurrency() -> None:
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend

    def put_function_concurrency(self: Any, function_name: str, reserved_concurrency: str) -> Any:
        fn = self.get_function(function_name)
        limit = runtime().settings.account_concurrency
        minimum = min(MIN_UNRESERVED, limit)
        others = sum(
            int(f.reserved_concurrency)
            for f in self.list_functions()
            if f.reserved_concurrency is not None and f.function_name != fn.function_name
        )
        if limit - others - int(reserved_concurrency) < minimum:
            raise InvalidParameterValueException(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
            )
        fn.reserved_concurrency = reserved_concurrency
        _reservations_cache.clear()
        return fn.reserved_concurrency

    _replace(LambdaBackend, "put_function_concurrency", put_function_concurrency)


# -- Step Functions: StopExecution, DescribeExecution as AWS answers them ---------------------------

STOP_WAIT_S = 30.0  # a stop waits for a program that has not started yet (a loaded machine: seconds)
EXECUTION_DATA_FIELDS = ("input", "output", "inputDetails", "outputDetails")


def _patch_stop_execution() -> None:
    """StopExecution stops a Map execution as ABORTED and answers with its stopDate.

    moto 5.2.5: ``StepFunctionResponse.stop_execution`` calls ``StateMachine.stop_execution``,
    which drops the request's error and cause and answers before the execution stopped (no
    stopDate); and ``Environment.set_error`` (``...parser.asl.eval.environment``) overwrote
    the ProgramStopped state when a Map iteration reported its abort as an error, so the
    execution ended FAILED with States.Runtime. A stopped (or timed-out) program now stays so.
    """
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval import environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped, ProgramTimedOut
    from moto.stepfunctions.responses import StepFunctionResponse

    from scaleorfail.emulator import sfn_stop

    original_set_error = environment.Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, (ProgramStopped, ProgramTimedOut)):
            return
        original_set_error(self, error)

    def stop_execution(self: Any) -> Any:
        arn = self._get_param("executionArn")
        execution = self.stepfunction_backend.describe_execution(arn)  # ExecutionDoesNotExist / InvalidArn
        if execution.status == "RUNNING":  # ABORTED at once, whatever state it is in (sfn_stop.py)
            error, cause = self._get_param("error"), self._get_param("cause")
            sfn_stop.stop_until_stopped(
                execution, datetime.now(UTC), error, cause, ExecutionStatus.ABORTED, STOP_WAIT_S
            )
        return ActionResult({"stopDate": execution.stop_date or datetime.now(UTC)})

    _replace(environment.Environment, "set_error", set_error)
    _replace(StepFunctionResponse, "stop_execution", stop_execution)


def _patch_interruptible_retry() -> None:
    """A Retry back-off ends when the execution is stopped.

    moto 5.2.5: ``...parser.asl.component.common.retry.retrier_decl.RetrierDecl._eval_body`` waits
    its interval with ``time.sleep`` (the module's ``time``), which a stop does not wake: the
    execution stayed RUNNING through the back-off. The module's ``time`` becomes
    :class:`sfn_stop.InterruptibleSleep` (a wait on the program's state event), and ``_eval_body``
    first tells it which program is retrying; the interpreter's retry loop then ends on the stop.
    """
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    from scaleorfail.emulator import sfn_stop

    original = retrier_decl.RetrierDecl._eval_body

    def eval_body(self: Any, env: Any) -> None:
        sfn_stop.remember_env(env)
        original(self, env)

    _replace(retrier_decl, "time", sfn_stop.InterruptibleSleep())
    _replace(retrier_decl.RetrierDecl, "_eval_body", eval_body)


def _patch_execution_status_order() -> None:
    """moto 5.2.5's ``BaseExecutionWorkerCommunication._reflect_execution_status`` sets
    ``exec_status`` = SUCCEEDED before ``output`` (and FAILED before ``error``/``cause``), so a
    DescribeExecution in between saw a SUCCEEDED execution without its output. Same logic, with
    the status set last, as AWS never shows a terminal status without its result."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramEnded,
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    def reflect(self: Any) -> None:
        execution = self.execution
        state = execution.exec_worker.env.program_state()
        if not (isinstance(state, ProgramStopped) and execution.stop_date):  # a stop keeps the moment it was asked
            execution.stop_date = datetime.now(UTC)
        if isinstance(state, ProgramEnded):
            execution.output = execution.exec_worker.env.states.get_input()
            execution.exec_status = ExecutionStatus.SUCCEEDED
        elif isinstance(state, ProgramStopped):
            execution.exec_status = ExecutionStatus.ABORTED
        elif isinstance(state, ProgramError):
            details = state.error or {}
            execution.error = details.get("error")
            execution.cause = details.get("cause")
            execution.exec_status = ExecutionStatus.FAILED
        elif isinstance(state, ProgramTimedOut):
            execution.exec_status = ExecutionStatus.TIMED_OUT
        else:
            raise RuntimeWarning(f"Execution ended with unsupported ProgramState type '{type(state)}'.")

    _replace(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect)


def _patch_describe_execution() -> None:
    """DescribeExecution with inputDetails/outputDetails, stopDate for every ended status, redriveCount.

    moto 5.2.5's ``StepFunctionResponse.describe_execution`` leaves out inputDetails and the
    stopDate of TIMED_OUT executions; replaced, reading the parser ``Execution``'s
    ``execution_input``, ``output``, ``stop_date``, ``error``, ``cause``, ``state_machine_arn``.
    """
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def describe_execution(self: Any) -> Any:
        arn = self._get_param("executionArn")
        execution = self.stepfunction_backend.describe_execution(arn)
        status = str(execution.status)
        response: dict[str, Any] = {
            "executionArn": arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": execution.start_date,
            "input": execution.execution_input,
            "inputDetails": {"included": True},
            "redriveCount": 0,
            "redriveStatus": "NOT_REDRIVABLE",
        }
        if status != "RUNNING" and execution.stop_date:
            response["stopDate"] = execution.stop_date
        if status == "SUCCEEDED":
            output = execution.output
            response["output"] = output if isinstance(output, str) else json.dumps(output, separators=(",", ":"))
            response["outputDetails"] = {"included": True}
        if status in ("FAILED", "TIMED_OUT", "ABORTED"):
            response["redriveStatus"] = "REDRIVABLE"
        if execution.error is not None:
            response["error"] = execution.error
        if execution.cause is not None:
            response["cause"] = execution.cause
        trace = getattr(execution, "trace_header", None)
        if trace:
            response["traceHeader"] = trace
        return ActionResult(response)

    _replace(StepFunctionResponse, "describe_execution", describe_execution)


def without_execution_data(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History events as GetExecutionHistory gives them with includeExecutionData=false."""
    out = []
    for event in events:
        copy = dict(event)
        for key, value in event.items():
            if key.endswith("EventDetails") and isinstance(value, dict):
                copy[key] = {k: v for k, v in value.items() if k not in EXECUTION_DATA_FIELDS}
        out.append(copy)
    return out


# -- Logs: filter patterns, Logs Insights as AWS answers it ----------------------------------------

MAX_QUERIES_KEPT = 1000
MAX_QUERY_CHARS = 10_000
MAX_FILTER_EVENTS = 10_000


def _log_groups(response: Any, names: list[str]) -> list[Any]:
    """moto ``LogGroup`` objects by name or ARN (``LogsBackend.groups``); ResourceNotFoundException if absent."""
    from moto.logs.exceptions import ResourceNotFoundException

    backend = response.logs_backend
    out = []
    for ident in names:
        name = str(ident).split(":log-group:", 1)[-1].removesuffix(":*") if str(ident).startswith("arn:") else ident
        if name not in backend.groups:
            raise ResourceNotFoundException("The specified log group does not exist.")
        out.append(backend.groups[name])
    return out


def _pointer(group: str, stream: str, index: int) -> str:
    import base64

    raw = json.dumps([group, stream, index], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unpointer(pointer: str) -> tuple[str, str, int] | None:
    import base64

    try:
        group, stream, index = json.loads(base64.urlsafe_b64decode(pointer + "=" * (-len(pointer) % 4)))
        return str(group), str(stream), int(index)
    except (ValueError, TypeError):
        return None


def _insights_events(groups: list[Any]) -> list[insights.Event]:
    return [
        insights.Event(
            timestamp=event.timestamp,
            message=event.message,
            log_stream=stream_name,
            log_group=group.name,
            ingestion_time=getattr(event, "ingestion_time", event.timestamp),
            pointer=_pointer(group.name, stream_name, index),
        )
        for group in groups
        for stream_name, stream in list(group.streams.items())
        for index, event in enumerate(list(stream.events))
    ]


def _malformed_query(message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("MalformedQueryException", message)
    error.code = 400
    error.description = json.dumps(
        {
            "__type": "MalformedQueryException",
            "message": message,
            "queryCompileError": {"location": {"startCharOffset": 0, "endCharOffset": 0}, "message": message},
        }
    )
    return error


def _start_query(self: Any) -> str:
    """StartQuery: the query is parsed first (MalformedQueryException, HTTP 400), then run."""
    from moto.logs.exceptions import InvalidParameterException

    single, many = self._get_param("logGroupName"), self._get_param("logGroupNames")
    identifiers = self._get_param("logGroupIdentifiers")
    if sum(1 for x in (single, many, identifiers) if x) != 1:
        raise InvalidParameterException("Specify exactly one of logGroupName, logGroupNames or logGroupIdentifiers.")
    query_string = str(self._get_param("queryString") or "")
    if not query_string.strip() or len(query_string) > MAX_QUERY_CHARS:
        raise InvalidParameterException(f"queryString must have between 1 and {MAX_QUERY_CHARS} characters.")
    language = self._get_param("queryLanguage") or "CWLI"
    if language != "CWLI":
        raise InvalidParameterException(f"queryLanguage {language} is not supported by the emulator (CWLI only).")
    start, end = self._get_int_param("startTime"), self._get_int_param("endTime")
    if start is None or end is None or start > end:
        raise InvalidParameterException("endTime must be greater than or equal to startTime.")
    limit = self._get_int_param("limit")
    if limit is not None and not 1 <= limit <= insights.MAX_ROWS:
        raise InvalidParameterException(f"limit must be between 1 and {insights.MAX_ROWS}.")
    groups = _log_groups(self, [single] if single else list(many or identifiers))
    try:
        insights.parse_query(query_string)
    except insights.QueryError as exc:
        raise _malformed_query(str(exc)) from None
    flush_sink()
    try:
        result = insights.execute(query_string, _insights_events(groups), start * 1000, end * 1000 + 999)
    except insights.QueryError as exc:
        raise _malformed_query(str(exc)) from None
    if limit is not None:
        result.rows = result.rows[:limit]
    query_id = str(uuid.uuid4())
    store: dict[str, dict[str, Any]] = _state.setdefault("queries", {})
    store[query_id] = {
        "queryId": query_id,
        "queryString": query_string,
        "status": "Complete",
        "createTime": int(time.time() * 1000),
        "logGroupName": groups[0].name,
        "logGroupNames": [g.name for g in groups],
        "result": result,
    }
    while len(store) > MAX_QUERIES_KEPT:
        store.pop(next(iter(store)))
    return json.dumps({"queryId": query_id})


def _query(query_id: Any) -> dict[str, Any]:
    from moto.logs.exceptions import ResourceNotFoundException

    found = _state.get("queries", {}).get(str(query_id))
    if found is None:
        raise ResourceNotFoundException("Query does not exist.")
    return dict(found)


def _get_query_results(self: Any) -> str:
    query = _query(self._get_param("queryId"))
    result: insights.Result = query["result"]
    rows = [[{"field": k, "value": v} for k, v in row.items()] for row in result.rows]
    return json.dumps({"results": rows, "statistics": result.statistics(), "status": query["status"]})


def _stop_query(self: Any) -> str:
    query = _query(self._get_param("queryId"))
    if query["status"] in ("Scheduled", "Running"):
        _state["queries"][query["queryId"]]["status"] = "Cancelled"
        return json.dumps({"success": True})
    return json.dumps({"success": False})


def _describe_queries(self: Any) -> str:
    group, status = self._get_param("logGroupName"), self._get_param("status")
    max_results = int(self._get_param("maxResults") or 1000)
    found = [
        {k: q[k] for k in ("queryId", "queryString", "status", "createTime", "logGroupName")}
        for q in list(_state.get("queries", {}).values())
        if (not group or group in q["logGroupNames"]) and (not status or q["status"] == status)
    ]
    found.sort(key=lambda q: q["createTime"], reverse=True)
    return json.dumps({"queries": found[:max_results]})


def _get_log_record(self: Any) -> str:
    from moto.logs.exceptions import InvalidParameterException

    where = _unpointer(str(self._get_param("logRecordPointer") or ""))
    backend = self.logs_backend
    stream = None
    if where is not None and where[0] in backend.groups:
        stream = backend.groups[where[0]].streams.get(where[1])
    if where is None or stream is None or not 0 <= where[2] < len(stream.events):
        raise InvalidParameterException("The logRecordPointer is not valid.")
    event = stream.events[where[2]]
    row = insights.discover(
        insights.Event(event.timestamp, event.message, where[1], where[0], getattr(event, "ingestion_time", 0))
    )
    row.pop("@timestamp_ms", None)
    row["@log"] = f"{self.current_account}:{where[0]}"
    return json.dumps({"logRecord": {k: insights.render(v) for k, v in row.items()}})


def _filter_log_events(self: Any) -> str:
    """FilterLogEvents: the three filter-pattern forms, stream name prefix, events in time order across streams."""
    from moto.logs.exceptions import InvalidParameterException

    name = self._get_param("logGroupName") or self._get_param("logGroupIdentifier")
    if not name:
        raise InvalidParameterException("Specify logGroupName or logGroupIdentifier.")
    group = _log_groups(self, [name])[0]
    names, prefix = self._get_param("logStreamNames"), self._get_param("logStreamNamePrefix")
    if names and prefix:
        raise InvalidParameterException("logStreamNames and logStreamNamePrefix cannot both be specified.")
    limit = self._get_int_param("limit") or MAX_FILTER_EVENTS
    if not 1 <= limit <= MAX_FILTER_EVENTS:
        raise InvalidParameterException(f"limit must be between 1 and {MAX_FILTER_EVENTS}.")
    start, end = self._get_int_param("startTime"), self._get_int_param("endTime")
    try:
        matches = filterpattern.compile_pattern(self._get_param("filterPattern"))
    except filterpattern.FilterPatternError as exc:
        raise InvalidParameterException(f"Invalid filter pattern: {exc}") from None
    streams = [
        (stream_name, stream)
        for stream_name, stream in sorted(group.streams.items())
        if (not names or stream_name in names) and (not prefix or stream_name.startswith(prefix))
    ]
    found = [
        {
            "logStreamName": stream_name,
            "timestamp": event.timestamp,
            "message": event.message,
            "ingestionTime": getattr(event, "ingestion_time", event.timestamp),
            "eventId": str(event.event_id),
        }
        for stream_name, stream in streams
        for event in list(stream.events)
        if (start is None or event.timestamp >= start)
        and (end is None or event.timestamp <= end)
        and matches(event.message)
    ]
    found.sort(key=lambda e: (e["timestamp"], e["ingestionTime"], e["logStreamName"]))
    token = self._get_param("nextToken")
    offset = 0
    if token:
        try:
            offset = int(str(token).rsplit("@", 1)[1])
        except (IndexError, ValueError):
            raise InvalidParameterException("The specified nextToken is not valid.") from None
    page = found[offset : offset + limit]
    result: dict[str, Any] = {
        "events": page,
        "searchedLogStreams": [{"logStreamName": n, "searchedCompletely": True} for n, _ in streams],
    }
    if offset + limit < len(found):
        result["nextToken"] = f"{group.name}@{offset + limit}"
    return json.dumps(result)


def _patch_logs_api() -> None:
    """FilterLogEvents and the Logs Insights query operations, replaced.

    moto 5.2.5 ``LogsResponse``: ``filter_log_events`` (its pattern matcher matches JSON,
    space-delimited and ``?A ?B`` patterns against every event and ignores
    logStreamNamePrefix), ``start_query`` (ran the query inside ``LogQuery.__init__``: a
    malformed query was an HTTP 500), ``get_query_results``, ``describe_queries``, and the
    absent ``stop_query`` / ``get_log_record``; reads ``logs_backend.groups``, ``LogGroup.streams``,
    ``LogStream.events`` and ``LogEvent`` (``timestamp``, ``message``, ``ingestion_time``, ``event_id``).
    """
    from moto.logs.responses import LogsResponse

    _replace(LogsResponse, "filter_log_events", _filter_log_events)
    _replace(LogsResponse, "start_query", _start_query)
    _replace(LogsResponse, "get_query_results", _get_query_results)
    _replace(LogsResponse, "stop_query", _stop_query)
    _replace(LogsResponse, "describe_queries", _describe_queries)
    _replace(LogsResponse, "get_log_record", _get_log_record)


# -- CloudWatch: metric math, GetMetricStatistics, alarms that evaluate ---------------------------


def _metric_math(queries: list[dict[str, Any]], results: list[dict[str, Any]], scan_by: str) -> list[dict[str, Any]]:
    """GetMetricData results of the Expression queries (evaluated by :mod:`.metricmath`)."""
    from moto.cloudwatch.exceptions import ValidationError

    pending = [q for q in queries if "Expression" in q]
    if not pending:
        return []
    periods = [int(q["MetricStat"]["Period"]) for q in queries if "MetricStat" in q]
    known: dict[str, metricmath.Series] = {
        r["id"]: metricmath.Series(
            r["label"], dict(zip(r["timestamps"], r["values"], strict=True)), periods[0] if periods else 60
        )
        for r in results
    }
    out: list[dict[str, Any]] = []
    for _ in range(len(pending) + 1):  # expressions may use each other: evaluate those whose inputs are ready
        waiting = []
        for query in pending:
            try:
                evaluated = metricmath.evaluate(
                    str(query["Expression"]),
                    known,
                    query.get("Label") or query["Id"],
                    int(query.get("Period") or 60),
                    metrics={r["id"] for r in results},
                )
            except metricmath.MetricMathError as exc:
                if "Unrecognized metric id" in str(exc) and any(q["Id"] in str(exc) for q in pending):
                    waiting.append(query)
                    continue
                raise ValidationError(f"Error in expression {query['Id']}: {exc}") from None
            if len(evaluated) == 1:
                known[query["Id"]] = evaluated[0]
            for series in evaluated:
                ordered = series.ordered()
                if scan_by == "TimestampDescending":
                    ordered.reverse()
                out.append(
                    {
                        "id": query["Id"],
                        "label": series.label,
                        "values": [v for _, v in ordered],
                        "timestamps": [t for t, _ in ordered],
                        "status_code": "Complete",
                        "return_data": query.get("ReturnData", True),
                    }
                )
        if not waiting:
            return out
        pending = waiting
    raise ValidationError(f"Error in expression {pending[0]['Id']}: its metric ids form a cycle or do not exist")


def _points(
    backend: Any,
    namespace: str,
    name: str,
    dimensions: list[dict[str, str]],
    unit: str | None,
    since: datetime | None = None,
) -> list[cwstats.Point]:
    """The datapoints of one metric (exact dimensions), from moto's ``metric_data`` / ``get_all_metrics``."""
    wanted = tuple(sorted((str(d["Name"]), str(d["Value"])) for d in dimensions))
    data = backend.get_all_metrics()
    if since is not None:  # the recent end only: metric_data is appended in (near) time order
        naive = since.astimezone(UTC).replace(tzinfo=None)
        older = 0
        start = len(data)
        while start > 0 and older < 1000:
            start -= 1
            older = older + 1 if data[start].timestamp < naive else 0
        data = data[start:]
    out = []
    for md in data:
        if md.namespace != namespace or md.name != name or (unit and md.unit != unit):
            continue
        dims = tuple(sorted((d.name, d.value) for d in md.dimensions))
        if dims == wanted:
            out.append(cwstats.Point(md.namespace, md.name, dims, md.timestamp, _values(md), md.unit))
    return out


def _patch_metric_statistics() -> None:
    """GetMetricStatistics with ExtendedStatistics (percentiles) and periods on clock boundaries.

    moto 5.2.5's ``CloudWatchResponse.get_metric_statistics`` ignores ExtendedStatistics and
    starts its periods at the first datapoint; replaced, reading ``_get_param`` and the
    backend's datapoints.
    """
    from moto.cloudwatch.exceptions import InvalidParameterCombination, InvalidParameterValue
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    def get_metric_statistics(self: Any) -> Any:
        statistics = list(self._get_param("Statistics", []) or [])
        extended = list(self._get_param("ExtendedStatistics", []) or [])
        if bool(statistics) == bool(extended):
            raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics, but not both.")
        for name in statistics:
            if name not in cwstats.STANDARD_STATISTICS:
                raise InvalidParameterValue(f"The value {name} for parameter Statistics is not supported.")
        for name in extended:
            if not cwstats.PERCENTILE.match(name):
                raise InvalidParameterValue(f"The value {name} for parameter ExtendedStatistics is not supported.")
        period = int(self._get_int_param("Period") or 0)
        if period < 1 or (period >= 60 and period % 60) or (period < 60 and period not in (1, 5, 10, 20, 30)):
            raise InvalidParameterValue("The parameter Period must be 1, 5, 10, 20, 30 or a multiple of 60.")
        start, end = self._get_param("StartTime"), self._get_param("EndTime")
        start, end = cwstats.aware(_as_datetime(start)), cwstats.aware(_as_datetime(end))
        if start >= end:
            raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
        if (end - start).total_seconds() / period > 1440:
            raise InvalidParameterCombination(
                "You have requested up to 1,441 datapoints, which exceeds the limit of 1,440. "
                "You may reduce the datapoints requested by increasing Period, or decreasing the time range."
            )
        flush_sink()
        points = _points(
            self.cloudwatch_backend,
            self._get_param("Namespace"),
            self._get_param("MetricName"),
            self._get_param("Dimensions", []) or [],
            self._get_param("Unit"),
        )
        datapoints = cwstats.metric_statistics(points, start, end, period, statistics, extended)
        return ActionResult({"Label": self._get_param("MetricName"), "Datapoints": datapoints})

    _replace(CloudWatchResponse, "get_metric_statistics", get_metric_statistics)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)  # type: ignore[no-any-return]


ALARM_EVALUATION_S = 10.0  # SOF_ALARM_EVALUATION_S; CloudWatch evaluates standard alarms every minute


def _alarm_history_add(alarm: Any, kind: str, summary: str, data: dict[str, Any]) -> None:
    history: list[dict[str, Any]] = _state.setdefault("alarm_history", [])
    with _state.setdefault("alarm_lock", threading.RLock()):
        history.append(
            {
                "AlarmName": alarm.name,
                "AlarmType": "CompositeAlarm" if getattr(alarm, "rule", None) else "MetricAlarm",
                "Timestamp": datetime.now(UTC),
                "HistoryItemType": kind,
                "HistorySummary": summary,
                "HistoryData": json.dumps(data, default=str),
            }
        )
        del history[: max(0, len(history) - 10_000)]


def _alarm_configured(account_id: str, region: str, alarm: Any, created: bool) -> None:
    word = "created" if created else "updated"
    _alarm_history_add(
        alarm, "ConfigurationUpdate", f'Alarm "{alarm.name}" {word}', {"type": "Update", "version": "1.0"}
    )


def _alarm_state_changed(account_id: str, region: str, alarm: Any, old: str, old_reason: str) -> None:
    """History of a state change, then the actions of the new state (SNS topics notified)."""
    data = {
        "version": "1.0",
        "oldState": {"stateValue": old, "stateReason": old_reason},
        "newState": {
            "stateValue": alarm.state_value,
            "stateReason": alarm.state_reason,
            "stateReasonData": json.loads(alarm.state_reason_data or "{}"),
        },
    }
    _alarm_history_add(alarm, "StateUpdate", alarms.history_summary(alarm.name, old, alarm.state_value), data)
    if not alarm.actions_enabled:
        return
    actions = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }[alarm.state_value] or []
    for action in actions:
        _alarm_action(account_id, region, alarm, old, str(action))


def _alarm_action(account_id: str, region: str, alarm: Any, old: str, action: str) -> None:
    if ":sns:" not in action:
        _alarm_history_add(
            alarm,
            "Action",
            f"Failed to execute action {action}. Received error: the emulator runs SNS actions only",
            {"actionState": "Failed", "notificationResource": action},
        )
        return
    from moto.sns.models import sns_backends

    trigger = {
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
        "Statistic": alarm.extended_statistic or (alarm.statistic or "").upper(),
        "Unit": alarm.unit,
        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
    }
    subject, message = alarms.notification(
        name=alarm.name,
        description=alarm.description,
        account=account_id,
        region=region,
        arn=alarm.alarm_arn,
        old=old,
        new=alarm.state_value,
        reason=alarm.state_reason,
        reason_data=alarm.state_reason_data,
        changed_at=datetime.now(UTC),
        trigger=trigger,
    )
    topic_region = action.split(":")[3] if action.count(":") >= 5 else region
    try:
        message_id = sns_backends[account_id][topic_region].publish(message, arn=action, subject=subject)
    except Exception as exc:  # a deleted topic: AWS records the failure in the history too
        _alarm_history_add(
            alarm,
            "Action",
            f"Failed to execute action {action}. Received error: {_cfn_failure_reason(exc)}",
            {"actionState": "Failed", "notificationResource": action},
        )
        return
    _alarm_history_add(
        alarm,
        "Action",
        f"Successfully executed action {action}",
        {"actionState": "Succeeded", "notificationResource": action, "publishedMessage": {"messageId": message_id}},
    )


def _alarm_spec(alarm: Any) -> alarms.AlarmSpec:
    return alarms.AlarmSpec(
        name=alarm.name,
        comparison=str(alarm.comparison_operator),
        threshold=float(alarm.threshold or 0),
        evaluation_periods=int(alarm.evaluation_periods or 1),
        period_s=int(alarm.period or _query_period(alarm) or 60),
        datapoints_to_alarm=int(alarm.datapoints_to_alarm) if alarm.datapoints_to_alarm else None,
        treat_missing=alarm.treat_missing_data,
        statistic=str(alarm.extended_statistic or alarm.statistic or ""),
    )


def _query_period(alarm: Any) -> int | None:
    for query in alarm.metric_data_queries or []:
        if query.metric_stat is not None and query.metric_stat.period:
            return int(query.metric_stat.period)
    return None


def _query_dicts(alarm: Any) -> list[dict[str, Any]]:
    """moto's ``MetricDataQuery`` objects of a metric-math alarm, back as GetMetricData queries."""
    out = []
    for query in alarm.metric_data_queries:
        item: dict[str, Any] = {"Id": query.id, "ReturnData": query.return_data not in (False, "false")}
        if query.label:
            item["Label"] = query.label
        if query.expression:
            item["Expression"] = query.expression
        if query.metric_stat is not None:
            stat = query.metric_stat
            item["MetricStat"] = {
                "Metric": {
                    "Namespace": stat.metric.namespace,
                    "MetricName": stat.metric.metric_name,
                    "Dimensions": [{"Name": d.name, "Value": d.value} for d in stat.metric.dimensions],
                },
                "Period": int(stat.period),
                "Stat": stat.stat,
            }
            if stat.unit:
                item["MetricStat"]["Unit"] = stat.unit
        out.append(item)
    return out


def _alarm_values(backend: Any, alarm: Any, spec: alarms.AlarmSpec, now: datetime) -> dict[datetime, float]:
    start, end = alarms.lookback(spec, now)
    if alarm.metric_data_queries:
        results = backend.get_metric_data(_query_dicts(alarm), start, end, "TimestampAscending")
        chosen = [r for r in results if r["id"] == (alarm.threshold_metric_id or r["id"])][:1] or results[:1]
        if not chosen:
            return {}
        return alarms.period_values(list(zip(chosen[0]["timestamps"], chosen[0]["values"], strict=True)))
    stat = alarm.extended_statistic or alarm.statistic
    points = _points(
        backend,
        alarm.namespace,
        alarm.metric_name,
        [{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
        alarm.unit,
        since=start,
    )
    return alarms.period_values(cwstats.series(points, str(stat), start, end, spec.period_s))


def evaluate_alarms(now: datetime | None = None) -> int:
    """One evaluation of every metric alarm; returns how many changed state."""
    from moto.cloudwatch.models import cloudwatch_backends

    flush_sink()
    changed = 0
    # Periods are judged a little after the data arrives (the sink writes behind, the timer ticks):
    # a datapoint at the very end of a period is still seen in it.
    moment = (now or datetime.now(UTC)) - timedelta(seconds=float(_state.get("alarm_lag_s", 1.0)))
    for account_id, regions in list(cloudwatch_backends.items()):
        for region, backend in list(regions.items()):
            for alarm in list(backend.alarms.values()):
                if getattr(alarm, "rule", None):
                    continue  # composite alarms are not evaluated
                try:
                    spec = _alarm_spec(alarm)
                    outcome = alarms.evaluate(
                        spec, _alarm_values(backend, alarm, spec, moment), moment, alarm.state_value
                    )
                except Exception:  # one broken alarm must not stop the others
                    import logging

                    logging.getLogger("scale-or-fail").exception("alarm %s: evaluation failed", alarm.name)
                    continue
                if outcome is None or outcome.state == alarm.state_value:
                    continue
                old, old_reason = alarm.state_value, alarm.state_reason
                alarm.update_state(outcome.reason, outcome.reason_data, outcome.state)
                _alarm_state_changed(account_id, region, alarm, old, old_reason)
                changed += 1
    return changed


def _evaluate_alarms_forever(interval_s: float) -> None:
    import logging

    while True:
        time.sleep(interval_s)
        try:
            with _state.setdefault("alarm_lock", threading.RLock()):
                evaluate_alarms()
        except Exception:  # the evaluator must outlive any one bad round (a backend created meanwhile ...)
            logging.getLogger("scale-or-fail").exception("alarm evaluation failed; retrying at the next tick")


def _patch_alarms() -> None:
    """Alarms with a lifecycle: INSUFFICIENT_DATA at creation, evaluated on a timer, with history.

    moto 5.2.5 internals: ``CloudWatchBackend.put_metric_alarm`` / ``set_alarm_state`` /
    ``alarms`` and ``Alarm`` attributes (``state_value``, ``state_reason``,
    ``state_reason_data``, ``update_state``, the configuration fields), ``MetricDataQuery`` /
    ``MetricStat`` / ``Metric`` / ``Dimension``; ``CloudWatchResponse.describe_alarm_history``
    (absent: it answered HTTP 500) and ``_get_param``; ``sns_backends[...].publish`` for actions.
    """
    import os

    from moto.cloudwatch.models import CloudWatchBackend
    from moto.cloudwatch.responses import CloudWatchResponse

    original_put = CloudWatchBackend.put_metric_alarm
    original_set = CloudWatchBackend.set_alarm_state

    def put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        queries = kwargs.get("metric_data_queries")
        if queries and isinstance(queries[0], dict):
            kwargs["metric_data_queries"] = _moto_queries(queries)
        with _state.setdefault("alarm_lock", threading.RLock()):
            previous = self.alarms.get(name)
            alarm = original_put(self, name, *args, **kwargs)
            if previous is None:  # AWS: a new alarm starts in INSUFFICIENT_DATA
                alarm.state_value = "INSUFFICIENT_DATA"
            else:  # an update keeps the state
                for attribute in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp"):
                    setattr(alarm, attribute, getattr(previous, attribute))
            _alarm_configured(self.account_id, self.region_name, alarm, created=previous is None)
        return alarm

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        with _state.setdefault("alarm_lock", threading.RLock()):
            alarm = self.alarms.get(alarm_name)
            old, old_reason = (alarm.state_value, alarm.state_reason) if alarm else ("", "")
            original_set(self, alarm_name, reason, reason_data, state_value)
            alarm = self.alarms[alarm_name]
            if old != alarm.state_value:
                _alarm_state_changed(self.account_id, self.region_name, alarm, old, old_reason)

    _replace(CloudWatchBackend, "put_metric_alarm", put_metric_alarm)
    _replace(CloudWatchBackend, "set_alarm_state", set_alarm_state)
    _replace(CloudWatchResponse, "describe_alarm_history", _describe_alarm_history)
    interval = float(os.environ.get("SOF_ALARM_EVALUATION_S") or ALARM_EVALUATION_S)
    _state["alarm_lag_s"] = interval + MotoSink.FLUSH_INTERVAL_S + 0.75
    if interval > 0:
        threading.Thread(target=_evaluate_alarms_forever, args=(interval,), name="alarms", daemon=True).start()


def _describe_alarm_history(self: Any) -> Any:
    """DescribeAlarmHistory (moto 5.2.5 answered HTTP 500): the emulator's history, filtered and paged."""
    from moto.cloudwatch.exceptions import InvalidParameterValue, ResourceNotFound
    from moto.core.responses import ActionResult

    name = self._get_param("AlarmName")
    kinds = self._get_param("AlarmTypes", []) or []
    item_type = self._get_param("HistoryItemType")
    start, end = self._get_param("StartDate"), self._get_param("EndDate")
    scan_by = self._get_param("ScanBy") or "TimestampDescending"
    max_records = int(self._get_param("MaxRecords") or 100)
    if not 1 <= max_records <= 100:
        raise InvalidParameterValue("The parameter MaxRecords must be between 1 and 100.")
    if item_type and item_type not in ("ConfigurationUpdate", "StateUpdate", "Action"):
        raise InvalidParameterValue(f"The value {item_type} for parameter HistoryItemType is not supported.")
    if (
        name
        and name not in self.cloudwatch_backend.alarms
        and not any(h["AlarmName"] == name for h in _state.get("alarm_history", []))
    ):
        raise ResourceNotFound()
    with _state.setdefault("alarm_lock", threading.RLock()):
        items = [dict(h) for h in _state.get("alarm_history", [])]
    items = [
        h
        for h in items
        if (not name or h["AlarmName"] == name)
        and (not kinds or h["AlarmType"] in kinds)
        and (not item_type or h["HistoryItemType"] == item_type)
        and (not start or h["Timestamp"] >= cwstats.aware(_as_datetime(start)))
        and (not end or h["Timestamp"] <= cwstats.aware(_as_datetime(end)))
    ]
    items.sort(key=lambda h: h["Timestamp"], reverse=scan_by == "TimestampDescending")
    token = self._get_param("NextToken")
    offset = int(token) if token and str(token).isdigit() else 0
    page = items[offset : offset + max_records]
    result: dict[str, Any] = {"AlarmHistoryItems": page}
    if offset + max_records < len(items):
        result["NextToken"] = str(offset + max_records)
    return ActionResult(result)


def _moto_queries(queries: list[dict[str, Any]]) -> list[Any]:
    """GetMetricData-style query dicts (an alarm's Metrics) as moto's ``MetricDataQuery`` objects."""
    from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat

    out = []
    for query in queries:
        stat = query.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=metric["MetricName"],
                    namespace=metric["Namespace"],
                    dimensions=[Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions") or []],
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        out.append(
            MetricDataQuery(
                query_id=query["Id"],
                label=str(query.get("Label") or ""),
                period=str(query.get("Period") or ""),
                return_data=query.get("ReturnData", True),
                expression=query.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return out


# -- CloudFormation: stacks whose resources the other services' APIs serve ------------------------


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


def _patch_cfn_state_machine() -> None:
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

    _replace(StateMachine, "create_from_cloudformation_json", classmethod(create))
    _replace(StateMachine, "update_from_cloudformation_json", classmethod(update))
    _replace(StateMachine, "delete_from_cloudformation_json", classmethod(delete))
    _replace(StateMachine, "get_cfn_attribute", get_cfn_attribute)
    _replace(StateMachine, "has_cfn_attr", classmethod(has_cfn_attr))


def _patch_cfn_lambda() -> None:
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

    _replace(LambdaFunction, "create_from_cloudformation_json", classmethod(create))
    _replace(LambdaFunction, "update_from_cloudformation_json", classmethod(update))


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


def _cfn_failure_reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    code = getattr(exc, "error_type", None) or getattr(exc, "code", None)
    return f"{code}: {message}" if isinstance(code, str) else str(message)


def _cfn_roll_back(stack: Any, kind: str, exc: Exception) -> None:
    """A failed create or update ends as on AWS: *_FAILED, then ROLLBACK_COMPLETE / UPDATE_ROLLBACK_COMPLETE."""
    import logging

    logging.getLogger("scale-or-fail").warning("stack %s: %s failed: %s", stack.name, kind, exc)
    reason = _cfn_failure_reason(exc)
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


def _patch_cfn_names() -> None:
    """The SageMaker types' name properties (before ``_patch_cloudformation_stacks`` clears the caches).

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
        _replace(model, "cloudformation_name_type", staticmethod(lambda prop=prop: prop))


def _patch_cloudformation_stacks() -> None:
    """Stacks through change sets (``aws cloudformation deploy``) as through CreateStack.

    moto 5.2.5 internals: ``CloudFormationBackend.create_stack`` / ``create_change_set`` /
    ``execute_change_set`` / ``update_stack`` / ``stacks``, ``Stack.create_resources`` /
    ``_parse_template`` / ``_create_output_map`` / ``_add_stack_event`` / ``resource_map``
    / ``output_map`` / ``exports`` / ``status``, ``ChangeSet.change_set_type`` / ``stack_id``
    / ``template`` / ``execution_status``, and ``parsing.get_model_list`` (an lru_cache of
    ``CloudFormationModel.__subclasses__()``, cleared so the Alarm type registers).
    """
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend, Stack

    _state["CfnAlarm"] = _make_cfn_alarm_class()
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()

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

    _replace(parsing, "parse_and_update_resource", parse_and_update_resource)
    _replace(CloudFormationBackend, "create_stack", create_stack)
    _replace(Stack, "create_resources", create_resources)
    _replace(CloudFormationBackend, "create_change_set", create_change_set)
    _replace(CloudFormationBackend, "execute_change_set", execute_change_set)
    _replace(CloudFormationBackend, "update_stack", update_stack)


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
        _patch_history_timing()
        _patch_reserved_concurrency()
        _patch_list_executions_stop_date()
        _patch_jsonpath_cache()
        _patch_cloudwatch()
        _patch_logs_insights()
        _patch_query_definitions()
        _patch_read_your_writes()
        _patch_sagemaker_runtime()
        _patch_aws_sdk_tasks()
        _patch_logs_api()
        _patch_stop_execution()
        _patch_interruptible_retry()
        _patch_describe_execution()
        _patch_execution_status_order()
        _patch_metric_statistics()
        _patch_alarms()
        _patch_cfn_state_machine()
        _patch_cfn_lambda()
        _patch_cfn_names()
        _patch_cloudformation_stacks()
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
