"""CloudWatch metric math: the Expression of a GetMetricData query (or of an alarm's Metrics).

An expression combines the time series of other queries (by Id) and numbers with
``+ - * / ^``, comparisons (``== != < <= > >=``, 1 or 0), ``AND`` / ``OR`` / ``NOT`` and
functions: ABS, CEIL, FLOOR, LOG, LOG10, SQRT, SUM, AVG, MIN, MAX, STDDEV (over an array
of series they give one series; over one series, a number), METRICS([filter]), FILL(m,
value|REPEAT|LINEAR), RATE, DIFF, DIFF_TIME, RUNNING_SUM, PERIOD, DATAPOINT_COUNT, EPOCH,
IF(condition, a[, b]), REMOVE_EMPTY, FIRST, LAST, SORT(array, SUM|AVG|MIN|MAX, ASC|DESC
[, limit]), TIME_SERIES(number) and ``[m1, m2]`` arrays. SEARCH, ANOMALY_DETECTION_BAND,
INSIGHT_RULE_METRIC, SERVICE_QUOTA, LAMBDA and the metrics-insights SELECT are refused with
an error that names them.

Two series combine where both have a value at the same timestamp (as CloudWatch drops the
other points); a series and a number combine point by point.
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_EXPRESSION_CHARS = 2048  # the GetMetricData limit on Expression


class MetricMathError(ValueError):
    """The expression is malformed or uses something this emulator does not evaluate."""


@dataclass
class Series:
    label: str
    points: dict[datetime, float] = field(default_factory=dict)
    period_s: int = 60

    def ordered(self) -> list[tuple[datetime, float]]:
        return sorted(self.points.items())


Value = float | Series | list[Series]

TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<string>'[^']*'|\"[^\"]*\")|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/^<>(),\[\]!]))"
)
UNSUPPORTED = {"SEARCH", "ANOMALY_DETECTION_BAND", "INSIGHT_RULE_METRIC", "SERVICE_QUOTA", "LAMBDA", "SELECT"}


@dataclass
class Tok:
    kind: str
    text: str


def tokenize(text: str) -> list[Tok]:
    out: list[Tok] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise MetricMathError(f"unexpected character {text[position:].strip()[:1]!r} at position {position}")
        kind = match.lastgroup or ""
        out.append(Tok(kind, match.group(kind)))
        position = match.end()
    return out


class Parser:
    """Precedence, lowest first: OR, AND, NOT, comparison, + -, * /, ^, unary minus."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_EXPRESSION_CHARS:
            raise MetricMathError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, text: str | None = None) -> Tok:
        token = self.peek()
        if token is None or (text is not None and token.text.upper() != text):
            raise MetricMathError(f"expected {text or 'more'}, found {token.text if token else 'the end'!r}")
        self.i += 1
        return token

    def accept(self, *texts: str) -> str | None:
        token = self.peek()
        if token is not None and token.text.upper() in texts:
            self.i += 1
            return token.text.upper()
        return None

    def parse(self) -> Any:
        node = self.or_expr()
        if self.peek() is not None:
            raise MetricMathError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def or_expr(self) -> Any:
        node = self.and_expr()
        while self.accept("OR", "||"):
            node = ("bin", "OR", node, self.and_expr())
        return node

    def and_expr(self) -> Any:
        node = self.not_expr()
        while self.accept("AND", "&&"):
            node = ("bin", "AND", node, self.not_expr())
        return node

    def not_expr(self) -> Any:
        if self.accept("NOT", "!"):
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Any:
        node = self.additive()
        op = self.accept("==", "!=", "<", "<=", ">", ">=")
        if op:
            node = ("bin", op, node, self.additive())
        return node

    def additive(self) -> Any:
        node = self.term()
        while True:
            op = self.accept("+", "-")
            if not op:
                return node
            node = ("bin", op, node, self.term())

    def term(self) -> Any:
        node = self.power()
        while True:
            op = self.accept("*", "/")
            if not op:
                return node
            node = ("bin", op, node, self.power())

    def power(self) -> Any:
        node = self.unary()
        if self.accept("^"):
            return ("bin", "^", node, self.power())
        return node

    def unary(self) -> Any:
        if self.accept("-"):
            return ("bin", "-", ("num", 0.0), self.unary())
        return self.primary()

    def primary(self) -> Any:
        token = self.take()
        if token.kind == "number":
            return ("num", float(token.text))
        if token.kind == "string":
            return ("str", token.text[1:-1])
        if token.text == "(":
            node = self.or_expr()
            self.take(")")
            return node
        if token.text == "[":
            items = []
            while not self.accept("]"):
                items.append(self.or_expr())
                self.accept(",")
            return ("array", items)
        if token.kind == "name":
            if self.accept("("):
                args = []
                while not self.accept(")"):
                    args.append(self.or_expr())
                    if not self.accept(","):
                        self.take(")")
                        break
                return ("call", token.text.upper(), args)
            if token.text.upper() in UNSUPPORTED:
                raise MetricMathError(f"{token.text.upper()} is not supported by the emulator")
            return ("ref", token.text)
        raise MetricMathError(f"unexpected {token.text!r}")


