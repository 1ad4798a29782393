"""Request checks of the AWS JSON protocols, in front of moto (a WSGI middleware).

For the services that speak ``application/x-amz-json-1.0`` / ``-1.1`` (Step Functions,
CloudWatch Logs, CloudWatch, SageMaker, ...), AWS answers a body that is not a JSON object
with HTTP 400 ``SerializationException`` before it looks at the operation; moto 5.2.5
answered 200, 500 or 400 with ``__type: null``. JSON bodies above :data:`MAX_BODY_BYTES` get
HTTP 413 (no AWS JSON API takes more; S3 uploads are not JSON and are not capped here).
An unexpected exception inside the emulator becomes a JSON ``InternalFailure``
(HTTP 500) that clients can read, not an HTML page; an operation the emulator lacks is
``UnknownOperationException`` (HTTP 400) as AWS names an operation it does not have.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

MAX_BODY_BYTES = 16 * 1024 * 1024
JSON_CONTENT_TYPES = ("application/x-amz-json-1.0", "application/x-amz-json-1.1")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
LOG = logging.getLogger("scale-or-fail")


def _respond(
    start_response: Callable[..., Any], status: str, error: str, message: str, content_type: str
) -> list[bytes]:
    body = json.dumps({"__type": error, "message": message, "Message": message}).encode("utf-8")
    request_id = str(uuid.uuid4())
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-query-error", f"{error};Sender" if status.startswith("4") else f"{error};Receiver"),
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


def wrap(app: WsgiApp) -> WsgiApp:
    """The middleware around moto's WSGI application."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        content_type = str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        is_json = environ.get("HTTP_X_AMZ_TARGET") and content_type in JSON_CONTENT_TYPES
        reply_type = content_type if is_json else "application/json"
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if is_json and length > MAX_BODY_BYTES:
            return _respond(
                start_response,
                "413 Request Entity Too Large",
                "RequestEntityTooLargeException",
                f"the request body is {length} bytes; the emulator accepts at most {MAX_BODY_BYTES}",
                reply_type,
            )
        if is_json:
            body = environ["wsgi.input"].read(length) if length else b""
            problem = malformed(body)
            if problem:
                return _respond(start_response, "400 Bad Request", "SerializationException", problem, reply_type)
            environ["wsgi.input"] = io.BytesIO(body)
        try:
            return app(environ, start_response)
        except NotImplementedError as exc:
            return _respond(start_response, "400 Bad Request", "UnknownOperationException", str(exc), reply_type)
        except Exception as exc:  # never an HTML page: clients parse the JSON error
            LOG.exception("unexpected error serving %s", environ.get("PATH_INFO"))
            message = f"the emulator failed on this request: {type(exc).__name__}: {exc}"
            return _respond(start_response, "500 Internal Server Error", "InternalFailure", message, reply_type)

    return middleware
