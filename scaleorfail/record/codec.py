"""The harvest record to and from JSON (runs/<run_id>/harvest.json).

pydantic validates the JSON against the dataclasses of model.py: a record of another
schema or version, or one whose fields do not have their types, is not read (None), and
the run is harvested again.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from scaleorfail.record.model import SCHEMA, VERSION, HarvestRecord


@cache
def _adapter() -> TypeAdapter[HarvestRecord]:
    return TypeAdapter(HarvestRecord)


def to_jsonable(record: HarvestRecord) -> dict[str, Any]:
    """The record as JSON-ready data (datetimes as ISO 8601, tuples as lists)."""
    data: dict[str, Any] = _adapter().dump_python(record, mode="json")
    return data


def dumps(record: HarvestRecord) -> str:
    return json.dumps(to_jsonable(record), separators=(",", ":")) + "\n"


def from_jsonable(data: Any) -> HarvestRecord | None:
    """A record from JSON data; None when it is of another schema or version, or damaged."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("version") != VERSION:
        return None
    try:
        return _adapter().validate_python(data)
    except ValidationError:
        return None


def loads(text: str) -> HarvestRecord | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return from_jsonable(data)
