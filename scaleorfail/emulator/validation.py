"""Request validation against the botocore service models, before a request reaches a backend.

Which service a request is for comes from its SigV4 credential scope (as moto dispatches it); which
operation, from moto's own per-protocol router (``moto.core.routing``, the same one its responses use;
reached through :mod:`.moto_ext.routing`, as every use of moto is).
The members are then read as AWS reads them - JSON bodies as sent, REST members from the URI, headers
and query string, query-protocol forms through moto's query parser - and checked against the
operation's input shape (:mod:`.shapes`): required members, types, lengths, ranges, enums and
patterns. A finding is an HTTP 400 with the error code that service uses for it (:data:`ERROR_CODES`)
and AWS's message ("1 validation error detected: Value null at 'stateMachineArn' failed to satisfy
constraint: Member must not be null"), never a 500.

Body sizes are capped per service and operation at AWS's limits (:func:`body_limit`) before the
body is read: HTTP 413 ``RequestEntityTooLargeException``.

S3 (REST-XML; object bodies of any type) is not validated here beyond what moto checks itself.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from scaleorfail.emulator.shapes import Checker, Problem

MB = 1024 * 1024
DEFAULT_LIMIT = 16 * MB  # no AWS JSON API takes more; a service not listed below is capped here
# AWS's documented request limits: (service, operation or "*") -> bytes.
LIMITS: dict[tuple[str, str], int] = {
    ("lambda", "Invoke"): 6 * MB,  # synchronous; asynchronous (Event) below
    ("lambda", "CreateFunction"): 69_905_067,  # a 50 MB zip, base64-encoded
    ("lambda", "UpdateFunctionCode"): 69_905_067,
    ("lambda", "PublishLayerVersion"): 69_905_067,
    ("lambda", "InvokeAsync"): 256 * 1024,  # the deprecated API keeps its 256 KB
    ("lambda", "*"): 6 * MB,
    ("stepfunctions", "*"): 1 * MB,  # "Maximum request size: 1 MB per request"
    ("sagemaker-runtime", "InvokeEndpoint"): 6 * MB,
    ("cloudwatch", "PutMetricData"): 1 * MB,
    ("logs", "PutLogEvents"): 1 * MB + 10_000 * 26 + 64 * 1024,  # 1 MB of events + 26 bytes each + the envelope
}
ASYNC_INVOKE_LIMIT = 1 * MB  # Invoke with InvocationType=Event: 1 MB since October 2025 (256 KB before)
OPERATION_NAMES = {("lambda", "Invoke"): "InvokeFunction"}

# Where the signing name is not the botocore service name.
SERVICES_BY_SIGNING_NAME: dict[str, tuple[str, ...]] = {
    "states": ("stepfunctions",),
    "monitoring": ("cloudwatch",),
    "tagging": ("resourcegroupstaggingapi",),
    "sagemaker": ("sagemaker-runtime", "sagemaker"),
    "email": ("ses",),
    "execute-api": ("apigateway",),
}
NOT_VALIDATED = frozenset({"s3", "s3control"})


@dataclass(frozen=True)
class Codes:
    """The error codes a service answers a bad request with."""

    constraint: str
    wrong_type: str
    missing: str | None = None  # when the service names a missing member apart


JSON_CODES = Codes("ValidationException", "SerializationException")
QUERY_CODES = Codes("ValidationError", "ValidationError")
ERROR_CODES: dict[str, Codes] = {
    "lambda": Codes("ValidationException", "InvalidParameterValueException"),
    "logs": Codes("InvalidParameterException", "SerializationException"),
    "cloudwatch": Codes("InvalidParameterValue", "InvalidParameterValue", missing="MissingParameter"),
    "sagemaker-runtime": Codes("ValidationError", "ValidationError"),
    "sns": Codes("InvalidParameter", "InvalidParameter"),
}


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


@dataclass
class Target:
    """The service and operation a request is for, with moto's operation model and URI parameters."""

    service: str
    protocol: str
    operation: Any = None
    uri_params: dict[str, Any] | None = None

    @property
    def operation_name(self) -> str | None:
        return None if self.operation is None else str(self.operation.name)


_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")


@functools.cache
def _known_services() -> frozenset[str]:
    from botocore.loaders import create_loader

    return frozenset(create_loader().list_available_services("service-2"))


def _service_model(service: str) -> Any:
    from scaleorfail.emulator.moto_ext import routing

    return routing.service_model(service)


def signing_name(environ: dict[str, Any]) -> str | None:
    found = _SCOPE.search(str(environ.get("HTTP_AUTHORIZATION") or ""))
    if found:
        return found.group(1).lower()
    query = parse_qs(str(environ.get("QUERY_STRING") or ""))
    for credential in query.get("X-Amz-Credential", []):
        parts = credential.split("/")
        if len(parts) == 5:
            return parts[3].lower()
    return None


