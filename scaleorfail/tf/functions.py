"""Terraform's built-in functions, as far as a module like ours uses them.

Each behaves like its Terraform namesake for the values Terraform accepts; anything
else raises :class:`HclError` with the function's name.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from scaleorfail.tf.expr import (
    Function,
    HclError,
    Scope,
    Unknown,
    boolean,
    canonical_json,
    normalise_number,
    number,
    to_string,
    type_name,
)


def _list(value: Any, fn: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    raise HclError(f"{fn}(): a list is required, got {type_name(value)}")


def _map(value: Any, fn: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise HclError(f"{fn}(): a map or object is required, got {type_name(value)}")


def _merge(*maps: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in maps:
        if item is None:
            continue
        out.update(_map(item, "merge"))
    return out


def _lookup(mapping: Any, key: Any, *default: Any) -> Any:
    table = _map(mapping, "lookup")
    name = to_string(key, "lookup()")
    if name in table:
        return table[name]
    if default:
        return default[0]
    raise HclError(f"lookup(): no key {name!r} and no default")


def _length(value: Any) -> int:
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value)
    raise HclError(f"length(): cannot take the length of a {type_name(value)}")


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None and value != "":
            return value
    raise HclError("coalesce(): all arguments are null or empty")


def _flatten(value: Any) -> list[Any]:
    out: list[Any] = []
    for item in _list(value, "flatten"):
        out.extend(_flatten(item) if isinstance(item, (list, tuple)) else [item])
    return out


def _toset(value: Any) -> list[Any]:
    items = _list(value, "toset")
    unique: list[Any] = []
    for item in items:
        if item not in unique:
            unique.append(item)
    return sorted(unique, key=lambda v: (type_name(v), str(v)))


def _tonumber(value: Any) -> Any:
    return None if value is None else number(value, "tonumber()")


def _tobool(value: Any) -> Any:
    return None if value is None else boolean(value, "tobool()")


def _tostring(value: Any) -> Any:
    return None if value is None else to_string(value, "tostring()")


GO_VERB = re.compile(r"%(?:(%)|([-+ #0]*)(\d+)?(?:\.(\d+))?([sdvqtfge]))")


def _format(spec: str, *args: Any) -> str:
    """Terraform's format(): the common Go-style verbs."""
    values = list(args)

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "%"
        if not values:
            raise HclError(f"format(): not enough arguments for {spec!r}")
        value = values.pop(0)
        flags, width, precision, verb = match.group(2), match.group(3), match.group(4), match.group(5)
        if verb == "q":
            text = json.dumps(to_string(value, "format()"))
        elif verb == "d":
            text = str(int(number(value, "format()")))
        elif verb in "fge":
            text = f"%{'.' + precision if precision else ''}{verb}" % number(value, "format()")
        elif verb == "t":
            text = "true" if boolean(value, "format()") else "false"
        elif verb == "v" and not isinstance(value, (str, int, float, bool)):
            text = canonical_json(value)
        else:
            text = to_string(value, "format()")
        if width:
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        return text

    return GO_VERB.sub(replace, spec)


def _regex(pattern: str, text: str) -> Any:
    compiled = re.compile(_go_regex(pattern))
    match = compiled.search(text)
    if match is None:
        raise HclError(f"regex(): pattern {pattern!r} does not match {text[:80]!r}")
    if compiled.groupindex:
        return match.groupdict()
    if compiled.groups:
        return list(match.groups())
    return match.group(0)


def _go_regex(pattern: str) -> str:
    """RE2 named groups (?P<x>) are Python's too; (?<x>) is not: translate it."""
    return re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)


def _replace(text: str, old: str, new: str) -> str:
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        return re.sub(_go_regex(old[1:-1]), re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", new), text)
    return text.replace(old, new)


def _range(*args: Any) -> list[Any]:
    nums = [number(a, "range()") for a in args]
    start, stop, step = (0, nums[0], 1) if len(nums) == 1 else (nums[0], nums[1], nums[2] if len(nums) > 2 else 1)
    out = []
    value = start
    while (step > 0 and value < stop) or (step < 0 and value > stop):
        out.append(normalise_number(value))
        value += step
    return out


def _one(value: Any) -> Any:
    items = _list(value, "one")
    if len(items) > 1:
        raise HclError(f"one(): the list has {len(items)} elements")
    return items[0] if items else None


def _element(value: Any, index: Any) -> Any:
    items = _list(value, "element")
    if not items:
        raise HclError("element(): the list is empty")
    return items[int(number(index, "element()")) % len(items)]


def _zipmap(keys: Any, values: Any) -> dict[str, Any]:
    return {to_string(k, "zipmap()"): v for k, v in zip(_list(keys, "zipmap"), _list(values, "zipmap"), strict=True)}


def _substr(text: str, offset: Any, length: Any) -> str:
    start, size = int(number(offset, "substr()")), int(number(length, "substr()"))
    return text[start:] if size < 0 else text[start : start + size]


def file_functions(base_dir: str) -> dict[str, Function]:
    """Functions reading files, resolved against Terraform's working directory."""

    def resolve(path: str) -> str:
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))

    def read(path: str) -> bytes:
        full = resolve(path)
        if not os.path.isfile(full):
            raise HclError(f"no file at {path} ({full})")
        with open(full, "rb") as handle:
            return handle.read()

    def fileset(path: str, pattern: str) -> list[str]:
        root = resolve(path)
        matches = glob.glob(pattern, root_dir=root, recursive=True)
        return sorted(m for m in matches if os.path.isfile(os.path.join(root, m)))

    return {
        "file": lambda path: read(path).decode("utf-8"),
        "fileexists": lambda path: os.path.isfile(resolve(path)),
        "fileset": fileset,
        "filebase64": lambda path: base64.b64encode(read(path)).decode("ascii"),
        "filesha256": lambda path: hashlib.sha256(read(path)).hexdigest(),
        "filebase64sha256": lambda path: base64.b64encode(hashlib.sha256(read(path)).digest()).decode("ascii"),
        "filemd5": lambda path: hashlib.md5(read(path), usedforsecurity=False).hexdigest(),
        "abspath": lambda path: os.path.abspath(resolve(path)),
    }