def _apply(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b if b != 0 else math.nan
    if op == "^":
        try:
            return float(a**b)
        except (OverflowError, ZeroDivisionError):
            return math.nan
    comparisons: dict[str, Callable[[float, float], bool]] = {
        "==": lambda x, y: x == y,
        "!=": lambda x, y: x != y,
        "<": lambda x, y: x < y,
        "<=": lambda x, y: x <= y,
        ">": lambda x, y: x > y,
        ">=": lambda x, y: x >= y,
        "AND": lambda x, y: bool(x) and bool(y),
        "OR": lambda x, y: bool(x) or bool(y),
    }
    return 1.0 if comparisons[op](a, b) else 0.0


def combine(op: str, left: Value, right: Value, label: str) -> Value:
    if isinstance(left, list):
        return [combine(op, item, right, item.label) for item in left]  # type: ignore[misc]
    if isinstance(right, list):
        return [combine(op, left, item, item.label) for item in right]  # type: ignore[misc]
    if isinstance(left, Series) and isinstance(right, Series):
        shared = left.points.keys() & right.points.keys()
        return Series(label, {t: _apply(op, left.points[t], right.points[t]) for t in shared}, left.period_s)
    if isinstance(left, Series):
        return Series(label, {t: _apply(op, v, float(right)) for t, v in left.points.items()}, left.period_s)  # type: ignore[arg-type]
    if isinstance(right, Series):
        return Series(label, {t: _apply(op, float(left), v) for t, v in right.points.items()}, right.period_s)
    return _apply(op, float(left), float(right))


REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "SUM": sum,
    "AVG": lambda vs: sum(vs) / len(vs),
    "MIN": min,
    "MAX": max,
    "STDDEV": lambda vs: statistics.pstdev(vs) if len(vs) > 1 else 0.0,
}
POINTWISE: dict[str, Callable[[float], float]] = {
    "ABS": abs,
    "CEIL": lambda v: float(math.ceil(v)) if math.isfinite(v) else v,
    "FLOOR": lambda v: float(math.floor(v)) if math.isfinite(v) else v,
    "LOG": lambda v: math.log(v) if v > 0 else math.nan,
    "LOG10": lambda v: math.log10(v) if v > 0 else math.nan,
    "SQRT": lambda v: math.sqrt(v) if v >= 0 else math.nan,
}


