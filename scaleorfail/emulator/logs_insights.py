"""CloudWatch Logs Insights queries over the emulator's log events.

Supported: ``fields``, ``filter``, ``parse`` (regex with named groups, or a glob pattern
with ``as``), ``stats`` (count, count_distinct, sum, avg, min, max, pct, stddev,
earliest, latest ... ``by`` fields and ``bin(period)``), ``sort``, ``limit``, ``display``
and ``dedup``; expressions with comparisons, ``like``/``not like``/``=~`` (regex or
substring), ``in``, ``and``/``or``/``not``, arithmetic and the functions ``ispresent``,
``isempty``, ``isblank``, ``strlen``, ``tolower``, ``toupper``, ``concat``, ``abs``,
``floor``, ``ceil``, ``bin``.

Discovered fields, as on AWS: ``@timestamp``, ``@message``, ``@logStream``, ``@log``,
``@ingestionTime``; the keys of JSON log events; and, from Lambda ``REPORT`` lines,
``@type``, ``@requestId``, ``@duration``, ``@billedDuration``, ``@memorySize``,
``@maxMemoryUsed`` (bytes: MB x 1,000,000, as AWS) and ``@initDuration``.
"""

from __future__ import annotations

import functools
import json
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scaleorfail.stats import number, percentile

MAX_ROWS = 10_000


class QueryError(ValueError):
    """The query text is malformed or uses something unsupported."""


@dataclass(frozen=True)
class Event:
    timestamp: int  # epoch ms
    message: str
    log_stream: str
    log_group: str
    ingestion_time: int = 0
    pointer: str = ""  # the @ptr of the event (GetLogRecord), when the caller can resolve one


# -- tokens -------------------------------------------------------------------------------

TOKEN_SPEC = [
    ("SPACE", r"\s+"),
    ("DURATION", r"\d+(?:ms|min|hr|s|m|h|d|w)\b"),
    ("NUMBER", r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"),
    ("STRING", r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""),
    ("BACKTICK", r"`[^`]*`"),
    ("NAME", r"@?[A-Za-z_][A-Za-z0-9_.$-]*"),
    ("OP", r"=~|!=|<=|>=|[=<>+\-*%^,()\[\]]"),
    ("SLASH", r"/"),
]
TOKEN_RE = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in TOKEN_SPEC))
KEYWORDS = {"and", "or", "not", "like", "in", "as", "by", "asc", "desc"}
OPERAND_END = {"NUMBER", "DURATION", "STRING", "NAME", "REGEX", "BACKTICK"}


@dataclass
class Token:
    kind: str
    value: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        previous = tokens[-1] if tokens else None
        expects_operand = previous is None or not (
            (previous.kind in OPERAND_END and previous.value.lower() not in KEYWORDS) or previous.value in (")", "]")
        )
        if text[i] == "/" and expects_operand:
            end = _regex_end(text, i)
            tokens.append(Token("REGEX", text[i + 1 : end], i))
            i = end + 1
            continue
        match = TOKEN_RE.match(text, i)
        if not match:
            raise QueryError(f"unexpected character {text[i]!r} at position {i}")
        kind = match.lastgroup or ""
        if kind != "SPACE":
            value = match.group()
            if kind == "NAME" and value.lower() in KEYWORDS:
                kind = "KEYWORD"
                value = value.lower()
            tokens.append(Token(kind, value, i))
        i = match.end()
    return tokens


def _regex_end(text: str, start: int) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "/":
            return i
        i += 1
    raise QueryError(f"unterminated regular expression at position {start}")


