"""CloudWatch Logs: filter patterns, Logs Insights, saved queries, read-your-writes, retention.

:class:`LogsAPI` is moto's ``LogsResponse`` with these actions overridden or added, served
through moto's ``url_paths`` (moto's own extension point, as ``awslambda_simple`` does):

* every action first flushes the write-behind sink (``call_action``): a read sees every
  record queued before the request;
* FilterLogEvents: the three filter-pattern forms (:mod:`scaleorfail.emulator.filterpattern`),
  the stream name prefix, events in time order across streams (moto matched JSON,
  space-delimited and ``?A ?B`` patterns against every event and ignored the prefix);
* StartQuery / GetQueryResults / DescribeQueries and the added StopQuery / GetLogRecord:
  Logs Insights run by :mod:`scaleorfail.emulator.logs_insights` (moto ran the query inside
  ``LogQuery.__init__``: a malformed query was an HTTP 500);
* Put/Describe/DeleteQueryDefinition(s) (absent from moto 5.2.5): saved queries.

They read ``logs_backend.groups``, ``LogGroup.streams``, ``LogStream.events`` and ``LogEvent``
(``timestamp``, ``message``, ``ingestion_time``, ``event_id``). :func:`trim_logs` keeps the
events within the retention count (``LogStream.events`` / ``stored_bytes``). The sink that
writes the logs is :class:`.core.MotoSink`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.logs import urls as logs_urls
from moto.logs.responses import LogsResponse

from scaleorfail.emulator import filterpattern
from scaleorfail.emulator import logs_insights as insights
from scaleorfail.emulator.moto_ext.core import declare, flush_sink, override, replace_item, state

MAX_QUERIES_KEPT = 1000
MAX_QUERY_CHARS = 10_000
MAX_FILTER_EVENTS = 10_000
RESPONSE = "moto.logs.responses.LogsResponse"
ROUTE = "{0}/$"


@override(f"{RESPONSE}.call_action", why="reads of logs see every record queued before the request (sink flushed)")
def _call_action(self: Any) -> Any:
    flush_sink()
    return LogsResponse.call_action(self)


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
    raw = json.dumps([group, stream, index], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unpointer(pointer: str) -> tuple[str, str, int] | None:
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


def _malformed_query(message: str, query: str = "") -> Exception:
    """AWS's 400, with where in the query the error is (queryCompileError.location, character offsets)."""
    from moto.core.exceptions import JsonRESTError

    start, end = _error_location(message, query)
    error = JsonRESTError("MalformedQueryException", message)
    error.code = 400
    error.description = json.dumps(
        {
            "__type": "MalformedQueryException",
            "message": message,
            "queryCompileError": {"location": {"startCharOffset": start, "endCharOffset": end}, "message": message},
        }
    )
    return error


def _error_location(message: str, query: str) -> tuple[int, int]:
    """The offsets of the symbol an error message quotes ('fieldz'), or of the last '|' it complains about."""
    quoted = re.search(r"'([^']+)'", message)
    symbol = quoted.group(1) if quoted else ""
    found = (query.rfind if "ends with" in message else query.find)(symbol) if symbol else -1
    if found >= 0:
        return found, found + len(symbol) - 1
    return (0, 0) if not query else (len(query.rstrip()) - 1, len(query.rstrip()) - 1)


@override(
    f"{RESPONSE}.start_query", why="the query parsed first (MalformedQueryException, HTTP 400), then run by our engine"
)
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
        raise _malformed_query(str(exc), query_string) from None
    flush_sink()
    try:
        result = insights.execute(query_string, _insights_events(groups), start * 1000, end * 1000 + 999)
    except insights.QueryError as exc:
        raise _malformed_query(str(exc), query_string) from None
    if limit is not None:
        result.rows = result.rows[:limit]
    query_id = str(uuid.uuid4())
    store: dict[str, dict[str, Any]] = state.setdefault("queries", {})
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

    found = state.get("queries", {}).get(str(query_id))
    if found is None:
        raise ResourceNotFoundException("Query does not exist.")
    return dict(found)


@override(f"{RESPONSE}.get_query_results", why="the results and statistics of our engine")
def _get_query_results(self: Any) -> str:
    query = _query(self._get_param("queryId"))
    result: insights.Result = query["result"]
    rows = [[{"field": k, "value": v} for k, v in row.items()] for row in result.rows]
    return json.dumps({"results": rows, "statistics": result.statistics(), "status": query["status"]})


