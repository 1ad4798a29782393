"""moto's request routing and parsing, used - not patched - by the request validation.

:mod:`scaleorfail.emulator.validation` checks every request against the botocore model of its
operation before moto serves it. Which operation a request is for, and how a query-protocol form
reads, it asks moto, so that the validation and moto's own responses agree: ``moto.core.utils.
get_service_model``, ``moto.core.routing.get_service_router(...).match`` (the per-protocol router
moto's responses use) and ``moto.core.parse.QueryParser``. Nothing here replaces anything in moto.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any


@functools.cache
def service_model(service: str) -> Any:
    """The botocore service model as moto loads it."""
    from moto.core.utils import get_service_model

    return get_service_model(service)


class _Empty:
    """A request body with nothing in it: routing never needs the body (the query protocol aside)."""

    def read(self, *args: Any) -> bytes:
        return b""

    def readline(self, *args: Any) -> bytes:
        return b""


def match(service: str, environ: dict[str, Any], content_type: str) -> tuple[Any, dict[str, Any]] | None:
    """(operation model, URI parameters) of a request to this service, or None when moto's router knows
    no such operation. The body is not read (``content_type`` tells the router the protocol)."""
    from moto.core.request import Request
    from moto.core.routing import get_service_router
    from werkzeug.exceptions import NotFound

    probe = dict(environ, CONTENT_TYPE=content_type, CONTENT_LENGTH="0")
    probe["wsgi.input"] = _Empty()
    try:
        operation, uri_params = get_service_router(service).match(Request(probe))
    except (NotFound, NotImplementedError, KeyError, ValueError):
        return None
    return operation, dict(uri_params)


def parse_query(operation: Any, pairs: Iterable[tuple[str, list[str]]], body: bytes) -> dict[str, Any]:
    """A query-protocol request's members, typed by moto's query parser (ValueError & co. when unreadable)."""
    from moto.core.parse import QueryParser
    from werkzeug.datastructures import Headers, MultiDict

    values: MultiDict[str, str] = MultiDict()
    for key, items in pairs:
        values.setlist(key, items)
    parsed = QueryParser(operation).parse(
        {"method": "POST", "values": values, "headers": Headers(), "body": body, "url_path": "/", "url_params": {}}
    )
    return dict(parsed)