def split_commands(query: str) -> list[str]:
    """Split on '|' outside strings and regexes."""
    commands: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(query):
        ch = query[i]
        if quote:
            current.append(ch)
            if ch == "\\" and i + 1 < len(query):
                current.append(query[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif ch == "/" and _slash_starts_regex("".join(current)):
            quote = "/"
            current.append(ch)
        elif ch == "|":
            commands.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    commands.append("".join(current).strip())
    if len(commands) > 1 and not all(commands):  # as AWS: a '|' joins two commands
        where = "ends with" if not commands[-1] else "starts with" if not commands[0] else "has an empty command at"
        raise QueryError(f"the query {where} '|': a query command must follow each '|'")
    return [c for c in commands if c and not c.startswith("#")]


def _slash_starts_regex(before: str) -> bool:
    stripped = before.rstrip()
    if not stripped:
        return True
    last_word = re.split(r"\s+", stripped)[-1].lower()
    return (
        stripped[-1] in "(,=~"
        or last_word in ("like", "parse", "filter", "and", "or", "not")
        or bool(re.search(r"parse\s+\S+$", stripped, re.IGNORECASE))
    )


# -- expressions ----------------------------------------------------------------------------


class Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.i + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, kind: str | None = None, value: str | None = None) -> Token:
        token = self.peek()
        if token is None or (kind and token.kind != kind) or (value and token.value != value):
            wanted = value or kind or "more input"
            found = token.value if token else "the end"
            raise QueryError(f"expected {wanted}, found {found!r}")
        self.i += 1
        return token

    def accept(self, value: str) -> bool:
        token = self.peek()
        if token is not None and token.value == value:
            self.i += 1
            return True
        return False

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def expression(self) -> Any:
        return self.or_expr()

    def or_expr(self) -> Any:
        node = self.and_expr()
        while self.accept("or"):
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> Any:
        node = self.not_expr()
        while self.accept("and"):
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> Any:
        if self.accept("not"):
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Any:
        left = self.additive()
        token = self.peek()
        if token is None:
            return left
        if token.value in ("=", "!=", "<", ">", "<=", ">="):
            self.i += 1
            return ("cmp", token.value, left, self.additive())
        if token.value == "=~":
            self.i += 1
            return ("like", left, self.additive(), False)
        if token.value == "like":
            self.i += 1
            return ("like", left, self.additive(), False)
        if token.value == "not" and self.peek(1) is not None and self.peek(1).value in ("like", "in"):  # type: ignore[union-attr]
            self.i += 2
            if self.tokens[self.i - 1].value == "like":
                return ("like", left, self.additive(), True)
            return ("not", ("in", left, self.list_literal()))
        if token.value == "in":
            self.i += 1
            return ("in", left, self.list_literal())
        return left

    def list_literal(self) -> list[Any]:
        self.take(value="[")
        items = []
        while not self.accept("]"):
            items.append(self.additive())
            self.accept(",")
        return items

    def additive(self) -> Any:
        node = self.multiplicative()
        while self.peek() is not None and self.peek().value in ("+", "-"):  # type: ignore[union-attr]
            op = self.take().value
            node = ("arith", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Any:
        node = self.power()
        while self.peek() is not None and (
            self.peek().value in ("*", "%") or self.peek().kind == "SLASH"  # type: ignore[union-attr]
        ):
            op = self.take().value
            node = ("arith", op, node, self.power())
        return node

    def power(self) -> Any:
        node = self.unary()
        if self.accept("^"):
            return ("arith", "^", node, self.power())
        return node

    def unary(self) -> Any:
        if self.accept("-"):
            return ("arith", "-", ("lit", 0), self.unary())
        return self.primary()

    def primary(self) -> Any:
        token = self.take()
        if token.kind == "NUMBER":
            return ("lit", float(token.value))
        if token.kind == "DURATION":
            amount, unit = re.fullmatch(r"(\d+)(ms|min|hr|s|m|h|d|w)", token.value).groups()  # type: ignore[union-attr]
            return ("duration", int(amount) * UNITS[unit])
        if token.kind == "STRING":
            return ("lit", _unquote(token.value))
        if token.kind == "REGEX":
            return ("regex", token.value)
        if token.kind == "BACKTICK":
            return ("field", token.value[1:-1])
        if token.value == "(":
            node = self.expression()
            self.take(value=")")
            return node
        if token.kind == "NAME":
            if self.accept("("):
                args = []
                if self.peek() is not None and self.peek().value == "*":  # type: ignore[union-attr]
                    self.i += 1
                    args.append(("star",))
                while not self.accept(")"):
                    args.append(self.expression())
                    self.accept(",")
                name = token.value.lower()
                if name not in SCALAR_FUNCTIONS and name not in AGGREGATES and name not in SPECIAL_FUNCTIONS:
                    raise QueryError(f"unsupported function {token.value}()")
                return ("call", name, args)
            return ("field", token.value)
        raise QueryError(f"unexpected {token.value!r}")


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


@functools.lru_cache(maxsize=256)  # a `like /.../` filter is evaluated once per event
def go_regex(pattern: str) -> re.Pattern[str]:
    translated = re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)
    try:
        return re.compile(translated)
    except re.error as exc:
        raise QueryError(f"bad regular expression /{pattern}/: {exc}") from None


def evaluate(node: Any, row: dict[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "field":
        return row.get(node[1])
    if kind == "regex":
        return go_regex(node[1])
    if kind == "and":
        return truthy(evaluate(node[1], row)) and truthy(evaluate(node[2], row))
    if kind == "or":
        return truthy(evaluate(node[1], row)) or truthy(evaluate(node[2], row))
    if kind == "not":
        return not truthy(evaluate(node[1], row))
    if kind == "cmp":
        return compare(node[1], evaluate(node[2], row), evaluate(node[3], row))
    if kind == "like":
        value = evaluate(node[1], row)
        pattern = evaluate(node[2], row)
        if value is None:
            return False
        text = str(value)
        found = bool(pattern.search(text)) if isinstance(pattern, re.Pattern) else str(pattern) in text
        return found != node[3]
    if kind == "in":
        value = evaluate(node[1], row)
        return any(compare("=", value, evaluate(item, row)) for item in node[2])
    if kind == "arith":
        a, b = number(evaluate(node[2], row)), number(evaluate(node[3], row))
        if a is None or b is None:
            return None
        op = node[1]
        if op in ("/", "%") and b == 0:
            return None
        if op == "^":
            try:
                return float(a**b)
            except (OverflowError, ZeroDivisionError):
                return None
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None, "%": a % b if b else None}[op]
    if kind == "call":
        return call(node[1], node[2], row)
    raise QueryError(f"cannot evaluate {kind}")


def truthy(value: Any) -> bool:
    return bool(value) and value != "false"


def compare(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return op == "!=" and (a is None) != (b is None)
    na, nb = number(a), number(b)
    left: Any
    right: Any
    left, right = (na, nb) if na is not None and nb is not None else (str(a), str(b))
    outcome: bool = {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[op]
    return outcome


SCALAR_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ispresent": lambda v: v is not None,
    "isempty": lambda v: v is None or v == "",
    "isblank": lambda v: v is None or str(v).strip() == "",
    "strlen": lambda v: None if v is None else len(str(v)),
    "tolower": lambda v: None if v is None else str(v).lower(),
    "toupper": lambda v: None if v is None else str(v).upper(),
    "concat": lambda *vs: "".join("" if v is None else str(v) for v in vs),
    "abs": lambda v: None if number(v) is None else abs(number(v)),  # type: ignore[arg-type]
    "floor": lambda v: None if number(v) is None else math.floor(number(v)),  # type: ignore[arg-type]
    "ceil": lambda v: None if number(v) is None else math.ceil(number(v)),  # type: ignore[arg-type]
}
SCALAR_FUNCTIONS.update(
    {
        "unmask": lambda v: v,  # the emulator masks nothing
        "coalesce": lambda *vs: next((v for v in vs if v is not None and v != ""), None),
        "greatest": lambda *vs: max((n for n in map(number, vs) if n is not None), default=None),
        "least": lambda *vs: min((n for n in map(number, vs) if n is not None), default=None),
        "log": lambda v: math.log(n) if (n := number(v)) is not None and n > 0 else None,
        "sqrt": lambda v: math.sqrt(n) if (n := number(v)) is not None and n >= 0 else None,
        "strcontains": lambda v, s: None if v is None else int(str(s) in str(v)),
        "substr": lambda v, start, length=None: _substr(v, start, length),
        "replace": lambda v, old, new: None if v is None else str(v).replace(str(old), str(new)),
        "trim": lambda v, chars=None: None if v is None else str(v).strip(None if chars is None else str(chars)),
        "ltrim": lambda v, chars=None: None if v is None else str(v).lstrip(None if chars is None else str(chars)),
        "rtrim": lambda v, chars=None: None if v is None else str(v).rstrip(None if chars is None else str(chars)),
        "isvalidip": lambda v: _ip(v) is not None,
        "isvalidipv4": lambda v: _ip(v) is not None and _ip(v).version == 4,
        "isvalidipv6": lambda v: _ip(v) is not None and _ip(v).version == 6,
        "isipinsubnet": lambda v, net: _in_subnet(v, net, None),
        "isipv4insubnet": lambda v, net: _in_subnet(v, net, 4),
        "isipv6insubnet": lambda v, net: _in_subnet(v, net, 6),
        "frommillis": lambda v: None if number(v) is None else format_time(int(number(v))),  # type: ignore[arg-type]
        "tomillis": lambda v: _millis(v),  # noqa: PLW0108 (defined below)
    }
)
AGGREGATES = {
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "pct",
    "stddev",
    "earliest",
    "latest",
    "sortsfirst",
    "sortslast",
}
SPECIAL_FUNCTIONS = {"bin", "datefloor", "dateceil"}
UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "w": 7 * 86400}


def _substr(value: Any, start: Any, length: Any = None) -> str | None:
    if value is None or number(start) is None:
        return None
    text, begin = str(value), int(number(start))  # type: ignore[arg-type]
    if length is None:
        return text[begin:]
    return text[begin : begin + int(number(length) or 0)]


def _ip(value: Any) -> Any:
    import ipaddress

    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        return None


def _in_subnet(value: Any, subnet: Any, version: int | None) -> bool:
    import ipaddress

    address = _ip(value)
    try:
        network = ipaddress.ip_network(str(subnet), strict=False)
    except ValueError:
        raise QueryError(f"{subnet!r} is not a subnet in CIDR notation") from None
    if address is None or (version is not None and address.version != version):
        return False
    return address.version == network.version and address in network


def _millis(value: Any) -> float | None:
    if value is None:
        return None
    numeric = number(value)
    if numeric is not None:
        return numeric
    text = str(value).replace("T", " ").replace("Z", "")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return float(int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp() * 1000))


def call(name: str, args: list[Any], row: dict[str, Any]) -> Any:
    if name == "bin":
        return bin_time(args, row)
    if name in ("datefloor", "dateceil"):
        return date_round(name, args, row)
    if name in AGGREGATES:
        raise QueryError(f"{name}() can only be used in stats")
    function = SCALAR_FUNCTIONS.get(name)
    if function is None:
        raise QueryError(f"unsupported function {name}()")
    return function(*(evaluate(a, row) for a in args))


def bin_time(args: list[Any], row: dict[str, Any]) -> str:
    if len(args) != 1 or args[0][0] != "duration":
        raise QueryError("bin() takes a period such as 1m or 5s")
    seconds = args[0][1]
    stamp = row.get("@timestamp_ms", 0) / 1000.0
    start = math.floor(stamp / seconds) * seconds
    return format_time(int(start * 1000))


def date_round(name: str, args: list[Any], row: dict[str, Any]) -> str | None:
    """datefloor(@timestamp, 1h) / dateceil(...): the time rounded to the period."""
    if len(args) != 2 or args[1][0] != "duration":
        raise QueryError(f"{name}() takes a timestamp and a period, e.g. {name}(@timestamp, 1h)")
    stamp = _millis(evaluate(args[0], row)) if args[0] != ("field", "@timestamp") else row.get("@timestamp_ms")
    if stamp is None:
        return None
    period_ms = args[1][1] * 1000
    rounded = (math.floor if name == "datefloor" else math.ceil)(float(stamp) / period_ms) * period_ms
    return format_time(int(rounded))


def format_time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.") + f"{epoch_ms % 1000:03d}"


# -- commands ---------------------------------------------------------------------------------


@dataclass
class Projection:
    expr: Any
    name: str


@dataclass
class Query:
    steps: list[tuple[str, Any]] = field(default_factory=list)


def _projections(parser: Parser) -> list[Projection]:
    out = []
    while not parser.done():
        start = parser.i
        expr = parser.expression()
        if parser.accept("as"):
            name = parser.take().value
        else:
            name = expr[1] if expr[0] == "field" else _text(parser.tokens[start : parser.i])
        out.append(Projection(expr, name))
        if not parser.accept(","):
            break
    if not parser.done():
        raise QueryError(f"unexpected {parser.peek().value!r}")  # type: ignore[union-attr]
    return out


def _text(tokens: list[Token]) -> str:
    return "".join(f"/{t.value}/" if t.kind == "REGEX" else t.value for t in tokens)


UNSUPPORTED_COMMANDS = {"pattern", "diff", "anomaly", "unnest", "lookup", "filterindex", "source", "unmask"}


def parse_query(text: str) -> Query:
    query = Query()
    commands = split_commands(text)
    if not commands:
        raise QueryError("the query is empty")
    for command in commands:
        keyword, rest = [*command.split(None, 1), ""][:2]  # the keyword ends at any whitespace
        keyword = keyword.lower()
        rest = rest.strip()
        if keyword in ("fields", "display"):
            query.steps.append((keyword, _projections(Parser(tokenize(rest)))))
        elif keyword == "filter":
            parser = Parser(tokenize(rest))
            expr = parser.expression()
            if not parser.done():
                raise QueryError(f"unexpected {parser.peek().value!r} in filter")  # type: ignore[union-attr]
            query.steps.append(("filter", expr))
        elif keyword == "parse":
            query.steps.append(("parse", _parse_command(rest)))
        elif keyword == "stats":
            query.steps.append(("stats", _stats_command(rest)))
        elif keyword == "sort":
            query.steps.append(("sort", _sort_command(rest)))
        elif keyword == "limit":
            if not rest.isdigit() or int(rest) < 1:
                raise QueryError(f"limit needs a positive number, got {rest!r}")
            query.steps.append(("limit", min(int(rest), MAX_ROWS)))
        elif keyword == "dedup":
            query.steps.append(("dedup", [p.strip() for p in rest.split(",") if p.strip()]))
        elif keyword in UNSUPPORTED_COMMANDS:
            raise QueryError(f"the {keyword} command is not supported by the emulator")
        else:
            raise QueryError(f"unexpected symbol {keyword!r}: not a query command")
    return query


def _parse_command(rest: str) -> tuple[str, Any, list[str]]:
    source, _, pattern_text = rest.partition(" ")
    source = source.strip("`")
    pattern_text = pattern_text.strip()
    if not source or not pattern_text:
        raise QueryError("parse needs a field and a pattern, e.g. parse @message /(?<x>...)/")
    if pattern_text.startswith("/"):
        end = _regex_end(pattern_text, 0)
        if pattern_text[end + 1 :].strip():
            raise QueryError(f"unexpected {pattern_text[end + 1 :].strip()!r} after the parse regex")
        pattern = go_regex(pattern_text[1:end])
        if not pattern.groupindex:
            raise QueryError("a parse regex needs named groups (?<name>...)")
        return source, pattern, list(pattern.groupindex)
    tokens = tokenize(pattern_text)
    if tokens and tokens[0].kind == "STRING":
        glob = _unquote(tokens[0].value)
        names = [t.value for t in tokens[2:] if t.kind == "NAME"]
        if not (len(tokens) > 1 and tokens[1].value == "as") or len(names) != glob.count("*"):
            raise QueryError("a glob parse needs 'as' and one name per '*'")
        # Found anywhere in the field, as on AWS; a final '*' takes the rest of the text.
        parts = [re.escape(part) for part in glob.split("*")]
        groups = ["(.*?)"] * (len(parts) - 1)
        if groups and glob.endswith("*"):
            groups[-1] = "(.*)"
        regex = parts[0] + "".join(group + part for group, part in zip(groups, parts[1:], strict=True))
        return source, re.compile(regex, re.DOTALL), names
    raise QueryError("parse needs a /regex/ with named groups or a \"glob\" with 'as'")


@dataclass
class Stats:
    aggregates: list[tuple[str, str, Any]]  # (output name, function, argument expressions)
    groups: list[Projection]


def _stats_command(rest: str) -> Stats:
    parser = Parser(tokenize(rest))
    aggregates: list[tuple[str, str, Any]] = []
    while True:
        start = parser.i
        expr = parser.expression()
        if expr[0] != "call" or expr[1] not in AGGREGATES:
            raise QueryError(f"stats needs aggregation functions ({', '.join(sorted(AGGREGATES))})")
        name = parser.take().value if parser.accept("as") else _text(parser.tokens[start : parser.i])
        aggregates.append((name, expr[1], expr[2]))
        if not parser.accept(","):
            break
    groups: list[Projection] = []
    if parser.accept("by"):
        groups = _projections(parser)
        if not groups:
            raise QueryError("stats ... by needs at least one field")
    elif not parser.done():
        raise QueryError(f"unexpected {parser.peek().value!r} in stats")  # type: ignore[union-attr]
    return Stats(aggregates, groups)


def _sort_command(rest: str) -> list[tuple[str, bool]]:
    keys = []
    for part in rest.split(","):
        words = part.split()
        if not words:
            continue
        descending = len(words) > 1 and words[-1].lower() == "desc"
        if len(words) > 1 and words[-1].lower() not in ("asc", "desc"):
            raise QueryError(f"bad sort key {part.strip()!r}")
        keys.append((words[0].strip("`"), descending))
    if not keys:
        raise QueryError("sort needs a field")
    return keys


# -- execution -------------------------------------------------------------------------------

REPORT = re.compile(
    r"^REPORT RequestId: (?P<request>\S+)\s+Duration: (?P<duration>[\d.]+) ms\s+Billed Duration: (?P<billed>\d+) ms"
    r"\s+Memory Size: (?P<size>\d+) MB\s+Max Memory Used: (?P<used>\d+) MB(?:\s+Init Duration: (?P<init>[\d.]+) ms)?"
)
# AWS discovers the REPORT line's MB as millions of bytes: the AWS docs' own queries divide @memorySize and
# @maxMemoryUsed by 1000/1000 for MB (a 768 MB function reads 732 when divided by 1024/1024).
MB = 1000 * 1000


def discover(event: Event) -> dict[str, Any]:
    row: dict[str, Any] = {
        "@timestamp": format_time(event.timestamp),
        "@timestamp_ms": event.timestamp,
        "@message": event.message,
        "@logStream": event.log_stream,
        "@log": event.log_group,
        "@ingestionTime": format_time(event.ingestion_time or event.timestamp),
    }
    if event.pointer:
        row["@ptr"] = event.pointer
    message = event.message
    if message.startswith("{"):
        try:
            data = json.loads(message)
        except ValueError:
            data = None
        if isinstance(data, dict):
            _flatten(data, "", row)
    report = REPORT.match(message)
    if report:
        row.update(
            {
                "@type": "REPORT",
                "@requestId": report.group("request"),
                "@duration": float(report.group("duration")),
                "@billedDuration": float(report.group("billed")),
                "@memorySize": int(report.group("size")) * MB,
                "@maxMemoryUsed": int(report.group("used")) * MB,
            }
        )
        if report.group("init"):
            row["@initDuration"] = float(report.group("init"))
    elif message.startswith(("START RequestId:", "END RequestId:")):
        row["@type"] = message.split(" ", 1)[0]
        row["@requestId"] = message.split("RequestId: ", 1)[1].split()[0]
    return row


def _flatten(data: dict[str, Any], prefix: str, row: dict[str, Any]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", row)
        elif not isinstance(value, list):
            row.setdefault(name, value)


@dataclass
class Result:
    rows: list[dict[str, str]]
    records_scanned: int = 0
    records_matched: int = 0
    bytes_scanned: int = 0

    def statistics(self) -> dict[str, float]:
        """GetQueryResults' statistics."""
        return {
            "recordsMatched": float(self.records_matched),
            "recordsScanned": float(self.records_scanned),
            "estimatedRecordsSkipped": 0.0,
            "bytesScanned": float(self.bytes_scanned),
            "estimatedBytesSkipped": 0.0,
            "logGroupsScanned": 0.0,
        }


def run(query_text: str, events: list[Event], start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Rows of the query result, each an ordered dict of field -> value (as text)."""
    return execute(query_text, events, start_ms, end_ms).rows


def execute(query_text: str, events: list[Event], start_ms: int, end_ms: int) -> Result:
    """The query's rows (with @ptr for rows that are log events) and its statistics."""
    query = parse_query(query_text)
    scanned = [e for e in events if start_ms <= e.timestamp <= end_ms]
    rows = [discover(e) for e in scanned]
    matched: int | None = None
    rows.sort(key=lambda r: r["@timestamp_ms"], reverse=True)
    columns: list[str] | None = None
    limited = False
    for step, arg in query.steps:
        if step == "fields":
            for projection in arg:
                for row in rows:
                    row[projection.name] = evaluate(projection.expr, row)
            columns = (columns or []) + [p.name for p in arg if p.name not in (columns or [])]
        elif step == "display":
            for projection in arg:
                for row in rows:
                    row[projection.name] = evaluate(projection.expr, row)
            columns = [p.name for p in arg]
        elif step == "filter":
            rows = [row for row in rows if truthy(evaluate(arg, row))]
        elif step == "parse":
            source, pattern, names = arg
            for row in rows:
                match = pattern.search(str(row.get(source) or ""))
                if match:
                    values = match.groupdict() if pattern.groupindex else dict(zip(names, match.groups(), strict=False))
                    row.update(values)
        elif step == "stats":
            matched = len(rows) if matched is None else matched
            rows, columns = _stats(arg, rows)
        elif step == "sort":
            for name, descending in reversed(arg):
                rows.sort(key=functools.partial(_row_sort_key, name), reverse=descending)
        elif step == "limit":
            rows = rows[:arg]
            limited = True
        elif step == "dedup":
            seen = set()
            kept = []
            for row in rows:
                key = tuple(str(row.get(n)) for n in arg)
                if key not in seen:
                    seen.add(key)
                    kept.append(row)
            rows = kept
    matched = len(rows) if matched is None else matched
    if not limited:
        rows = rows[:MAX_ROWS]
    if columns is None:
        columns = ["@timestamp", "@message"]
    if "@ptr" not in columns and not any(step == "stats" for step, _ in query.steps):
        columns = [*columns, "@ptr"]
    return Result(
        [{name: render(row.get(name)) for name in columns if row.get(name) is not None} for row in rows],
        records_scanned=len(scanned),
        records_matched=matched,
        bytes_scanned=sum(len(e.message.encode("utf-8")) for e in scanned),
    )


def _row_sort_key(name: str, row: dict[str, Any]) -> tuple[int, float, str]:
    return _sort_key(row.get(name))


def _sort_key(value: Any) -> tuple[int, float, str]:
    if value is None:
        return (0, 0.0, "")
    numeric = number(value)
    return (1, numeric, "") if numeric is not None else (2, 0.0, str(value))


def render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(round(value, 6))
    return str(value)


def _stats(spec: Stats, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    keys: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        values = {g.name: evaluate(g.expr, row) for g in spec.groups}
        key = tuple("" if v is None else render(v) for v in values.values())
        groups.setdefault(key, []).append(row)
        keys[key] = values
    if not spec.groups:
        groups = {(): rows}
        keys = {(): {}}
    out = []
    for key, members in groups.items():
        result = dict(keys[key])
        for name, function, args in spec.aggregates:
            result[name] = aggregate(function, args, members)
        out.append(result)
    columns = [g.name for g in spec.groups] + [name for name, _, _ in spec.aggregates]
    return out, columns


def aggregate(function: str, args: list[Any], rows: list[dict[str, Any]]) -> Any:
    if function == "count":
        if not args or args[0][0] == "star":
            return float(len(rows))
        return float(sum(1 for r in rows if evaluate(args[0], r) is not None))
    if not args:
        raise QueryError(f"{function}() needs a field")
    raw = [evaluate(args[0], r) for r in rows]
    present = [v for v in raw if v is not None]
    if function == "count_distinct":
        return float(len({render(v) for v in present}))
    if function in ("earliest", "latest"):
        pairs = [(r["@timestamp_ms"], v) for r, v in zip(rows, raw, strict=True) if v is not None]
        if not pairs:
            return None
        return (min(pairs, key=lambda p: p[0]) if function == "earliest" else max(pairs, key=lambda p: p[0]))[1]
    if function in ("sortsfirst", "sortslast"):
        if not present:
            return None
        return (min if function == "sortsfirst" else max)(present, key=_sort_key)
    numbers = [n for n in (number(v) for v in present) if n is not None]
    if not numbers:
        return None
    if function == "sum":
        return sum(numbers)
    if function == "avg":
        return sum(numbers) / len(numbers)
    if function == "min":
        return min(numbers)
    if function == "max":
        return max(numbers)
    if function == "stddev":
        return statistics.pstdev(numbers)
    if function == "pct":
        if len(args) != 2 or args[1][0] != "lit":
            raise QueryError("pct() needs a field and a percentile, e.g. pct(duration_ms, 95)")
        return percentile(numbers, float(args[1][1]))
    raise QueryError(f"unsupported aggregation {function}()")
