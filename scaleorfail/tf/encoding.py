"""Terraform's jsonencode() and jsondecode().

jsonencode is Go's encoding/json as cty calls it: object keys sorted, no spaces, HTML
characters escaped (``<`` ``>`` ``&`` as ``\\u003c`` ``\\u003e`` ``\\u0026``), U+2028 and
U+2029 escaped, numbers printed as Terraform prints them (:func:`numbers.to_text`). A
value with anything unknown in it encodes to an unknown string, as in Terraform.
jsondecode reads numbers with Terraform's 512-bit precision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from scaleorfail.tf import numbers
from scaleorfail.tf.values import HclError, Unknown, contains_unknown, type_name

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for raw, escaped in _GO_ESCAPES.items():
        encoded = encoded.replace(raw, escaped)
    return encoded


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if numbers.is_number(value):
        return numbers.to_text(numbers.from_python(value))
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_string(k)}:{_encode(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise HclError(f"jsonencode(): cannot encode a {type_name(value)}")


def json_encode(value: Any) -> str | Unknown:
    if contains_unknown(value):
        return Unknown("jsonencode() of a value known after apply")
    return _encode(value)


def _number(text: str) -> numbers.Number:
    return numbers.parse(text)


def json_decode(text: Any) -> Any:
    if isinstance(text, Unknown):
        return text
    if not isinstance(text, str):
        raise HclError(f"jsondecode(): a string is required, got {type_name(text)}")
    try:
        return json.loads(text, parse_float=_number, parse_int=_number, parse_constant=_refuse)
    except ValueError as error:
        raise HclError(f"jsondecode(): {error}") from None


def _refuse(name: str) -> Fraction:
    raise ValueError(f"{name} is not valid JSON")
