"""Terraform's regular expressions (Go's RE2 syntax) run with Python's re.

The common syntax is the same. Where the two differ this module either translates
(``(?<name>...)`` groups, ``$`` that only matches at the very end, ASCII-only ``\\d \\w \\s \\b``)
or refuses with an error naming the construct: what RE2 rejects (look-around,
back-references) fails as it does in Terraform, and what only RE2 has (``\\pL``,
``[[:alpha:]]``, ``\\z``, ``\\Q...\\E``) is not silently misread.
"""

from __future__ import annotations

import re
from typing import Any

from scaleorfail.tf.values import HclError

_RE2_ONLY = {"p": "\\p{...} classes", "P": "\\P{...} classes", "z": "\\z", "C": "\\C", "Q": "\\Q...\\E"}
_REJECTED_GROUPS = {
    "(?=": "look-ahead",
    "(?!": "negative look-ahead",
    "(?<=": "look-behind",
    "(?<!": "negative look-behind",
    "(?>": "atomic groups",
    "(?(": "conditional groups",
    "(?P=": "back-references",
    "(?#": "comments",
}


def translate(pattern: str, fn: str) -> str:
    """The Python pattern that matches what RE2 matches for pattern, or HclError."""
    out: list[str] = []
    i = 0
    in_class = False
    multiline = re.match(r"\(\?[a-zA-Z]*m", pattern) is not None
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
            if nxt in _RE2_ONLY:
                raise HclError(f"{fn}(): the RE2 construct {_RE2_ONLY[nxt]} is not supported by this evaluator")
            if nxt.isdigit() and nxt != "0" and not in_class:
                raise HclError(f"{fn}(): invalid pattern {pattern!r}: RE2 has no back-references (\\{nxt})")
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i):
                raise HclError(f"{fn}(): the RE2 construct [[:class:]] is not supported by this evaluator")
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("\\]")
                i += 1
            continue
        if ch == "(":
            for opener, what in _REJECTED_GROUPS.items():
                if pattern.startswith(opener, i):
                    raise HclError(f"{fn}(): invalid pattern {pattern!r}: RE2 has no {what}")
            named = re.match(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", pattern[i:])
            if named:
                out.append(f"(?P<{named.group(1)}>")
                i += named.end()
                continue
        if ch == "$" and not multiline:
            out.append(r"(?!(?s:.))")  # RE2's $ matches only at the end (Python's also before a final \n)
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def compile_pattern(pattern: Any, fn: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise HclError(f"{fn}(): the pattern must be a string")
    try:
        return re.compile(translate(pattern, fn), re.ASCII)
    except re.error as error:
        raise HclError(f"{fn}(): invalid pattern {pattern!r}: {error}") from None


def captures(compiled: re.Pattern[str], match: re.Match[str], fn: str) -> Any:
    """What regex() returns for one match: the text, a list of groups, or an object of named groups."""
    if not compiled.groups:
        return match.group(0)
    if compiled.groupindex:
        if len(compiled.groupindex) != compiled.groups:
            raise HclError(f"{fn}(): a pattern cannot mix named and unnamed capture groups")
        return {name: match.group(name) for name in compiled.groupindex}
    return list(match.groups())


def expand(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand: $1, $name, ${1}, ${name}; $$ is a $; an unknown group is empty."""
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "$" or i + 1 >= len(template):
            out.append(ch)
            i += 1
            continue
        if template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        braced = re.match(r"\$\{([A-Za-z0-9_]+)\}", template[i:])
        bare = re.match(r"\$([A-Za-z0-9_]+)", template[i:])
        found = braced or bare
        if not found:
            out.append(ch)
            i += 1
            continue
        name = found.group(1)
        value: str | None = None
        try:
            value = match.group(int(name)) if name.isdigit() else match.group(name)
        except IndexError:  # no such group
            value = None
        out.append(value or "")
        i += found.end()
    return "".join(out)


def replace_all(compiled: re.Pattern[str], text: str, template: str) -> str:
    return compiled.sub(lambda match: expand(template, match), text)
