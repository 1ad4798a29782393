"""Terraform string templates: ``templatefile()`` files and directives in quoted strings.

Supports interpolation ``${expr}``, ``%{ if }``/``%{ else }``/``%{ endif }``,
``%{ for x in list }``/``%{ for k, v in map }``/``%{ endfor }``, the ``~`` strip
markers, and the ``$${`` / ``%%{`` escapes. Expressions inside are parsed by
python-hcl2 and evaluated by :mod:`scaleorfail.tf.expr` (which renders files and heredocs
with :func:`render_segments` here), so a template renders exactly as ``templatefile``
renders it for Terraform.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

import hcl2
from lark import Tree

from scaleorfail.tf.values import (
    HclError,
    Scope,
    Unknown,
    boolean,
    iteration_pairs,
    to_string,
    tokens_removed,
    type_name,
)


class Evaluator(Protocol):
    """What rendering needs of the expression evaluator (scaleorfail.tf.expr.Evaluator)."""

    scope: Scope

    def eval(self, node: Any) -> Any: ...

    def bind(self, names: list[str], key: Any, value: Any) -> Evaluator: ...


@dataclass
class Segment:
    kind: str  # text | interp | if | else | endif | for | endfor
    text: str = ""
    expr: Any = None
    names: tuple[str, ...] = ()
    strip_left: bool = False
    strip_right: bool = False


@functools.lru_cache(maxsize=1024)
def parse_expression(source: str) -> Tree[Any]:
    """Parse one HCL expression (as text) into python-hcl2's tree."""
    try:
        tree = hcl2.parses_to_tree(f"__expr__ = {source}\n")
    except Exception as exc:  # lark raises many exception types
        raise HclError(f"cannot parse expression {source!r}: {str(exc).splitlines()[0]}") from None
    body = tree.children[0]
    attribute = next(c for c in body.children if isinstance(c, Tree) and c.data == "attribute")
    return tokens_removed(attribute.children)[-1]


def _closing_brace(text: str, start: int) -> int:
    """Index of the '}' that closes the interpolation/directive whose body starts at start."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = _end_of_string(text, i)
            continue
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            if depth == 0 and ch == "}":
                return i
            depth -= 1
        i += 1
    raise HclError(f"unclosed template sequence starting at offset {start - 2}")


def _end_of_string(text: str, start: int) -> int:
    """Index just after the quoted string starting at text[start] == '"'."""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        if text.startswith("${", i) or text.startswith("%{", i):
            i = _closing_brace(text, i + 2) + 1
            continue
        i += 1
    raise HclError("unterminated string in a template expression")


def scan(text: str) -> list[Segment]:
    """Split template text into literal text and interpolation/directive segments."""
    segments: list[Segment] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i) or text.startswith("%%{", i):
            literal.append(text[i + 1 : i + 3])
            i += 3
            continue
        if text.startswith("${", i) or text.startswith("%{", i):
            if literal:
                segments.append(Segment("text", text="".join(literal)))
                literal = []
            end = _closing_brace(text, i + 2)
            segments.append(_sequence(text[i], text[i + 2 : end]))
            i = end + 1
            continue
        literal.append(text[i])
        i += 1
    if literal:
        segments.append(Segment("text", text="".join(literal)))
    return segments


def _sequence(opener: str, body: str) -> Segment:
    strip_left = body.startswith("~")
    strip_right = body.endswith("~")
    inner = body[1 if strip_left else 0 : -1 if strip_right else None].strip()
    if opener == "$":
        return Segment("interp", expr=parse_expression(inner), strip_left=strip_left, strip_right=strip_right)
    keyword, _, rest = inner.partition(" ")
    rest = rest.strip()
    if keyword == "if":
        return Segment("if", expr=parse_expression(rest), strip_left=strip_left, strip_right=strip_right)
    if keyword in ("else", "endif", "endfor") and not rest:
        return Segment(keyword, strip_left=strip_left, strip_right=strip_right)
    if keyword == "for":
        head, sep, collection = rest.partition(" in ")
        names = tuple(n.strip() for n in head.split(","))
        if not sep or not all(n.isidentifier() for n in names) or len(names) > 2:
            raise HclError(f"bad for directive: %{{{body}}}")
        return Segment(
            "for", expr=parse_expression(collection), names=names, strip_left=strip_left, strip_right=strip_right
        )
    raise HclError(f"unknown template directive: %{{{body}}}")


def strip_after(text: str) -> str:
    """What ``~}`` leaves of the literal after it: HCL splits literals into lines (each with its
    newline) and trims only the first, so the whitespace up to and including the first newline
    goes, and the next line's indentation stays."""
    cut = text.find("\n")
    first, rest = (text, "") if cut < 0 else (text[: cut + 1], text[cut + 1 :])
    return first.lstrip() + rest