PURE_FUNCTIONS: dict[str, Function] = {
    # encoding
    "jsonencode": canonical_json,
    "jsondecode": json.loads,
    "base64encode": lambda text: base64.b64encode(text.encode("utf-8")).decode("ascii"),
    "base64decode": lambda text: base64.b64decode(text).decode("utf-8"),
    "sha256": lambda text: hashlib.sha256(text.encode("utf-8")).hexdigest(),
    "base64sha256": lambda text: base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii"),
    "md5": lambda text: hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest(),
    # collections
    "merge": _merge,
    "concat": lambda *lists: [item for lst in lists for item in _list(lst, "concat")],
    "lookup": _lookup,
    "length": _length,
    "keys": lambda m: sorted(_map(m, "keys")),
    "values": lambda m: [_map(m, "values")[k] for k in sorted(_map(m, "values"))],
    "contains": lambda collection, value: value in _list(collection, "contains"),
    "coalesce": _coalesce,
    "coalescelist": lambda *lists: next((lst for lst in lists if lst), []),
    "compact": lambda lst: [v for v in _list(lst, "compact") if v is not None and v != ""],
    "flatten": _flatten,
    "distinct": lambda lst: [v for i, v in enumerate(_list(lst, "distinct")) if v not in lst[:i]],
    "sort": lambda lst: sorted(to_string(v, "sort()") for v in _list(lst, "sort")),
    "reverse": lambda lst: list(reversed(_list(lst, "reverse"))),
    "toset": _toset,
    "tolist": lambda lst: _list(lst, "tolist"),
    "tomap": lambda m: dict(_map(m, "tomap")),
    "tonumber": _tonumber,
    "tobool": _tobool,
    "tostring": _tostring,
    "zipmap": _zipmap,
    "element": _element,
    "one": _one,
    "range": _range,
    "alltrue": lambda lst: all(boolean(v, "alltrue()") for v in _list(lst, "alltrue")),
    "anytrue": lambda lst: any(boolean(v, "anytrue()") for v in _list(lst, "anytrue")),
    "sum": lambda lst: normalise_number(sum(number(v, "sum()") for v in _list(lst, "sum"))),
    "slice": lambda lst, a, b: _list(lst, "slice")[int(a) : int(b)],
    "index": lambda lst, value: _list(lst, "index").index(value),
    # strings
    "format": _format,
    "join": lambda sep, lst: sep.join(to_string(v, "join()") for v in _list(lst, "join")),
    "split": lambda sep, text: text.split(sep),
    "replace": _replace,
    "lower": lambda text: text.lower(),
    "upper": lambda text: text.upper(),
    "title": lambda text: text.title(),
    "trimspace": lambda text: text.strip(),
    "trimprefix": lambda text, prefix: text.removeprefix(prefix),
    "trimsuffix": lambda text, suffix: text.removesuffix(suffix),
    "trim": lambda text, chars: text.strip(chars),
    "startswith": lambda text, prefix: text.startswith(prefix),
    "endswith": lambda text, suffix: text.endswith(suffix),
    "strcontains": lambda text, part: part in text,
    "substr": _substr,
    "regex": _regex,
    "regexall": lambda pattern, text: [m.group(0) for m in re.finditer(_go_regex(pattern), text)],
    "basename": os.path.basename,
    "dirname": os.path.dirname,
    # numbers
    "min": lambda *nums: normalise_number(min(number(n, "min()") for n in nums)),
    "max": lambda *nums: normalise_number(max(number(n, "max()") for n in nums)),
    "abs": lambda n: normalise_number(abs(number(n, "abs()"))),
    "floor": lambda n: math.floor(number(n, "floor()")),
    "ceil": lambda n: math.ceil(number(n, "ceil()")),
}


def functions_for(base_dir: str, scope_factory: Callable[[], Scope]) -> dict[str, Function]:
    """Every function, with file access relative to base_dir and a working templatefile()."""
    from scaleorfail.tf.template import templatefile

    table: dict[str, Function] = {**PURE_FUNCTIONS, **file_functions(base_dir)}

    def _templatefile(path: str, variables: Any) -> str | Unknown:
        full = path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))
        if not os.path.isfile(full):
            raise HclError(f"templatefile(): no file at {path}")
        return templatefile(full, variables, scope_factory())

    table["templatefile"] = _templatefile
    return table
