"""Lambda: invocations served by the process runtime, reserved concurrency and its 429, packages.

Every Lambda behaviour of the emulator lives here:

* **Invoke** (``LambdaBackend.invoke`` / ``LambdaSimpleBackend.invoke``, reading the
  ``LambdaFunction`` attributes ``code_bytes``, ``code_sha_256``, ``handler``, ``run_time``,
  ``memory_size``, ``timeout``, ``environment_vars``, ``reserved_concurrency``, ``version``,
  ``function_arn``; ``moto.awslambda.utils.get_backend`` picks the Docker-less backend):
  served by :mod:`scaleorfail.emulator.runtime` instead of Docker. :func:`direct_invoke` is
  the same call for Step Functions tasks (in-process, no HTTP; see ``stepfunctions.tasks``).
* **Reserved concurrency and the 429.** The runtime decides a throttle (``ThrottledError``);
  here it becomes AWS's answer: HTTP 429 TooManyRequestsException "Rate Exceeded." with its
  Reason on the Invoke API (:class:`LambdaTooManyRequestsError`), and the ClientError a
  Step Functions task records (:func:`direct_invoke`). :func:`reservations` feeds the
  runtime every function's reservation (``LambdaBackend.list_functions``), and
  PutFunctionConcurrency keeps min(100, account limit) unreserved, as AWS does.
* **GetAccountSettings** (absent from moto 5.2.5): a route added to ``url_paths``, served by
  :class:`LambdaAccountAPI`, a ``LambdaResponse`` subclass (moto's ``awslambda_simple`` pattern).
* **Deployment packages** checked at CreateFunction / UpdateFunctionCode
  (``LambdaFunction._set_function_code``).

CloudFormation's ``AWS::Lambda::Function`` handlers are in :mod:`.cloudformation`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

from moto.awslambda import urls as lambda_urls
from moto.awslambda.responses import LambdaResponse
from moto.core.exceptions import JsonRESTError

from scaleorfail.emulator.moto_ext.core import client_error, declare, override, replace, replace_item, runtime
from scaleorfail.emulator.runtime import FunctionSpec, ThrottledError
from scaleorfail.emulator.settings import ACCOUNT_ID

MIN_UNRESERVED = 100  # AWS keeps min(100, account limit) of the account concurrency unreserved
ACCOUNT_SETTINGS_ROUTE = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"


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


def lambda_backend(account_id: str, region: str) -> Any:
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
    backend = lambda_backend(account_id, region)
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


class LambdaTooManyRequestsError(JsonRESTError):
    """The Invoke API's throttle: HTTP 429 TooManyRequestsException "Rate Exceeded." with its Reason."""

    code = 429

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")
        self.description = json.dumps(
            {"__type": "TooManyRequestsException", "message": "Rate Exceeded.", "Reason": reason, "Type": "User"}
        )


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
        raise LambdaTooManyRequestsError(throttled.reason, throttled.detail) from None
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


def direct_invoke(parameters: dict[str, Any], region: str) -> dict[str, Any]:
    """Invoke from a Step Functions task, in-process (same semantics as the API)."""
    name = str(parameters["FunctionName"])
    account, fn_region = _split_function_arn(name, ACCOUNT_ID, region)
    backend = lambda_backend(account, fn_region)
    try:
        fn = backend.get_function(name, parameters.get("Qualifier"))
    except Exception as exc:  # moto raises UnknownFunctionException
        raise client_error("ResourceNotFoundException", f"Function not found: {name} ({exc})", 404) from None
    payload = parameters.get("Payload")
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    try:
        result = runtime().invoke(cached_spec(fn), payload or b"{}")
    except ThrottledError as throttled:
        # Lambda's message is exactly "Rate Exceeded."; Step Functions records it as the cause
        # "Rate Exceeded. (Service: AWSLambda; Status Code: 429; Error Code: TooManyRequestsException; ...)".
        raise client_error("TooManyRequestsException", "Rate Exceeded.", 429, Reason=throttled.reason) from None
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


@declare(
    "moto.awslambda.models.LambdaBackend.invoke",
    why="the Invoke API served by the process runtime (moto runs Docker), with the 429 of a throttle",
)
@declare(
    "moto.awslambda_simple.models.LambdaSimpleBackend.invoke",
    why="the same for the Docker-less backend moto serves when use_docker is off (moto echoes the payload)",
)
def _invoke() -> None:
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend

    replace(LambdaBackend, "invoke", _backend_invoke)
    replace(LambdaSimpleBackend, "invoke", _backend_invoke)


# -- GetAccountSettings -------------------------------------------------------------------------


@override(
    "moto.awslambda.responses.LambdaResponse.get_account_settings",
    adds=True,
    why="GetAccountSettings (absent from moto 5.2.5): the emulator's account concurrency limit",
)
def _get_account_settings(self: Any) -> Any:
    functions = list(lambda_backend(self.current_account, self.region).list_functions())
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


class LambdaAccountAPI(LambdaResponse):
    """moto's Lambda API with GetAccountSettings (served on its own route only)."""

    get_account_settings = _get_account_settings


@declare(
    f"moto.awslambda.urls.url_paths[{ACCOUNT_SETTINGS_ROUTE}]",
    adds=True,
    why="the GetAccountSettings route, served by LambdaAccountAPI",
)
def _account_settings_route() -> None:
    replace_item(lambda_urls, "url_paths", ACCOUNT_SETTINGS_ROUTE, LambdaAccountAPI.dispatch)


# -- Lambda: reserved concurrency leaves the minimum unreserved ---------------------------------


@declare(
    "moto.awslambda.models.LambdaBackend.put_function_concurrency",
    why="AWS keeps min(100, account limit) unreserved: a reservation below that is an "
    "InvalidParameterValueException (moto accepts any); clears the reservations cache",
)
def _reserved_concurrency_minimum() -> None:
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

    replace(LambdaBackend, "put_function_concurrency", put_function_concurrency)


# -- Lambda: deployment packages checked on upload (issue 12) ----------------------------------


@declare(
    "moto.awslambda.models.LambdaFunction._set_function_code",
    why="CreateFunction / UpdateFunctionCode refuse an unsafe or broken zip (moto stores any bytes; "
    "the runtime failed at the first Invoke)",
)
def _package_validation() -> None:
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

    replace(LambdaFunction, "_set_function_code", set_function_code)