def candidates(environ: dict[str, Any]) -> tuple[str, ...]:
    name = signing_name(environ)
    if name is None:
        return ()
    services = SERVICES_BY_SIGNING_NAME.get(name, (name,))
    return tuple(s for s in services if s in _known_services() and s not in NOT_VALIDATED)


def protocol_of(service: str, content_type: str) -> str:
    """The protocol the request speaks: the content type chooses between a service's protocols (CloudWatch
    takes JSON and query); a REST service reads any content type as its own protocol."""
    model = _service_model(service)
    supported = list(model.metadata.get("protocols", [model.protocol]))
    if content_type in ("application/x-amz-json-1.0", "application/x-amz-json-1.1") and "json" in supported:
        return "json"
    if content_type.startswith("application/x-www-form-urlencoded") and "query" in supported:
        return "query"
    for protocol in ("rest-json", "json", "query"):
        if protocol in supported:
            return protocol
    return str(model.protocol)


def locate(environ: dict[str, Any]) -> Target | None:
    """The service and, when moto's router knows it, the operation; None for requests outside the models."""
    from scaleorfail.emulator.moto_ext import routing

    content_type = str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    for service in candidates(environ):
        protocol = protocol_of(service, content_type)
        if protocol == "query":  # the Action is in the form body, read by the caller first
            return Target(service, protocol)
        found = routing.match(service, environ, _moto_content_type(protocol))
        if found is not None:
            return Target(service, protocol, *found)
    return None


def _moto_content_type(protocol: str) -> str:
    return {"json": "application/x-amz-json-1.1", "rest-json": "application/json"}.get(
        protocol, "application/x-www-form-urlencoded"
    )


def normalised_content_type(target: Target, content_type: str) -> str | None:
    """The content type moto must see for a REST-JSON request whose own would make moto give up (a form
    type on Lambda: moto looks for a query protocol Lambda lacks and answers an empty HTML 404)."""
    if target.protocol == "rest-json" and not content_type.startswith("application/json"):
        return "application/octet-stream"
    return None


def body_limit(target: Target | None, environ: dict[str, Any]) -> tuple[int, str]:
    """(bytes, the operation's name in the message) for a request's body."""
    if target is None:
        return DEFAULT_LIMIT, "this"
    operation = target.operation_name or "*"
    name = OPERATION_NAMES.get((target.service, operation), operation)
    invocation = str(environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "").strip()
    if (target.service, operation) == ("lambda", "Invoke") and invocation == "Event":
        return ASYNC_INVOKE_LIMIT, "InvokeAsync"
    limit = LIMITS.get((target.service, operation)) or LIMITS.get((target.service, "*")) or DEFAULT_LIMIT
    return limit, name


def too_large(limit: int, operation: str) -> Refusal:
    return Refusal(413, "RequestEntityTooLargeException", f"Request must be smaller than {limit} bytes for the "
                   f"{operation} operation")  # fmt: skip


def _query_operation(target: Target, environ: dict[str, Any], body: bytes) -> None:
    action = parse_qs(body.decode("utf-8", "replace")).get("Action") or parse_qs(
        str(environ.get("QUERY_STRING") or "")
    ).get("Action")
    if not action:
        return
    model = _service_model(target.service)
    if action[0] in model.operation_names:
        target.operation = model.operation_model(action[0])
        target.uri_params = {}


def _location_value(shape: Any, text: str) -> Any:
    """A REST member from the URI, a header or the query string, typed as AWS reads it."""
    if shape.type_name in ("integer", "long"):
        return int(text) if re.fullmatch(r"-?\d+", text) else text
    if shape.type_name == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    if shape.type_name in ("double", "float"):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def rest_members(target: Target, environ: dict[str, Any], body: bytes) -> dict[str, Any] | Problem:
    """A REST-JSON request's members by their wire names: URI labels, headers, query string and body."""
    shape = target.operation.input_shape
    found: dict[str, Any] = {}
    query = parse_qs(str(environ.get("QUERY_STRING") or ""), keep_blank_values=True)
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            value = (target.uri_params or {}).get(wire)
            if value is not None:
                found[wire] = _location_value(member, unquote(str(value)))
        elif location == "header":
            value = environ.get("HTTP_" + wire.upper().replace("-", "_"))
            if value is not None:
                found[wire] = _location_value(member, str(value))
        elif location == "querystring":
            values = query.get(wire)
            if values:
                found[wire] = (
                    [_location_value(member.member, v) for v in values]
                    if member.type_name == "list"
                    else _location_value(member, values[0])
                )
    payload = shape.serialization.get("payload")
    if payload:
        member = shape.members[payload]
        if member.type_name in ("blob", "string"):
            if body:
                found[member.serialization.get("name", payload)] = body if member.type_name == "blob" else (
                    body.decode("utf-8", "replace")
                )  # fmt: skip
            return found
        document = _json(body)
        if isinstance(document, Problem):
            return document
        found[payload] = document
        return found
    document = _json(body)
    if isinstance(document, Problem):
        return document
    if not isinstance(document, dict):
        return Problem("type", "request", "the request body must be a JSON object")
    for name, member in shape.members.items():
        if member.serialization.get("location"):
            continue
        wire = member.serialization.get("name", name)
        if wire in document:
            found[wire] = document[wire]
    return found