class Evaluator:
    def __init__(
        self, results: dict[str, Series], timestamps: list[datetime], period_s: int, metrics: set[str] | None = None
    ) -> None:
        self.results = results
        self.metrics = set(results) if metrics is None else metrics  # the MetricStat queries, for METRICS()
        self.timestamps = sorted(set(timestamps))
        self.period_s = period_s

    def value(self, node: Any, label: str) -> Value:
        kind = node[0]
        if kind == "num":
            return float(node[1])
        if kind == "str":
            raise MetricMathError(f"a string ({node[1]!r}) is only allowed as a function argument")
        if kind == "ref":
            if node[1] not in self.results:
                raise MetricMathError(f"Unrecognized metric id or function: {node[1]}")
            return self.results[node[1]]
        if kind == "array":
            items: list[Series] = []
            for item in node[1]:
                value = self.value(item, label)
                items.extend(value if isinstance(value, list) else [self._series(value, label)])
            return items
        if kind == "bin":
            return combine(node[1], self.value(node[2], label), self.value(node[3], label), label)
        if kind == "not":
            return combine("==", self.value(node[1], label), 0.0, label)
        return self.call(node[1], node[2], label)

    def _series(self, value: Value, label: str) -> Series:
        if isinstance(value, Series):
            return value
        if isinstance(value, list):
            raise MetricMathError("expected one time series, got an array")
        return Series(label, {t: float(value) for t in self.timestamps}, self.period_s)

    def _one(self, args: list[Any], name: str, label: str) -> Series:
        if len(args) != 1:
            raise MetricMathError(f"{name} takes one argument")
        return self._series(self.value(args[0], label), label)

    def call(self, name: str, args: list[Any], label: str) -> Value:
        if name in UNSUPPORTED:
            raise MetricMathError(f"{name} is not supported by the emulator")
        if name in POINTWISE:
            value = self.value(args[0], label) if len(args) == 1 else None
            if value is None:
                raise MetricMathError(f"{name} takes one argument")
            return _map(value, POINTWISE[name], label)
        if name in REDUCERS:
            return self._reduce(name, args, label)
        if name == "METRICS":
            wanted = ""
            if args:
                if args[0][0] != "str":
                    raise MetricMathError("METRICS takes an optional string filter")
                wanted = args[0][1]
            return [
                s for key, s in self.results.items() if key in self.metrics and (wanted in s.label or wanted in key)
            ]
        if name == "FILL":
            return self._fill(args, label)
        if name in ("RATE", "DIFF", "DIFF_TIME", "RUNNING_SUM", "EPOCH"):
            value = self.value(args[0], label) if len(args) == 1 else None
            if value is None:
                raise MetricMathError(f"{name} takes one argument")
            return _map_series(value, lambda s: _sequence(name, s), label)
        if name == "PERIOD":
            return float(self._one(args, name, label).period_s)
        if name == "DATAPOINT_COUNT":
            return float(len(self._one(args, name, label).points))
        if name == "TIME_SERIES":
            if len(args) != 1:
                raise MetricMathError("TIME_SERIES takes one number")
            value = self.value(args[0], label)
            return self._series(value, label)
        if name == "IF":
            return self._if(args, label)
        if name == "REMOVE_EMPTY":
            value = self.value(args[0], label)
            return [s for s in (value if isinstance(value, list) else [self._series(value, label)]) if s.points]
        if name in ("FIRST", "LAST"):
            value = self.value(args[0], label)
            items = value if isinstance(value, list) else [self._series(value, label)]
            if not items:
                raise MetricMathError(f"{name} of an empty array")
            return items[0] if name == "FIRST" else items[-1]
        if name == "SORT":
            return self._sort(args, label)
        raise MetricMathError(f"Unrecognized function: {name}")

    def _reduce(self, name: str, args: list[Any], label: str) -> Value:
        if len(args) != 1:
            raise MetricMathError(f"{name} takes one argument (a series or an array)")
        value = self.value(args[0], label)
        reducer = REDUCERS[name]
        if isinstance(value, list):
            by_time: dict[datetime, list[float]] = {}
            for series in value:
                for moment, v in series.points.items():
                    by_time.setdefault(moment, []).append(v)
            period = value[0].period_s if value else self.period_s
            return Series(label, {t: reducer(vs) for t, vs in by_time.items()}, period)
        if isinstance(value, Series):
            values = list(value.points.values())
            return reducer(values) if values else math.nan
        return float(value)

    def _fill(self, args: list[Any], label: str) -> Value:
        if len(args) != 2:
            raise MetricMathError("FILL takes a series and a value, REPEAT or LINEAR")
        value = self.value(args[0], label)
        mode = args[1][1].upper() if args[1][0] == "ref" else None
        filler = None if mode in ("REPEAT", "LINEAR") else self.value(args[1], label)
        if isinstance(filler, list):
            raise MetricMathError("FILL's second argument must be one value or series")

        def fill(series: Series) -> Series:
            out = dict(series.points)
            known = series.ordered()
            for moment in self.timestamps:
                if moment in out:
                    continue
                if mode == "REPEAT":
                    earlier = [v for t, v in known if t < moment]
                    if earlier:
                        out[moment] = earlier[-1]
                elif mode == "LINEAR":
                    before = [(t, v) for t, v in known if t < moment]
                    after = [(t, v) for t, v in known if t > moment]
                    if before and after:
                        (t0, v0), (t1, v1) = before[-1], after[0]
                        out[moment] = v0 + (v1 - v0) * (moment - t0).total_seconds() / (t1 - t0).total_seconds()
                elif isinstance(filler, Series):
                    if moment in filler.points:
                        out[moment] = filler.points[moment]
                else:
                    out[moment] = float(filler)  # type: ignore[arg-type]
            return Series(series.label, out, series.period_s)

        return _map_series(value, fill, label)

    def _if(self, args: list[Any], label: str) -> Value:
        if len(args) not in (2, 3):
            raise MetricMathError("IF takes a condition, a value if true and optionally a value if false")
        condition = self._series(self.value(args[0], label), label)
        yes = self.value(args[1], label)
        no = self.value(args[2], label) if len(args) == 3 else None
        if isinstance(yes, list) or isinstance(no, list):
            raise MetricMathError("IF does not take arrays")

        def pick(choice: Value | None, moment: datetime) -> float | None:
            if choice is None:
                return None
            if isinstance(choice, Series):
                return choice.points.get(moment)
            return float(choice)  # type: ignore[arg-type]

        out = {}
        for moment, flag in condition.points.items():
            chosen = pick(yes if flag else no, moment)
            if chosen is not None:
                out[moment] = chosen
        return Series(label, out, condition.period_s)

    def _sort(self, args: list[Any], label: str) -> Value:
        if len(args) < 3:
            raise MetricMathError("SORT takes an array, SUM|AVG|MIN|MAX, ASC|DESC and an optional limit")
        value = self.value(args[0], label)
        items = value if isinstance(value, list) else [self._series(value, label)]
        how = args[1][1].upper() if args[1][0] == "ref" else ""
        order = args[2][1].upper() if args[2][0] == "ref" else ""
        if how not in REDUCERS or order not in ("ASC", "DESC"):
            raise MetricMathError("SORT takes an array, SUM|AVG|MIN|MAX, ASC|DESC and an optional limit")
        ranked = sorted(
            items,
            key=lambda s: REDUCERS[how](list(s.points.values())) if s.points else -math.inf,
            reverse=order == "DESC",
        )
        if len(args) == 4:
            limit = self.value(args[3], label)
            if not isinstance(limit, float):
                raise MetricMathError("SORT's limit must be a number")
            ranked = ranked[: int(limit)]
        return ranked


