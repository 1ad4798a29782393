"""The values the Terraform evaluator works with, and the errors it raises.

The base of scaleorfail.tf: expressions (expr.py), templates (template.py), type
conversion (types.py), JSON (encoding.py) and regexes (re2.py) all use these, so that
none of them needs another to be imported first. expr.py re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from lark import Tree

from scaleorfail.tf import numbers


class HclError(Exception):
    """An expression cannot be evaluated; the message says where and why."""


@dataclass(frozen=True)
class Unknown:
    """A value that is only known after apply (e.g. an ID assigned by AWS)."""

    what: str

    def __repr__(self) -> str:
        return f"(known after apply: {self.what})"


class LazyMapping(Mapping[str, Any]):
    """A mapping whose values are computed on first access (and cached)."""

    def __init__(self, keys: list[str], compute: Callable[[str], Any], label: str) -> None:
        self._keys = list(keys)
        self._compute = compute
        self._cache: dict[str, Any] = {}
        self._busy: set[str] = set()
        self.label = label

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._cache:
            if key in self._busy:
                raise HclError(f"{self.label}.{key} refers to itself (a cycle)")
            self._busy.add(key)
            try:
                self._cache[key] = self._compute(key)
            finally:
                self._busy.discard(key)
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


Function = Callable[..., Any]


@dataclass
class Scope:
    """Names visible to an expression: root namespaces plus ``for``-loop variables."""

    roots: dict[str, Any]
    functions: Mapping[str, Function]
    where: str = "expression"
    locals_: dict[str, Any] = field(default_factory=dict)

    def child(self, **names: Any) -> Scope:
        return Scope(self.roots, self.functions, self.where, {**self.locals_, **names})

    def lookup(self, name: str) -> Any:
        if name in self.locals_:
            return self.locals_[name]
        if name in self.roots:
            return self.roots[name]
        raise HclError(f"{self.where}: unknown name {name!r}")


# Functions whose arguments must not be evaluated up front.
LAZY_FUNCTIONS = frozenset({"can", "try"})
# Functions that only look at a collection's structure: unknown elements pass through them.
# Any other function given a value known only after apply returns an unknown value.
SHAPE_FUNCTIONS = frozenset(
    {"length", "concat", "merge", "coalescelist", "flatten", "reverse", "slice", "element", "one", "tolist", "keys"}
)


def tokens_removed(children: list[Any]) -> list[Tree[Any]]:
    """The subtrees of a node, without punctuation tokens and comment/newline nodes."""
    return [c for c in children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if numbers.is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Unknown):
        return "unknown"
    return type(value).__name__


def contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_unknown(v) for v in value)
    return False


def to_string(value: Any, where: str) -> str:
    """Terraform's automatic conversion of a primitive to a string (in templates)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if numbers.is_number(value):
        return numbers.to_text(number(value, where))
    if isinstance(value, Unknown):
        raise HclError(f"{where}: {value!r} cannot be used in a string here")
    raise HclError(f"{where}: a {type_name(value)} cannot be converted to a string")


def number(value: Any, where: str) -> numbers.Number:
    """A value as a Terraform number (strings are parsed, as Terraform converts them)."""
    if isinstance(value, bool) or value is None:
        raise HclError(f"{where}: a number is required, got {type_name(value)}")
    try:
        if isinstance(value, str):
            return numbers.parse(value)
        if numbers.is_number(value):
            return numbers.from_python(value)
    except numbers.NumberError as error:
        raise HclError(f"{where}: {error}") from None
    raise HclError(f"{where}: a number is required, got {type_name(value)}")


def whole_number(value: Any, where: str) -> int:
    result = number(value, where)
    if not isinstance(result, int):
        raise HclError(f"{where}: a whole number is required, got {numbers.to_text(result)}")
    return result


def boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise HclError(f"{where}: a bool is required, got {type_name(value)}")


def plain(value: Any) -> Any:
    """The value with Terraform numbers turned into Python int/float (for AWS calls and JSON files)."""
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


HCL_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def unescape(chars: str) -> str:
    """Decode HCL quoted-string escapes: \\n \\r \\t \\" \\\\ \\uNNNN \\UNNNNNNNN; anything else is an error."""
    if "\\" not in chars:
        return chars
    out: list[str] = []
    i = 0
    while i < len(chars):
        ch = chars[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        if nxt in HCL_ESCAPES and nxt:
            out.append(HCL_ESCAPES[nxt])
            i += 2
            continue
        if nxt in ("u", "U"):
            width = 4 if nxt == "u" else 8
            digits = chars[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise HclError(f"invalid escape sequence \\{nxt}{digits}: \\{nxt} needs {width} hex digits")
            out.append(chr(int(digits, 16)))
            i += 2 + width
            continue
        raise HclError(f'invalid escape sequence \\{nxt}: HCL strings accept \\n \\r \\t \\" \\\\ \\u and \\U')
    return "".join(out)


def iteration_pairs(collection: Any) -> list[tuple[Any, Any]] | None:
    """(key, value) pairs Terraform iterates: a map by sorted key, a list by index; None otherwise."""
    if isinstance(collection, Mapping):
        return [(k, collection[k]) for k in sorted(collection)]
    if isinstance(collection, (list, tuple)):
        return list(enumerate(collection))
    return None