def _json(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Problem("type", "request", f"the request body is not valid JSON: {exc}")


def query_members(target: Target, environ: dict[str, Any], body: bytes) -> dict[str, Any] | Problem:
    from scaleorfail.emulator.moto_ext import routing

    pairs = [
        item
        for text in (str(environ.get("QUERY_STRING") or ""), body.decode("utf-8", "replace"))
        for item in parse_qs(text, keep_blank_values=True).items()
    ]
    try:
        return routing.parse_query(target.operation, pairs, body)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return Problem("type", "request", f"a parameter of {target.operation_name} cannot be read: {exc}")


def problems(target: Target, environ: dict[str, Any], body: bytes) -> list[Problem]:
    """Everything wrong with the request's members (empty when it is valid or outside the models)."""
    if target.protocol == "query" and target.operation is None:
        _query_operation(target, environ, body)
    if target.operation is None or target.operation.input_shape is None:
        return []
    if target.protocol == "json":
        document = _json(body)
        if isinstance(document, Problem):
            return [document]
        return Checker("wire").check_request(document, target.operation.input_shape)
    if target.protocol == "rest-json":
        members = rest_members(target, environ, body)
        if isinstance(members, Problem):
            return [members]
        return Checker("wire").check_request(members, target.operation.input_shape)
    if target.protocol == "query":
        parsed = query_members(target, environ, body)
        if isinstance(parsed, Problem):
            return [parsed]
        return Checker("parsed").check_request(parsed, target.operation.input_shape)
    return []


DEFINITION_OPERATIONS = ("CreateStateMachine", "UpdateStateMachine")


def content_refusal(target: Target, body: bytes) -> Refusal | None:
    """What the service refuses in a well-formed request's content: an Invoke payload that is not JSON,
    a state machine definition whose states do not hold together (asl_validation.py)."""
    if target.service == "stepfunctions" and target.operation_name in DEFINITION_OPERATIONS:
        from scaleorfail.emulator import asl_validation

        definition = _json(body).get("definition") if isinstance(_json(body), dict) else None
        found = asl_validation.diagnose(definition) if isinstance(definition, str) else []
        return Refusal(400, "InvalidDefinition", asl_validation.message(found)) if found else None
    if (target.service, target.operation_name) != ("lambda", "Invoke") or not body.strip():
        return None
    try:
        json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Refusal(
            400,
            "InvalidRequestContentException",
            f"Could not parse request body into json: Could not parse payload into json: {exc}",
        )
    return None


def refusal(target: Target, found: list[Problem]) -> Refusal:
    """The 400 the service answers these problems with."""
    codes = ERROR_CODES.get(target.service) or (QUERY_CODES if target.protocol == "query" else JSON_CODES)
    wrong_types = [p for p in found if p.kind == "type"]
    if wrong_types:
        return Refusal(400, codes.wrong_type, "; ".join(p.message for p in wrong_types[:10]))
    count = len(found)
    text = "; ".join(p.message for p in found[:10])
    code = codes.constraint
    if codes.missing and all("must not be null" in p.message for p in found):
        code = codes.missing
    return Refusal(400, code, f"{count} validation error{'s' if count != 1 else ''} detected: {text}")


def _size(limit: int) -> str:
    return (
        f"{limit // MB} MB" if limit % MB == 0 else f"{limit // 1024} KB" if limit % 1024 == 0 else f"{limit:,} bytes"
    )


def describe(service: str, operation: str) -> str:
    """What the emulator checks of this operation's requests (the compatibility table's column)."""
    if service in NOT_VALIDATED:
        return "no (moto's own checks)"
    try:
        model = _service_model(service)
    except Exception:
        return "-"
    if operation not in model.operation_names:
        return "-"
    limit = LIMITS.get((service, operation)) or LIMITS.get((service, "*")) or DEFAULT_LIMIT
    text = f"model; body <= {_size(limit)}"
    if (service, operation) == ("lambda", "Invoke"):
        text += f" sync, {_size(ASYNC_INVOKE_LIMIT)} async; payload must be JSON"
    return text
