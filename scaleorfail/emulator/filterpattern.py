"""CloudWatch Logs filter patterns (FilterLogEvents, metric and subscription filters).

The three documented forms:

- terms: ``ERROR``, ``"exact phrase"``, ``ERROR Exception`` (all), ``?ERROR ?WARN`` (any),
  ``ERROR -Retrying`` (exclusion), ``%regex%``; case-sensitive, matched anywhere;
- JSON: ``{ $.step = "embed" }``, ``{ $.duration_ms > 100 && ($.route = "billing" || $.route = bill*) }``,
  ``{ $.error IS NULL }``, ``{ $.error NOT EXISTS }``, ``{ $.ok IS TRUE }``, ``{ $.items[0] = "a" }``,
  ``{ $.msg = %time.?out% }``; events that are not JSON objects never match;
- space-delimited: ``[ip, user, ..., status = 4*, bytes > 1000]``: the event split on spaces
  (a "quoted" or [bracketed] field counts as one), one name per field, ``...`` for any number
  of fields, conditions joined with ``&&`` / ``||``.

``*`` in a value is a wildcard. An empty pattern matches every event. A malformed pattern
raises :class:`FilterPatternError` (``InvalidParameterException`` on AWS).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scaleorfail.stats import number

MAX_PATTERN_CHARS = 1024  # the FilterLogEvents limit


class FilterPatternError(ValueError):
    """The filter pattern is malformed."""


Matcher = Callable[[str], bool]


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str | None) -> Matcher:
    """A predicate over log event messages."""
    text = (pattern or "").strip()
    if len(text) > MAX_PATTERN_CHARS:
        raise FilterPatternError(f"the filter pattern is longer than {MAX_PATTERN_CHARS} characters")
    if not text or text == '""':
        return lambda message: True
    if text.startswith("{"):
        if not text.endswith("}"):
            raise FilterPatternError("a JSON filter pattern must end with '}'")
        return _json_matcher(text[1:-1])
    if text.startswith("["):
        if not text.endswith("]"):
            raise FilterPatternError("a space-delimited filter pattern must end with ']'")
        return _delimited_matcher(text[1:-1])
    return _terms_matcher(text)


# -- terms ----------------------------------------------------------------------------------------

TERM = re.compile(r'\s*([?-]?)(?:"((?:[^"\\]|\\.)*)"|%([^%]+)%|(\S+))')


def _term_test(phrase: str | None, regex: str | None, bare: str | None) -> Matcher:
    if regex is not None:
        compiled = _regex(regex)
        return lambda message: compiled.search(message) is not None
    needle = re.sub(r"\\(.)", r"\1", phrase) if phrase is not None else str(bare)
    return lambda message: needle in message


def _terms_matcher(text: str) -> Matcher:
    required: list[Matcher] = []
    optional: list[Matcher] = []
    excluded: list[Matcher] = []
    position = 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = TERM.match(text, position)
        if not match:
            raise FilterPatternError(f"cannot read the filter pattern at {text[position:]!r}")
        prefix, phrase, regex, bare = match.groups()
        test = _term_test(phrase, regex, bare)
        {"?": optional, "-": excluded}.get(prefix, required).append(test)
        position = match.end()

    def matches(message: str) -> bool:
        if not all(t(message) for t in required) or any(t(message) for t in excluded):
            return False
        return not optional or any(t(message) for t in optional)

    return matches


@functools.lru_cache(maxsize=256)
def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise FilterPatternError(f"bad regular expression %{text}%: {exc}") from None


# -- values ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    text: str
    quoted: bool = False
    regex: bool = False

    def number(self) -> float | None:
        if self.quoted or self.regex:
            return None
        try:
            return float(self.text)
        except ValueError:
            return None


def _wildcard(text: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in text.split("*")) + "$", re.DOTALL)


def compare(actual: Any, op: str, expected: Value) -> bool:
    if actual is None or isinstance(actual, (dict, list)):
        return False
    wanted = expected.number()
    if op in ("<", ">", "<=", ">="):
        have = number(actual)
        if have is None or wanted is None:
            return False
        return {"<": have < wanted, ">": have > wanted, "<=": have <= wanted, ">=": have >= wanted}[op]
    if wanted is not None and number(actual) is not None:
        equal = number(actual) == wanted
    elif expected.regex:
        equal = _regex(expected.text).search(_text(actual)) is not None
    else:
        equal = _wildcard(expected.text).match(_text(actual)) is not None
    return equal if op == "=" else not equal


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- a small expression reader shared by the JSON and space-delimited forms -----------------------

EXPR_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<regex>%[^%]+%)|(?P<op>&&|\|\||!=|<=|>=|[=<>()])'
    r"|(?P<word>[^\s=<>!()&|\"%]+))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    position = 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = EXPR_TOKEN.match(text, position)
        if not match:
            raise FilterPatternError(f"cannot read the filter pattern at {text[position:]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


Condition = Callable[[Callable[[str], tuple[bool, Any]]], bool]


class ExpressionReader:
    """``a OP value`` comparisons joined by && and || (&& binds tighter), with parentheses."""

    def __init__(self, text: str, selector: re.Pattern[str]) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.selector = selector

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterPatternError("the filter pattern ends too early")
        self.i += 1
        return token

    def read(self) -> Condition:
        condition = self.disjunction()
        if self.peek() is not None:
            raise FilterPatternError(f"unexpected {self.peek()[1]!r} in the filter pattern")  # type: ignore[index]
        return condition

    def disjunction(self) -> Condition:
        parts = [self.conjunction()]
        while self.peek() == ("op", "||"):
            self.i += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda get: any(p(get) for p in parts))

    def conjunction(self) -> Condition:
        parts = [self.atom()]
        while self.peek() == ("op", "&&"):
            self.i += 1
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda get: all(p(get) for p in parts))

    def atom(self) -> Condition:
        kind, text = self.take()
        if (kind, text) == ("op", "("):
            inner = self.disjunction()
            if self.take() != ("op", ")"):
                raise FilterPatternError("a '(' in the filter pattern is not closed")
            return inner
        if kind != "word" or not self.selector.fullmatch(text):
            raise FilterPatternError(f"expected a field selector, found {text!r}")
        name = text
        kind, op = self.take()
        if kind == "word" and op.upper() in ("IS", "NOT", "EXISTS"):
            return self._keyword(name, op.upper())
        if kind != "op" or op not in ("=", "!=", "<", ">", "<=", ">="):
            raise FilterPatternError(f"expected a comparison after {name}, found {op!r}")
        kind, raw = self.take()
        if kind == "string":
            value = Value(re.sub(r"\\(.)", r"\1", raw[1:-1]), quoted=True)
        elif kind == "regex":
            if op not in ("=", "!="):
                raise FilterPatternError("a %regex% value takes = or != only")
            value = Value(raw[1:-1], regex=True)
        elif kind == "word":
            value = Value(raw)
        else:
            raise FilterPatternError(f"expected a value after {name} {op}, found {raw!r}")

        def test(get: Callable[[str], tuple[bool, Any]]) -> bool:
            found, actual = get(name)
            return found and compare(actual, op, value)

        return test

    def _keyword(self, name: str, first: str) -> Condition:
        if first == "EXISTS":
            return lambda get: get(name)[0]
        if first == "NOT":
            if self.take()[1].upper() != "EXISTS":
                raise FilterPatternError(f"expected EXISTS after {name} NOT")
            return lambda get: not get(name)[0]
        word = self.take()[1].upper()
        if word == "NULL":
            return lambda get: get(name)[0] and get(name)[1] is None
        if word in ("TRUE", "FALSE"):
            flag = word == "TRUE"
            return lambda get: get(name)[0] and get(name)[1] is flag
        raise FilterPatternError(f"expected NULL, TRUE or FALSE after {name} IS")


# -- JSON ------------------------------------------------------------------------------------------

JSON_SELECTOR = re.compile(r"\$(?:\.[A-Za-z0-9_@$-]+|\[\d+\]|\.\*|\[\*\])*")
SEGMENT = re.compile(r"\.([A-Za-z0-9_@$-]+)|\[(\d+)\]")


def _lookup(document: Any, selector: str) -> tuple[bool, Any]:
    current = document
    for name, index in SEGMENT.findall(selector[1:]):
        if name:
            if not isinstance(current, dict) or name not in current:
                return False, None
            current = current[name]
        else:
            position = int(index)
            if not isinstance(current, list) or position >= len(current):
                return False, None
            current = current[position]
    return True, current


def _json_matcher(body: str) -> Matcher:
    if not body.strip():
        raise FilterPatternError('a JSON filter pattern needs a condition, e.g. { $.level = "ERROR" }')
    condition = ExpressionReader(body, JSON_SELECTOR).read()

    def matches(message: str) -> bool:
        stripped = message.strip()
        if not stripped.startswith("{"):
            return False
        try:
            document = json.loads(stripped)
        except ValueError:
            return False
        if not isinstance(document, dict):
            return False
        return condition(lambda selector: _lookup(document, selector))

    return matches


# -- space-delimited -------------------------------------------------------------------------------

FIELD = re.compile(r'"[^"]*"|\[[^\]]*\]|\S+')
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split_fields(message: str) -> list[str]:
    """An event's fields: words, with "quoted" and [bracketed] groups kept whole (without the quotes)."""
    fields = []
    for token in FIELD.findall(message):
        fields.append(token[1:-1] if token[:1] == '"' and token[-1:] == '"' and len(token) > 1 else token)
    return fields


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, False
    for ch in text:
        if ch == '"':
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "," and not quote and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return parts