def _map(value: Value, function: Callable[[float], float], label: str) -> Value:
    if isinstance(value, list):
        return [Series(s.label, {t: function(v) for t, v in s.points.items()}, s.period_s) for s in value]
    if isinstance(value, Series):
        return Series(label, {t: function(v) for t, v in value.points.items()}, value.period_s)
    return function(float(value))


def _map_series(value: Value, function: Callable[[Series], Series], label: str) -> Value:
    if isinstance(value, list):
        return [function(s) for s in value]
    if isinstance(value, Series):
        result = function(value)
        return Series(label, result.points, result.period_s)
    raise MetricMathError("this function takes a time series")


def _sequence(name: str, series: Series) -> Series:
    ordered = series.ordered()
    out: dict[datetime, float] = {}
    if name == "EPOCH":
        out = {t: t.timestamp() for t, _ in ordered}
    elif name == "RUNNING_SUM":
        total = 0.0
        for moment, value in ordered:
            total += value
            out[moment] = total
    else:
        for (t0, v0), (t1, v1) in itertools.pairwise(ordered):
            seconds = (t1 - t0).total_seconds()
            if name == "DIFF":
                out[t1] = v1 - v0
            elif name == "DIFF_TIME":
                out[t1] = seconds
            elif seconds > 0:  # RATE: change per second
                out[t1] = (v1 - v0) / seconds
    return Series(series.label, out, series.period_s)


def evaluate(
    expression: str, results: dict[str, Series], label: str, period_s: int = 60, metrics: set[str] | None = None
) -> list[Series]:
    """The series an expression gives (one, or several for an array), given the other queries' results."""
    if expression.strip().upper().startswith("SELECT"):
        raise MetricMathError("Metrics Insights queries (SELECT ...) are not supported by the emulator")
    tree = Parser(expression).parse()
    timestamps = [t for s in results.values() for t in s.points]
    value = Evaluator(results, timestamps, period_s, metrics).value(tree, label)
    if isinstance(value, list):
        return value
    if isinstance(value, Series):
        return [Series(label, {t: v for t, v in value.points.items() if not math.isnan(v)}, value.period_s)]
    evaluator = Evaluator(results, timestamps, period_s)
    return [evaluator._series(value, label)]
