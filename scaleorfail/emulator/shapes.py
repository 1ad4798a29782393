"""Checking a request's members against a botocore shape: required members, types, lengths, ranges,
enums and patterns, with the messages AWS's request validation writes.

botocore's own ``ParamValidator`` checks what a client should check before sending (required members,
types and minimums; no maximums, enums or patterns, which AWS may relax over time); a server checks
them all, and sees JSON as sent - a string where an integer belongs is a serialization error, not a
value to coerce. Values come in two forms: ``wire`` (JSON as decoded: blobs are base64 text) and
``parsed`` (moto's query-protocol parser already converted them: blobs are bytes, timestamps
datetimes). Imports nothing from moto.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import re
from dataclasses import dataclass
from typing import Any

MAX_SHOWN = 100  # characters of a value repeated in a message


@dataclass(frozen=True)
class Problem:
    """One finding: ``kind`` is "type" (the value cannot be read as its shape) or "constraint"."""

    kind: str
    path: str
    message: str


@functools.lru_cache(maxsize=2048)
def _pattern(text: str) -> re.Pattern[str] | None:
    """The model's (Java) pattern, or None when Python's re cannot read it (e.g. \\p{ASCII}): not checked."""
    try:
        return re.compile(text, re.DOTALL)
    except re.error:
        return None


def _shown(value: Any, sensitive: bool) -> str:
    if sensitive:
        return "'***'"
    text = value if isinstance(value, str) else str(value)
    return "'" + (text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "...") + "'"


def member_path(parent: str, name: str) -> str:
    """AWS names a member by its lowerCamel name, dotted from the request's top: 'logEvents.1.member.message'."""
    name = name[:1].lower() + name[1:]
    return f"{parent}.{name}" if parent else name


class Checker:
    def __init__(self, mode: str = "wire") -> None:
        assert mode in ("wire", "parsed")
        self.mode = mode
        self.problems: list[Problem] = []

    def constraint(self, path: str, value: Any, sensitive: bool, rule: str) -> None:
        shown = "null" if value is None else _shown(value, sensitive)
        self.problems.append(
            Problem("constraint", path, f"Value {shown} at '{path}' failed to satisfy constraint: Member must {rule}")
        )

    def wrong_type(self, path: str, value: Any, expected: str) -> None:
        found = {dict: "STRUCTURE", list: "LIST", str: "STRING_VALUE", bool: "BOOLEAN_VALUE"}.get(
            type(value), "NUMBER_VALUE" if isinstance(value, int | float) else type(value).__name__
        )
        self.problems.append(Problem("type", path, f"{found} can not be converted to {expected} at '{path}'"))

    def check(self, value: Any, shape: Any, path: str = "") -> None:
        if value is None:
            return
        handler = getattr(self, f"_{shape.type_name}", None)
        if handler is not None:
            handler(value, shape, path)

    def check_request(self, params: Any, shape: Any) -> list[Problem]:
        """Every problem of a whole request (its top-level structure)."""
        if shape is None:
            return []
        self._structure(params, shape, "")
        return self.problems

    # -- shapes --------------------------------------------------------------------------------------
    def _structure(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.wrong_type(path or "request", value, "a structure")
            return
        if getattr(shape, "is_document_type", False):
            return
        members = shape.members
        for name in shape.required_members:
            key = members[name].serialization.get("name", name) if self.mode == "wire" else name
            if value.get(key) is None and value.get(name) is None:
                self.constraint(member_path(path, name), None, False, "not be null")
        for name, member in members.items():
            key = member.serialization.get("name", name) if self.mode == "wire" else name
            if key in value:
                self.check(value[key], member, member_path(path, name))
            elif name in value:
                self.check(value[name], member, member_path(path, name))

    def _length(self, value: Any, size: int, shape: Any, path: str) -> None:
        limits = shape.metadata
        sensitive = bool(limits.get("sensitive"))
        shown = value if isinstance(value, str) else f"[{size} {'bytes' if shape.type_name == 'blob' else 'items'}]"
        if "min" in limits and size < limits["min"]:
            self.constraint(path, shown, sensitive, f"have length greater than or equal to {limits['min']}")
        if "max" in limits and size > limits["max"]:
            self.constraint(path, shown, sensitive, f"have length less than or equal to {limits['max']}")

    def _list(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, list):
            self.wrong_type(path, value, "a list")
            return
        self._length(value, len(value), shape, path)
        for index, item in enumerate(value, start=1):
            self.check(item, shape.member, f"{path}.{index}.member")

    def _map(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.wrong_type(path, value, "a map")
            return
        self._length(value, len(value), shape, path)
        for key, item in value.items():
            self.check(key, shape.key, f"{path}.key")
            self.check(item, shape.value, f"{path}.{key}")

    def _string(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, str):
            self.wrong_type(path, value, "a String")
            return
        limits = shape.metadata
        sensitive = bool(limits.get("sensitive"))
        self._length(value, len(value), shape, path)
        enum = shape.enum
        if enum and value not in enum:
            self.constraint(path, value, sensitive, f"satisfy enum value set: [{', '.join(enum)}]")
        pattern = limits.get("pattern")
        if pattern and (compiled := _pattern(pattern)) is not None and not compiled.fullmatch(value):
            self.constraint(path, value, sensitive, f"satisfy regular expression pattern: {pattern}")

    def _integer(self, value: Any, shape: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and self.mode == "wire":
                value = int(value)
            else:
                self.wrong_type(path, value, "an Integer" if shape.type_name == "integer" else "a Long")
                return
        self._range(value, shape, path)

    _long = _integer

    def _range(self, value: float, shape: Any, path: str) -> None:
        limits = shape.metadata
        if "min" in limits and value < limits["min"]:
            self.constraint(path, value, False, f"have value greater than or equal to {limits['min']}")
        if "max" in limits and value > limits["max"]:
            self.constraint(path, value, False, f"have value less than or equal to {limits['max']}")

    def _double(self, value: Any, shape: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(path, value, "a Double")
            return
        self._range(value, shape, path)

    _float = _double

    def _boolean(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, bool):
            self.wrong_type(path, value, "a Boolean")

    def _timestamp(self, value: Any, shape: Any, path: str) -> None:
        ok = (datetime.datetime,) if self.mode == "parsed" else (int, float, str)
        if isinstance(value, bool) or not isinstance(value, ok):
            self.wrong_type(path, value, "a Timestamp")

    def _blob(self, value: Any, shape: Any, path: str) -> None:
        if self.mode == "parsed" or isinstance(value, bytes | bytearray):
            size = len(value)
        elif not isinstance(value, str):
            self.wrong_type(path, value, "a Blob")
            return
        else:
            try:
                size = len(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                self.problems.append(Problem("type", path, f"the value at '{path}' is not valid base64 text"))
                return
        self._length(b"", size, shape, path)