def strip_before(text: str) -> str:
    """What ``%{~`` / ``${~`` leaves of the literal before it: its last line (with that line's
    own newline when the directive starts a line) loses its trailing whitespace."""
    cut = text.rfind("\n", 0, len(text) - 1) if text.endswith("\n") else text.rfind("\n")
    return text[: cut + 1] + text[cut + 1 :].rstrip()


def apply_strip_markers(segments: list[Segment], *, by_line: bool = True) -> list[Segment]:
    """Apply ~ strip markers. by_line: a template file or heredoc, whose literals HCL splits at
    its newlines; a quoted string's literal is one piece, so all adjacent whitespace goes."""
    after = strip_after if by_line else str.lstrip
    before = strip_before if by_line else str.rstrip
    out = [Segment(s.kind, s.text, s.expr, s.names, s.strip_left, s.strip_right) for s in segments]
    for index, segment in enumerate(out):
        if segment.kind == "text":
            continue
        if segment.strip_left and index > 0 and out[index - 1].kind == "text":
            out[index - 1].text = before(out[index - 1].text)
        if segment.strip_right and index + 1 < len(out) and out[index + 1].kind == "text":
            out[index + 1].text = after(out[index + 1].text)
    return out


class _UnknownResultError(Exception):
    def __init__(self, value: Unknown) -> None:
        self.value = value


def render_segments(segments: list[Segment], evaluator: Evaluator, *, by_line: bool = True) -> str | Unknown:
    """The rendered text, or Unknown when a value in it is only known after apply."""
    stripped = apply_strip_markers(segments, by_line=by_line)
    try:
        pieces, end = _render(stripped, 0, evaluator, stop=())
    except _UnknownResultError as unknown:
        return unknown.value
    if end != len(stripped):
        raise HclError(f"unexpected %{{{stripped[end].kind}}} in template")
    return "".join(pieces)


def _render(segments: list[Segment], start: int, evaluator: Evaluator, stop: tuple[str, ...]) -> tuple[list[str], int]:
    """Render from start until a segment whose kind is in stop; returns (pieces, index of it)."""
    pieces: list[str] = []
    i = start
    where = evaluator.scope.where
    while i < len(segments):
        segment = segments[i]
        if segment.kind in stop:
            return pieces, i
        if segment.kind == "text":
            pieces.append(segment.text)
            i += 1
        elif segment.kind == "interp":
            value = evaluator.eval(segment.expr)
            if isinstance(value, Unknown):
                raise _UnknownResultError(value)
            pieces.append(to_string(value, where))
            i += 1
        elif segment.kind == "if":
            chosen = boolean(evaluator.eval(segment.expr), where)
            yes, i = _render(segments, i + 1, evaluator, ("else", "endif"))
            no: list[str] = []
            if i < len(segments) and segments[i].kind == "else":
                no, i = _render(segments, i + 1, evaluator, ("endif",))
            if i >= len(segments):
                raise HclError(f"{where}: %{{if}} without %{{endif}}")
            pieces.extend(yes if chosen else no)
            i += 1
        elif segment.kind == "for":
            i = _render_for(segments, i, evaluator, pieces)
        else:
            raise HclError(f"{where}: %{{{segment.kind}}} without its opening directive")
    if stop:
        raise HclError(f"{where}: template ends before %{{{stop[-1]}}}")
    return pieces, i


def _render_for(segments: list[Segment], i: int, evaluator: Evaluator, pieces: list[str]) -> int:
    segment = segments[i]
    collection = evaluator.eval(segment.expr)
    pairs = iteration_pairs(collection)
    if pairs is None:
        raise HclError(f"{evaluator.scope.where}: %{{for}} needs a list or map, got {type_name(collection)}")
    end = _matching_endfor(segments, i, evaluator.scope.where)
    for key, value in pairs:
        inner = evaluator.bind(list(segment.names), key, value)
        body, _ = _render(segments, i + 1, inner, ("endfor",))
        pieces.extend(body)
    return end + 1


def _matching_endfor(segments: list[Segment], start: int, where: str) -> int:
    depth = 0
    for index in range(start, len(segments)):
        kind = segments[index].kind
        if kind == "for":
            depth += 1
        elif kind == "endfor":
            depth -= 1
            if depth == 0:
                return index
    raise HclError(f"{where}: %{{for}} without %{{endfor}}")
