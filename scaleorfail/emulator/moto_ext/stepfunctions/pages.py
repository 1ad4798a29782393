"""GetExecutionHistory pages in O(page): every event put in its wire form once, pages sliced from that.

moto answered each GetExecutionHistory by deep-copying the whole history
(``EventManager.get_event_history``) and walking its botocore shape with the generic response
serializer, about 0.7 ms of CPU per event served with the GIL held - so a console reading a
live 8,500-event history slowed the execution it watched. Here:

* :class:`EventCodec` is compiled once from the same botocore model moto serialises with
  (``GetExecutionHistory``'s ``HistoryEvent`` shape): members the model does not know are
  dropped, timestamps become epoch seconds truncated to the millisecond, enums their value -
  the JSON protocol's rules as moto's ``BaseJSONSerializer`` applies them - at a few
  microseconds an event instead of hundreds;
* :class:`HistoryPages` keeps each event's JSON text, made the first time a page holds it
  (with and without execution data), so a page costs what it holds, whatever the history's length;
* :func:`page` reads the execution's live event list without copying it (events are never
  changed once appended), and pages as AWS pages: at most 1,000 events, 100 by default,
  ``reverseOrder`` newest first, a ``nextToken`` that names the next event (so a history that
  grows between two calls is neither skipped nor repeated), ``InvalidToken`` for a token from
  another execution or direction.

Reads (no patch): ``Execution.exec_worker.env.event_manager._history_event_list`` of moto's
parser ``EventManager``, or ``raw_events()`` of a finished execution's packed history
(:mod:`.executions`).
"""

from __future__ import annotations

import base64
import calendar
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

HISTORY_PAGE_MAX = 1000
HISTORY_PAGE_DEFAULT = 100  # AWS: "The default is 100 and the maximum allowed page size is 1000. 0 uses the default."
EXECUTION_DATA_FIELDS = ("input", "output", "inputDetails", "outputDetails")
CACHE_CHARS = 64 * 1024 * 1024  # encoded events kept across executions (least recently read dropped first)

Converter = Callable[[Any], Any]


class InvalidPageTokenError(ValueError):
    """A nextToken this history did not hand out (the API answers InvalidToken)."""