def _delimited_matcher(body: str) -> Matcher:
    names: list[str | None] = []  # None: "..."
    conditions: list[Condition] = []
    for part in _split_top(body):
        if not part:
            raise FilterPatternError("an empty field in a space-delimited filter pattern")
        if part == "...":
            names.append(None)
            continue
        head = NAME.match(part)
        if not head:
            raise FilterPatternError(f"a space-delimited field needs a name, found {part!r}")
        names.append(head.group())
        if part[head.end() :].strip():
            conditions.append(ExpressionReader(part, NAME).read())
    named = [n for n in names if n]
    if len(named) != len(set(named)):
        raise FilterPatternError("each field of a space-delimited filter pattern needs its own name")

    def matches(message: str) -> bool:
        for bound in _bindings(names, split_fields(message)):
            if all(c(lambda name, b=bound: (name in b, b.get(name))) for c in conditions):  # type: ignore[misc]
                return True
        return False

    return matches


def _bindings(names: list[str | None], fields: list[str], start: int = 0) -> Any:
    """Every way of binding the pattern's names to the event's fields ('...' takes any number)."""
    if not names:
        if start == len(fields):
            yield {}
        return
    head, rest = names[0], names[1:]
    if head is None:
        for skip in range(start, len(fields) + 1):
            yield from _bindings(rest, fields, skip)
        return
    if start >= len(fields):
        return
    for tail in _bindings(rest, fields, start + 1):
        yield {head: fields[start], **tail}
