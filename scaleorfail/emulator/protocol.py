"""The request door in front of moto (a WSGI middleware): sizes, syntax, validation, and errors that
clients can read.

- Every request of a service the botocore models describe (:mod:`.validation`) has its body capped at
  AWS's limit for that operation (HTTP 413 ``RequestEntityTooLargeException``), is read as AWS reads
  it and validated against the operation's input shape (HTTP 400 with the service's own error code,
  naming the member). A Lambda Invoke payload that is not JSON is 400 ``InvalidRequestContentException``.
- A body of an ``application/x-amz-json-1.0`` / ``-1.1`` request that is not a JSON object is HTTP 400
  ``SerializationException`` before anything else, as on AWS.
- Errors are written in the request's protocol (JSON ``__type``, REST-JSON ``x-amzn-ErrorType``, query
  XML), whatever content type the request claimed: a form-encoded Lambda request gets Lambda's JSON.
- An unexpected exception inside the emulator becomes a JSON ``InternalFailure`` (HTTP 500), not an
  HTML page; an operation the emulator lacks is ``UnknownOperationException`` (HTTP 400).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from scaleorfail.emulator import validation

JSON_CONTENT_TYPES = ("application/x-amz-json-1.0", "application/x-amz-json-1.1")
MAX_BODY_BYTES = validation.DEFAULT_LIMIT

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
LOG = logging.getLogger("scale-or-fail")


def _respond(
    start_response: Callable[..., Any],
    status: int,
    error: str,
    message: str,
    content_type: str,
    protocol: str = "json",
) -> list[bytes]:
    request_id = str(uuid.uuid4())
    fault = "Sender" if status < 500 else "Receiver"
    if protocol == "query":
        body = (
            f'<ErrorResponse xmlns="https://aws.amazon.com/"><Error><Type>{fault}</Type><Code>{escape(error)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    else:
        body = json.dumps({"__type": error, "message": message, "Message": message}).encode("utf-8")
    reason = {400: "Bad Request", 413: "Request Entity Too Large", 500: "Internal Server Error"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error),
            ("x-amzn-query-error", f"{error};{fault}"),
        ],
    )
    return [body]


def malformed(body: bytes) -> str | None:
    """Why a JSON-protocol request body is unacceptable to AWS, or None when it is fine."""
    if not body.strip():
        return None  # an empty body is read as {} (operations without members)
    try:
        document = json.loads(body)
    except UnicodeDecodeError:
        return "the request body is not UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if not isinstance(document, dict):
        return "the request body must be a JSON object"
    return None


def _declared_length(environ: dict[str, Any]) -> int | None:
    try:
        return int(environ["CONTENT_LENGTH"]) if environ.get("CONTENT_LENGTH") else None
    except ValueError:
        return None


def _read(environ: dict[str, Any], length: int | None, limit: int) -> bytes | None:
    """The body, or None when it is larger than limit (a body without Content-Length is read up to it)."""
    stream = environ["wsgi.input"]
    if length is not None:
        return bytes(stream.read(length)) if length else b""
    if not environ.get("wsgi.input_terminated"):
        return b""
    body = bytes(stream.read(limit + 1))
    return None if len(body) > limit else body


def wrap(app: WsgiApp) -> WsgiApp:
    """The middleware around moto's WSGI application."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        content_type = str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        is_json = bool(environ.get("HTTP_X_AMZ_TARGET")) and content_type in JSON_CONTENT_TYPES
        try:
            target = validation.locate(environ)
        except Exception:  # the request is outside what the models describe: moto decides
            LOG.exception("could not locate the operation of %s", environ.get("PATH_INFO"))
            target = None
        protocol = target.protocol if target else "json"
        reply_type = content_type if is_json else ("text/xml" if protocol == "query" else "application/json")
        if target is not None or is_json:
            limit, operation = validation.body_limit(target, environ)
            length = _declared_length(environ)
            body = None if length is not None and length > limit else _read(environ, length, limit)
            if body is None:
                big = validation.too_large(limit, operation)
                return _respond(start_response, big.status, big.code, big.message, reply_type, protocol)
            problem = malformed(body) if is_json else None
            if problem:
                return _respond(start_response, 400, "SerializationException", problem, reply_type, protocol)
            if target is not None:
                found = validation.problems(target, environ, body)
                refused = validation.refusal(target, found) if found else validation.content_refusal(target, body)
                if refused is not None:
                    return _respond(start_response, refused.status, refused.code, refused.message, reply_type, protocol)
                moto_type = validation.normalised_content_type(target, content_type)
                if moto_type:
                    environ["CONTENT_TYPE"] = moto_type
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        try:
            return app(environ, start_response)
        except NotImplementedError as exc:
            return _respond(start_response, 400, "UnknownOperationException", str(exc), reply_type, protocol)
        except Exception as exc:  # never an HTML page: clients parse the JSON error
            LOG.exception("unexpected error serving %s", environ.get("PATH_INFO"))
            message = f"the emulator failed on this request: {type(exc).__name__}"
            return _respond(start_response, 500, "InternalFailure", message, reply_type, protocol)

    return middleware