def _timestamp_converter() -> Converter:
    """moto's timestamp conversion for the JSON protocol (epoch seconds, truncated to the millisecond),
    with a fast path for the ISO 8601 strings and datetimes the interpreter writes."""
    from moto.core.serialize import TimestampSerializer

    unix = TimestampSerializer.TIMESTAMP_FORMAT_UNIX
    serializer = TimestampSerializer(unix)

    def convert(value: Any) -> Any:
        moment = value
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
        if not isinstance(moment, datetime):
            return serializer._convert_timestamp_to_str(value, unix)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        base = calendar.timegm(moment.timetuple())  # as moto's TimestampSerializer._timestamp_unixtimestamp
        return base + (moment.microsecond // 1000) / 1000.0 if moment.microsecond else base

    return convert


def _string(value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    return value if value in (None, {}, []) else str(value)


def _compile(shape: Any, memo: dict[str, Converter]) -> Converter:
    """A converter of values of `shape` to the JSON protocol's plain values."""
    kind = shape.type_name
    if kind == "structure":
        if getattr(shape, "is_document_type", False):
            return lambda value: value
        key = f"structure:{shape.name}"
        if key in memo:
            return memo[key]
        members: dict[str, tuple[str, Converter]] = {}

        def structure(value: Any) -> Any:
            out: dict[str, Any] = {}
            for name, item in value.items():
                found = members.get(name)
                if found is not None and item is not None:
                    out[found[0]] = found[1](item)
            return out

        memo[key] = structure  # before the members: a recursive shape refers to itself
        for name, member in shape.members.items():
            members[name] = (member.serialization.get("name", name), _compile(member, memo))
        return structure
    if kind == "list":
        item = _compile(shape.member, memo)
        return lambda value: [item(v) for v in value]
    if kind == "map":
        mapped = _compile(shape.value, memo)
        return lambda value: {k: mapped(v) for k, v in value.items()}
    if kind == "timestamp":
        return _timestamp_converter()
    if kind == "string":
        return _string
    if kind in ("integer", "long"):
        return int
    if kind in ("float", "double"):
        return float
    if kind == "blob":
        return lambda value: base64.b64encode(value.encode() if isinstance(value, str) else value).decode()
    return lambda value: value  # boolean and the rest: as they are


class EventCodec:
    """History events in the JSON GetExecutionHistory answers with, per the botocore model."""

    def __init__(self) -> None:
        from moto.core.utils import get_service_model

        operation = get_service_model("stepfunctions").operation_model("GetExecutionHistory")
        self.convert = _compile(operation.output_shape.members["events"].member, {})

    def encode(self, event: Any, include_data: bool = True) -> str:
        converted = self.convert(event)
        if not include_data:
            for key, value in converted.items():
                if key.endswith("EventDetails") and isinstance(value, dict):
                    converted[key] = {k: v for k, v in value.items() if k not in EXECUTION_DATA_FIELDS}
        return json.dumps(converted, separators=(",", ":"))


_codec: EventCodec | None = None
_codec_lock = threading.Lock()


def codec() -> EventCodec:
    global _codec  # noqa: PLW0603 - built once, on first use (the botocore model takes a moment to load)
    if _codec is None:
        with _codec_lock:
            if _codec is None:
                _codec = EventCodec()
    return _codec


class HistoryPages:
    """One execution's events in wire form, each encoded the first time a page holds it."""

    def __init__(self) -> None:
        self._encoded: dict[bool, list[str | None]] = {True: [], False: []}
        self._lock = threading.Lock()
        self.chars = 0
        self.encoded = 0  # events encoded (each at most once per form)

    def texts(self, events: Sequence[Any], indices: range, include_data: bool) -> list[str]:
        """The JSON text of events[i] for i in indices (in that order)."""
        cache = self._encoded[include_data]
        with self._lock:
            if len(cache) < len(events):
                cache.extend([None] * (len(events) - len(cache)))
            out: list[str] = []
            for index in indices:
                text = cache[index]
                if text is None:
                    text = cache[index] = codec().encode(events[index], include_data)
                    self.chars += len(text)
                    self.encoded += 1
                out.append(text)
            return out


_pages: OrderedDict[int, tuple[Any, HistoryPages]] = OrderedDict()  # id(execution) -> (execution, its pages)
_pages_lock = threading.Lock()


def pages_of(execution: Any) -> HistoryPages:
    """The execution's encoded events (kept for the most recently read executions, CACHE_CHARS in all)."""
    key = id(execution)
    with _pages_lock:
        found = _pages.get(key)
        if found is not None and found[0] is execution:
            _pages.move_to_end(key)
            return found[1]
        pages = HistoryPages()
        _pages[key] = (execution, pages)  # the entry holds the execution: its id is not reused meanwhile
        total = sum(p.chars for _, p in _pages.values())
        while len(_pages) > 1 and total > CACHE_CHARS:
            _, (_, dropped) = _pages.popitem(last=False)
            total -= dropped.chars
        return pages


def forget(execution: Any) -> None:
    """Drop the execution's encoded events (e.g. when retention evicts it)."""
    with _pages_lock:
        found = _pages.get(id(execution))
        if found is not None and found[0] is execution:
            del _pages[id(execution)]


def events_of(execution: Any) -> Sequence[Any]:
    """The execution's history events as held (not copied): read them, never change them."""
    env = getattr(getattr(execution, "exec_worker", None), "env", None)
    if env is None:  # not started yet
        return []
    manager = env.event_manager
    raw = getattr(manager, "raw_events", None)
    if raw is not None:
        return raw()  # type: ignore[no-any-return]
    return manager._history_event_list  # type: ignore[no-any-return]


def _token(arn: str, reverse: bool, next_id: int) -> str:
    return f"{arn}:{'r' if reverse else 'f'}{next_id}"


def _start_from(arn: str, reverse: bool, token: str | None, count: int) -> int:
    """The index of the page's first event."""
    if not token:
        return count - 1 if reverse else 0
    owner, _, position = token.rpartition(":")
    direction = "r" if reverse else "f"
    if owner != arn or not position.startswith(direction) or not position[1:].isdigit():
        raise InvalidPageTokenError(
            "the nextToken does not belong to this request (keep executionArn and reverseOrder unchanged)"
        )
    return int(position[1:]) - 1  # event ids are 1, 2, ...: index = id - 1


def page(
    execution: Any, arn: str, max_results: int | None, reverse: bool, token: str | None, include_data: bool
) -> str:
    """The GetExecutionHistory answer (JSON text) for one page of the execution's history."""
    size = max(1, min(int(max_results or HISTORY_PAGE_DEFAULT), HISTORY_PAGE_MAX))
    events = events_of(execution)
    count = len(events)  # a history only grows: what is appended after this is for the next page
    start = _start_from(arn, reverse, token, count)
    if reverse:
        start = min(start, count - 1)
        indices = range(start, max(start - size, -1), -1)
        after = indices[-1] - 1 if indices else -1
        more = after >= 0
    else:
        indices = range(start, min(start + size, count))
        after = indices[-1] + 1 if indices else start
        more = after < count
    texts = pages_of(execution).texts(events, indices, include_data)
    body = '{"events":[' + ",".join(texts) + "]"
    if more:
        body += ',"nextToken":' + json.dumps(_token(arn, reverse, after + 1))
    return body + "}"
