"""Terraform's built-in functions, as far as a module like ours uses them.

Each behaves like its Terraform namesake (checked against ``terraform console`` by
tests/test_tf_differential.py); anything else raises :class:`HclError` with the
function's name. A function given a value that is only known after apply returns an
unknown value, as Terraform's do, except those that only look at a collection's shape
(length, concat, merge ...).
"""

from __future__ import annotations

import base64
import binascii
import glob
import hashlib
import math
import os
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from scaleorfail.tf import numbers, re2
from scaleorfail.tf.encoding import json_decode, json_encode
from scaleorfail.tf.expr import (
    Function,
    HclError,
    Scope,
    Unknown,
    boolean,
    number,
    to_string,
    type_name,
    whole_number,
)
from scaleorfail.tf.types import collection_of

RANGE_LIMIT = 1024  # Terraform refuses range() results longer than this


def _list(value: Any, fn: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    raise HclError(f"{fn}(): a list is required, got {type_name(value)}")


def _map(value: Any, fn: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise HclError(f"{fn}(): a map or object is required, got {type_name(value)}")


def _str(value: Any, fn: str) -> str:
    """A string argument: numbers and bools convert to strings, as in Terraform."""
    if value is None:
        raise HclError(f"{fn}(): the argument must not be null")
    if isinstance(value, (Mapping, list, tuple)):
        raise HclError(f"{fn}(): a string is required, got {type_name(value)}")
    return to_string(value, f"{fn}()")


# Code points that join the character before them into one grapheme cluster (Terraform counts clusters).
_JOINERS = ("\u200d", "\u034f")


def _characters(text: str, fn: str) -> list[str]:
    """text as Terraform's characters (grapheme clusters), for the simple cases; others are refused."""
    for ch in text:
        if (
            unicodedata.category(ch) in ("Mn", "Mc", "Me")
            or ch in _JOINERS
            or "\ufe00" <= ch <= "\ufe0f"
            or "\U0001f3fb" <= ch <= "\U0001f3ff"
            or "\U0001f1e6" <= ch <= "\U0001f1ff"
            or "\u1100" <= ch <= "\u11ff"
        ):
            raise HclError(
                f"{fn}(): {text[:40]!r} has combining characters; counting Unicode grapheme clusters "
                "in such text is not supported by this evaluator"
            )
    out: list[str] = []
    for ch in text:
        if ch == "\n" and out and out[-1] == "\r":
            out[-1] = "\r\n"
        else:
            out.append(ch)
    return out


# -- collections ------------------------------------------------------------------------


def _merge(*maps: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in maps:
        if item is None:
            continue
        out.update(_map(item, "merge"))
    return out


def _lookup(mapping: Any, key: Any, *default: Any) -> Any:
    table = _map(mapping, "lookup")
    name = _str(key, "lookup")
    if name in table:
        return table[name]
    if default:
        return default[0]
    raise HclError(f"lookup(): no key {name!r} and no default")


def _length(value: Any) -> int | Unknown:
    if isinstance(value, Unknown):
        return Unknown("length() of a value known after apply")
    if isinstance(value, str):
        return len(_characters(value, "length"))
    if isinstance(value, (list, tuple, Mapping)):
        return len(value)
    raise HclError(f"length(): cannot take the length of a {type_name(value)}")


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None and value != "":
            return collection_of(list(values), "value", "coalesce")[list(values).index(value)]
    raise HclError("coalesce(): no non-null, non-empty-string arguments")


def _coalescelist(*lists: Any) -> list[Any]:
    for lst in lists:
        if _list(lst, "coalescelist"):
            return list(lst)
    raise HclError("coalescelist(): no non-null arguments")


def _flatten(value: Any) -> list[Any]:
    out: list[Any] = []
    for item in _list(value, "flatten"):
        out.extend(_flatten(item) if isinstance(item, (list, tuple)) else [item])
    return out


def _sort_key(value: Any) -> Any:
    if isinstance(value, str):
        return (0, value.encode("utf-8"))
    if isinstance(value, bool):
        return (1, value)
    if numbers.is_number(value):
        return (2, value)
    return (3, json_encode(value))


def _toset(value: Any) -> list[Any]:
    items = collection_of(_list(value, "toset"), "set", "toset")
    unique: list[Any] = []
    for item in items:
        if item not in unique:
            unique.append(item)
    return sorted(unique, key=_sort_key)


def _tomap(value: Any) -> dict[str, Any]:
    table = _map(value, "tomap")
    keys = list(table)
    converted = collection_of([table[k] for k in keys], "map", "tomap")
    return dict(zip(keys, converted, strict=True))


def _distinct(value: Any) -> list[Any]:
    out: list[Any] = []
    for item in _list(value, "distinct"):
        if item not in out:
            out.append(item)
    return out


def _index(value: Any, wanted: Any) -> int:
    items = _list(value, "index")
    if wanted not in items:
        raise HclError("index(): the item was not found in the list")
    return items.index(wanted)


def _contains(collection: Any, value: Any) -> bool:
    return value in _list(collection, "contains")


def _zipmap(keys: Any, values: Any) -> dict[str, Any]:
    names, items = _list(keys, "zipmap"), _list(values, "zipmap")
    if len(names) != len(items):
        raise HclError(f"zipmap(): {len(names)} keys but {len(items)} values")
    return {_str(k, "zipmap"): v for k, v in zip(names, items, strict=True)}


def _element(value: Any, index: Any) -> Any:
    items = _list(value, "element")
    if not items:
        raise HclError("element(): cannot use element function with an empty list")
    position = whole_number(index, "element()")
    if position < 0:
        raise HclError("element(): the index must not be negative")
    return items[position % len(items)]


def _one(value: Any) -> Any:
    items = _list(value, "one")
    if len(items) > 1:
        raise HclError(f"one(): must be a list, set, or tuple value with either zero or one elements, has {len(items)}")
    return items[0] if items else None


def _slice(value: Any, start: Any, end: Any) -> list[Any]:
    items = _list(value, "slice")
    a, b = whole_number(start, "slice()"), whole_number(end, "slice()")
    if a < 0 or b > len(items) or a > b:
        raise HclError(f"slice(): indexes {a}..{b} are out of range for {len(items)} elements")
    return items[a:b]


def _range(*args: Any) -> list[Any]:
    if not 1 <= len(args) <= 3:
        raise HclError("range(): takes one to three arguments")
    nums = [number(a, "range()") for a in args]
    start: numbers.Number
    stop: numbers.Number
    step: numbers.Number
    if len(nums) == 1:
        start, stop, step = 0, nums[0], 1
    else:
        start, stop = nums[0], nums[1]
        step = nums[2] if len(nums) > 2 else (1 if stop >= start else -1)
    if step == 0 and start != stop:
        raise HclError(f"range(): more than {RANGE_LIMIT} values were generated (step 0)")
    out: list[Any] = []
    value: numbers.Number = start
    while (step > 0 and value < stop) or (step < 0 and value > stop):
        if len(out) >= RANGE_LIMIT:
            raise HclError(f"range(): more than {RANGE_LIMIT} values were generated")
        out.append(value)
        value = numbers.add(value, step)
    return out


def _sum(value: Any) -> numbers.Number:
    items = _list(value, "sum")
    if not items:
        raise HclError("sum(): cannot sum an empty list")
    total: numbers.Number = 0
    for item in items:
        total = numbers.add(total, number(item, "sum()"))
    return total


def _extreme(fn: str, pick: Callable[..., Any], *values: Any) -> numbers.Number:
    if not values:
        raise HclError(f"{fn}(): must pass at least one number")
    result: numbers.Number = pick(number(v, f"{fn}()") for v in values)
    return result


# -- strings ------------------------------------------------------------------------------


GO_VERBS = "sdvqtfge"


def _format(spec: Any, *args: Any) -> str:
    """Terraform's format(): Go-style verbs %s %d %v %q %t %f %e %g with flags, width and precision."""
    text = _str(spec, "format")
    values = list(args)
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < len(text) and text[j] in "-+ #0":
            j += 1
        flags = text[i + 1 : j]
        k = j
        while k < len(text) and text[k].isdigit():
            k += 1
        width = int(text[j:k]) if k > j else None
        precision = None
        if k < len(text) and text[k] == ".":
            p = k + 1
            while p < len(text) and text[p].isdigit():
                p += 1
            precision = int(text[k + 1 : p] or "0")
            k = p
        if k >= len(text):
            raise HclError(f"format(): unterminated format sequence in {text!r}")
        verb = text[k]
        i = k + 1
        if verb == "%":
            out.append("%")
            continue
        if verb not in GO_VERBS:
            raise HclError(f"format(): the verb %{verb} is not supported by this evaluator (use one of %{GO_VERBS})")
        if not values:
            raise HclError(f"format(): too few arguments for {text!r}")
        out.append(_pad(_verb(values.pop(0), verb, precision, flags), width, flags))
    if values:
        raise HclError(f"format(): too many arguments; only {len(args) - len(values)} used by format string")
    return "".join(out)


def _verb(value: Any, verb: str, precision: int | None, flags: str) -> str:
    if value is None:
        raise HclError("format(): a null argument cannot be formatted")
    if verb == "v":
        return (
            to_string(value, "format()")
            if isinstance(value, (str, bool)) or numbers.is_number(value)
            else str(json_encode(value))
        )
    if verb == "s":
        return _str(value, "format")
    if verb == "q":
        return str(json_encode(_str(value, "format")))
    if verb == "t":
        return "true" if boolean(value, "format()") else "false"
    amount = number(value, "format()")
    if verb == "d":
        if not isinstance(amount, int):
            raise HclError('format(): unsupported value for "%d": an integer is required')
        text = str(abs(amount))
    else:
        text = numbers.format_verb(numbers.subtract(0, amount) if amount < 0 else amount, verb, precision)
    sign = "-" if amount < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
    return sign + text


def _pad(text: str, width: int | None, flags: str) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and text[:1] in "+- " and text[1:2].isdigit():
        return text[0] + text[1:].rjust(width - 1, "0")
    return text.rjust(width, "0" if "0" in flags else " ")


def _regex(pattern: Any, text: Any) -> Any:
    compiled = re2.compile_pattern(pattern, "regex")
    subject = _str(text, "regex")
    match = compiled.search(subject)
    if match is None:
        raise HclError(f"regex(): pattern {pattern!r} does not match {subject[:80]!r}")
    return re2.captures(compiled, match, "regex")


def _regexall(pattern: Any, text: Any) -> list[Any]:
    compiled = re2.compile_pattern(pattern, "regexall")
    return [re2.captures(compiled, m, "regexall") for m in compiled.finditer(_str(text, "regexall"))]


def _replace(text: Any, old: Any, new: Any) -> str:
    subject, search, replacement = _str(text, "replace"), _str(old, "replace"), _str(new, "replace")
    if len(search) > 1 and search.startswith("/") and search.endswith("/"):
        return re2.replace_all(re2.compile_pattern(search[1:-1], "replace"), subject, replacement)
    return subject.replace(search, replacement)


def _substr(text: Any, offset: Any, length: Any) -> str:
    chars = _characters(_str(text, "substr"), "substr")
    start, size = whole_number(offset, "substr()"), whole_number(length, "substr()")
    if start < 0:
        start = max(0, start + len(chars))
    if start > len(chars):
        return ""
    end = len(chars) if size < 0 else min(len(chars), start + size)
    return "".join(chars[start:end])


def _split(separator: Any, text: Any) -> list[str]:
    subject, sep = _str(text, "split"), _str(separator, "split")
    if sep == "":
        return list(subject)
    return subject.split(sep)


def _join(separator: Any, *lists: Any) -> str:
    items = [_str(v, "join") for lst in lists for v in _list(lst, "join")]
    return _str(separator, "join").join(items)


def _case(text: Any, fn: str, change: Callable[[str], str]) -> str:
    """Go's simple (one character to one character) case mapping."""
    out = []
    for ch in _str(text, fn):
        changed = change(ch)
        out.append(changed if len(changed) == 1 else ch)
    return "".join(out)


def _is_word_char(ch: str) -> bool:
    """Go's strings.Title: ASCII letters, digits and '_', and any Unicode letter or digit, are inside words."""
    if ch <= "\x7f":
        return ch.isascii() and (ch.isalnum() or ch == "_")
    return unicodedata.category(ch)[0] in ("L", "N") or not ch.isspace()


def _title(text: Any) -> str:
    out: list[str] = []
    previous_is_word = False
    for ch in _str(text, "title"):
        titled = ch.title() if len(ch.title()) == 1 else ch
        out.append(ch if previous_is_word else titled)
        previous_is_word = _is_word_char(ch)
    return "".join(out)


def _trim(text: Any, cutset: Any) -> str:
    return _str(text, "trim").strip(_str(cutset, "trim"))


def _base64decode(text: Any) -> str:
    try:
        raw = base64.b64decode(_str(text, "base64decode"), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise HclError(f"base64decode(): failed to decode base64 data {str(text)[:40]!r}") from None


def _hash(algorithm: str, encode: str) -> Function:
    def digest(text: Any) -> str:
        raw = hashlib.new(algorithm, _str(text, algorithm).encode("utf-8"))
        return raw.hexdigest() if encode == "hex" else base64.b64encode(raw.digest()).decode("ascii")

    return digest


def _floor(value: Any) -> numbers.Number:
    return math.floor(number(value, "floor()"))


def _ceil(value: Any) -> numbers.Number:
    return math.ceil(number(value, "ceil()"))


def _abs(value: Any) -> numbers.Number:
    amount = number(value, "abs()")
    return numbers.subtract(0, amount) if amount < 0 else amount


def _tostring(value: Any) -> Any:
    if value is None:
        return None
    return _str(value, "tostring")


def _tonumber(value: Any) -> Any:
    return None if value is None else number(value, "tonumber()")


def _tobool(value: Any) -> Any:
    return None if value is None else boolean(value, "tobool()")


def file_functions(base_dir: str) -> dict[str, Function]:
    """Functions reading files, resolved against Terraform's working directory."""

    def resolve(path: Any) -> str:
        text = _str(path, "file")
        return text if os.path.isabs(text) else os.path.normpath(os.path.join(base_dir, text))

    def read(path: Any) -> bytes:
        full = resolve(path)
        if not os.path.isfile(full):
            raise HclError(f"no file at {path} ({full})")
        with open(full, "rb") as handle:
            return handle.read()

    def fileset(path: Any, pattern: Any) -> list[str]:
        root = resolve(path)
        matches = glob.glob(_str(pattern, "fileset"), root_dir=root, recursive=True)
        return sorted(m for m in matches if os.path.isfile(os.path.join(root, m)))

    def file(path: Any) -> str:
        try:
            return read(path).decode("utf-8")
        except UnicodeDecodeError:
            raise HclError(f"file(): {path} is not UTF-8 text (use filebase64)") from None

    return {
        "file": file,
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
    "jsonencode": json_encode,
    "jsondecode": json_decode,
    "base64encode": lambda text: base64.b64encode(_str(text, "base64encode").encode("utf-8")).decode("ascii"),
    "base64decode": _base64decode,
    "sha256": _hash("sha256", "hex"),
    "base64sha256": _hash("sha256", "base64"),
    "md5": _hash("md5", "hex"),
    # collections
    "merge": _merge,
    "concat": lambda *lists: [item for lst in lists for item in _list(lst, "concat")],
    "lookup": _lookup,
    "length": _length,
    "keys": lambda m: sorted(_map(m, "keys")),
    "values": lambda m: [_map(m, "values")[k] for k in sorted(_map(m, "values"))],
    "contains": _contains,
    "coalesce": _coalesce,
    "coalescelist": _coalescelist,
    "compact": lambda lst: [_str(v, "compact") for v in _list(lst, "compact") if v is not None and v != ""],
    "flatten": _flatten,
    "distinct": _distinct,
    "sort": lambda lst: sorted((_str(v, "sort") for v in _list(lst, "sort")), key=lambda s: s.encode("utf-8")),
    "reverse": lambda lst: list(reversed(_list(lst, "reverse"))),
    "toset": _toset,
    "tolist": lambda lst: collection_of(_list(lst, "tolist"), "list", "tolist"),
    "tomap": _tomap,
    "tonumber": _tonumber,
    "tobool": _tobool,
    "tostring": _tostring,
    "zipmap": _zipmap,
    "element": _element,
    "one": _one,
    "range": _range,
    "alltrue": lambda lst: all(boolean(v, "alltrue()") for v in _list(lst, "alltrue")),
    "anytrue": lambda lst: any(boolean(v, "anytrue()") for v in _list(lst, "anytrue")),
    "sum": _sum,
    "slice": _slice,
    "index": _index,
    # strings
    "format": _format,
    "join": _join,
    "split": _split,
    "replace": _replace,
    "lower": lambda text: _case(text, "lower", str.lower),
    "upper": lambda text: _case(text, "upper", str.upper),
    "title": _title,
    "trimspace": lambda text: _str(text, "trimspace").strip(" \t\n\r\v\f\x85\xa0"),
    "trimprefix": lambda text, prefix: _str(text, "trimprefix").removeprefix(_str(prefix, "trimprefix")),
    "trimsuffix": lambda text, suffix: _str(text, "trimsuffix").removesuffix(_str(suffix, "trimsuffix")),
    "trim": _trim,
    "startswith": lambda text, prefix: _str(text, "startswith").startswith(_str(prefix, "startswith")),
    "endswith": lambda text, suffix: _str(text, "endswith").endswith(_str(suffix, "endswith")),
    "strcontains": lambda text, part: _str(part, "strcontains") in _str(text, "strcontains"),
    "substr": _substr,
    "regex": _regex,
    "regexall": _regexall,
    "basename": lambda path: os.path.basename(_str(path, "basename")),
    "dirname": lambda path: os.path.dirname(_str(path, "dirname")) or ".",
    # numbers
    "min": lambda *nums: _extreme("min", min, *nums),
    "max": lambda *nums: _extreme("max", max, *nums),
    "abs": _abs,
    "floor": _floor,
    "ceil": _ceil,
}


def functions_for(base_dir: str, scope_factory: Callable[[], Scope]) -> dict[str, Function]:
    """Every function, with file access relative to base_dir and a working templatefile()."""
    from scaleorfail.tf.expr import templatefile

    table: dict[str, Function] = {**PURE_FUNCTIONS, **file_functions(base_dir)}

    def _templatefile(path: Any, variables: Any) -> str | Unknown:
        text = _str(path, "templatefile")
        full = text if os.path.isabs(text) else os.path.normpath(os.path.join(base_dir, text))
        if not os.path.isfile(full):
            raise HclError(f"templatefile(): no file at {text}")
        return templatefile(full, variables, scope_factory())

    table["templatefile"] = _templatefile
    return table