@override(f"{RESPONSE}.stop_query", adds=True, why="StopQuery (absent from moto 5.2.5)")
def _stop_query(self: Any) -> str:
    query = _query(self._get_param("queryId"))
    if query["status"] in ("Scheduled", "Running"):
        state["queries"][query["queryId"]]["status"] = "Cancelled"
        return json.dumps({"success": True})
    return json.dumps({"success": False})


@override(f"{RESPONSE}.describe_queries", why="the queries our StartQuery ran")
def _describe_queries(self: Any) -> str:
    group, status = self._get_param("logGroupName"), self._get_param("status")
    max_results = int(self._get_param("maxResults") or 1000)
    found = [
        {k: q[k] for k in ("queryId", "queryString", "status", "createTime", "logGroupName")}
        for q in list(state.get("queries", {}).values())
        if (not group or group in q["logGroupNames"]) and (not status or q["status"] == status)
    ]
    found.sort(key=lambda q: q["createTime"], reverse=True)
    return json.dumps({"queries": found[:max_results]})


@override(
    f"{RESPONSE}.get_log_record", adds=True, why="GetLogRecord (absent from moto 5.2.5): the @ptr of a result row"
)
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


@override(
    f"{RESPONSE}.filter_log_events",
    why="the three filter-pattern forms and logStreamNamePrefix (moto matched every event, ignored the prefix)",
)
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


# -- saved queries -----------------------------------------------------------------------------

_definitions: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
_definitions_lock = threading.Lock()


def _definitions_of(response: Any) -> dict[str, dict[str, Any]]:
    return _definitions.setdefault((response.current_account, response.region), {})


@override(f"{RESPONSE}.put_query_definition", adds=True, why="saved Logs Insights queries (absent from moto 5.2.5)")
def _put_query_definition(self: Any) -> str:
    name = self._get_param("name")
    query = self._get_param("queryString")
    if not name or not query:
        from moto.logs.exceptions import InvalidParameterException

        raise InvalidParameterException("name and queryString are required")
    with _definitions_lock:
        table = _definitions_of(self)
        ident = self._get_param("queryDefinitionId") or str(uuid.uuid4())
        table[ident] = {
            "queryDefinitionId": ident,
            "name": name,
            "queryString": query,
            "lastModified": int(datetime.now(UTC).timestamp() * 1000),
            "logGroupNames": list(self._get_param("logGroupNames") or []),
        }
    return json.dumps({"queryDefinitionId": ident})


@override(
    f"{RESPONSE}.describe_query_definitions", adds=True, why="saved Logs Insights queries (absent from moto 5.2.5)"
)
def _describe_query_definitions(self: Any) -> str:
    prefix = self._get_param("queryDefinitionNamePrefix") or ""
    with _definitions_lock:
        found = [dict(d) for d in _definitions_of(self).values() if d["name"].startswith(prefix)]
    return json.dumps({"queryDefinitions": sorted(found, key=lambda d: d["name"])})


@override(f"{RESPONSE}.delete_query_definition", adds=True, why="saved Logs Insights queries (absent from moto 5.2.5)")
def _delete_query_definition(self: Any) -> str:
    ident = self._get_param("queryDefinitionId")
    with _definitions_lock:
        removed = _definitions_of(self).pop(ident, None)
    if removed is None:
        from moto.logs.exceptions import ResourceNotFoundException

        raise ResourceNotFoundException("The specified query definition does not exist.")
    return json.dumps({"success": True})


class LogsAPI(LogsResponse):
    """moto's CloudWatch Logs API with the actions above."""

    call_action = _call_action
    filter_log_events = _filter_log_events
    start_query = _start_query
    get_query_results = _get_query_results
    stop_query = _stop_query
    describe_queries = _describe_queries
    get_log_record = _get_log_record
    put_query_definition = _put_query_definition
    describe_query_definitions = _describe_query_definitions
    delete_query_definition = _delete_query_definition


@declare(f"moto.logs.urls.url_paths[{ROUTE}]", why="the CloudWatch Logs API served by LogsAPI")
def _route() -> None:
    replace_item(logs_urls, "url_paths", ROUTE, LogsAPI.dispatch)


# -- retention (issue 12) -----------------------------------------------------------------------


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
