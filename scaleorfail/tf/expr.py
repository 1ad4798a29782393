"""Evaluate Terraform (HCL2) expressions parsed by python-hcl2.

python-hcl2 turns HCL text into a lark parse tree; this module walks the expression
subtrees and computes their values the way Terraform does, for the subset of the
language a module like ours uses: literals, strings with interpolation and directives,
tuples/objects, attribute and index access, splats, arithmetic/logic/comparison,
conditionals, ``for`` expressions and Terraform's built-in functions (see
:mod:`scaleorfail.tf.functions`).

Names are resolved through a :class:`Scope`, whose roots (``var``, ``local``,
``module``, ``data``, resource types, ``path``, ``each``, ``count`` ...) are plain
mappings, so that lazy, on-demand evaluation of locals and module outputs is just a
mapping whose ``__getitem__`` evaluates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lark import Token, Tree

from scaleorfail.tf import numbers
from scaleorfail.tf.encoding import json_encode
from scaleorfail.tf.template import Segment, render_segments, scan
from scaleorfail.tf.types import unify_values
from scaleorfail.tf.values import (
    HCL_ESCAPES,
    LAZY_FUNCTIONS,
    SHAPE_FUNCTIONS,
    Function,
    HclError,
    LazyMapping,
    Scope,
    Unknown,
    boolean,
    contains_unknown,
    iteration_pairs,
    number,
    plain,
    to_string,
    tokens_removed,
    type_name,
    unescape,
    whole_number,
)

# The evaluator's names for its callers: the values it works with are defined in values.py.
__all__ = [
    "HCL_ESCAPES",
    "LAZY_FUNCTIONS",
    "SHAPE_FUNCTIONS",
    "Evaluator",
    "Function",
    "HclError",
    "LazyMapping",
    "Scope",
    "Unknown",
    "boolean",
    "canonical_json",
    "contains_unknown",
    "equal",
    "evaluate",
    "iteration_pairs",
    "number",
    "plain",
    "render_template",
    "templatefile",
    "to_string",
    "tokens_removed",
    "type_name",
    "unescape",
    "whole_number",
]


class Evaluator:
    """Walks python-hcl2 expression trees."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def where(self, node: Tree[Any] | Token) -> str:
        line = getattr(getattr(node, "meta", None), "line", None) if isinstance(node, Tree) else node.line
        return f"{self.scope.where}:{line}" if line else self.scope.where

    # -- dispatch -------------------------------------------------------------------

    def eval(self, node: Any) -> Any:
        if isinstance(node, Token):
            raise HclError(f"{self.where(node)}: unexpected token {node.value!r}")
        method = getattr(self, f"_{node.data}", None)
        if method is None:
            raise HclError(f"{self.where(node)}: '{node.data}' expressions are not supported")
        return method(node)

    def _expr_term(self, node: Tree[Any]) -> Any:
        (inner,) = tokens_removed(node.children)
        return self.eval(inner)

    def _int_lit(self, node: Tree[Any]) -> numbers.Number:
        return numbers.parse(str(node.children[0]))

    def _float_lit(self, node: Tree[Any]) -> numbers.Number:
        return numbers.parse(str(node.children[0]))

    def _literal_value(self, node: Tree[Any]) -> bool | None:
        return {"true": True, "false": False, "null": None}[str(node.children[0])]

    def _identifier(self, node: Tree[Any]) -> Any:
        return self.scope.lookup(str(node.children[0]))

    # -- strings and templates ------------------------------------------------------

    def _string(self, node: Tree[Any]) -> Any:
        parts = [c for c in node.children if isinstance(c, Tree) and c.data == "string_part"]
        return self.template_parts(parts, node)

    def template_parts(self, parts: list[Tree[Any]], node: Tree[Any]) -> Any:
        """Evaluate a quoted template; a lone ``"${x}"`` keeps x's type, as in Terraform."""
        items = [p.children[0] for p in parts]
        if len(items) == 1 and isinstance(items[0], Tree) and items[0].data == "interpolation":
            return self.eval(tokens_removed(items[0].children)[0])
        return render_segments([self.segment(item) for item in items], self, by_line=False)

    def segment(self, item: Any) -> Any:
        if isinstance(item, Token):
            if item.type in ("ESCAPED_INTERPOLATION", "ESCAPED_DIRECTIVE"):
                return Segment("text", text=item.value[1:])
            return Segment("text", text=unescape(item.value))
        kind = item.data
        exprs = tokens_removed(item.children)
        markers = [i for i, c in enumerate(item.children) if isinstance(c, Token) and c.type == "STRIP_MARKER"]
        strip_left = any(i <= 1 for i in markers)
        strip_right = any(i >= len(item.children) - 2 for i in markers)
        if kind == "interpolation":
            return Segment("interp", expr=exprs[0])
        if kind == "template_if_start":
            return Segment("if", expr=exprs[0], strip_left=strip_left, strip_right=strip_right)
        if kind in ("template_else", "template_endif", "template_endfor"):
            return Segment(kind.removeprefix("template_"), strip_left=strip_left, strip_right=strip_right)
        if kind == "template_for_start":
            names = tuple(str(e.children[0]) for e in exprs if e.data == "identifier")
            collection = [e for e in exprs if e.data != "identifier"][-1]
            return Segment("for", expr=collection, names=names, strip_left=strip_left, strip_right=strip_right)
        raise HclError(f"{self.where(item)}: unsupported template part {kind}")

    def _heredoc_template(self, node: Tree[Any]) -> Any:
        raw = str(node.children[0])
        body = raw.split("\n", 1)[1].rsplit("\n", 2)[0] + "\n"
        return render_template(body, self.scope)

    def _heredoc_template_trim(self, node: Tree[Any]) -> Any:
        raw = str(node.children[0])
        lines = raw.split("\n")[1:-2]
        indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
        body = "\n".join(line[indent:] for line in lines) + "\n"
        return render_template(body, self.scope)

    # -- collections ----------------------------------------------------------------

    def _tuple(self, node: Tree[Any]) -> list[Any]:
        return [self.eval(child) for child in tokens_removed(node.children)]

    def _object(self, node: Tree[Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for elem in tokens_removed(node.children):
            key_node, value_node = tokens_removed(elem.children)
            result[self.object_key(key_node)] = self.eval(value_node)
        return result

    def object_key(self, key_node: Tree[Any]) -> str:
        inner = key_node.children[0]
        if isinstance(inner, Tree) and inner.data == "keyword":
            return str(inner.children[0])
        if isinstance(inner, Tree) and inner.data == "expr_term":
            term = tokens_removed(inner.children)
            if len(term) == 1 and term[0].data == "identifier" and len(inner.children) == 1:
                return str(term[0].children[0])  # a bare name is a literal key
        return to_string(self.eval(inner), self.where(key_node))

    # -- traversal ------------------------------------------------------------------

    def _get_attr_expr_term(self, node: Tree[Any]) -> Any:
        target, attr = tokens_removed(node.children)
        return self.get_attr(self.eval(target), attr)

    def get_attr(self, value: Any, attr: Tree[Any]) -> Any:
        name = str(tokens_removed(attr.children)[0].children[0])
        if isinstance(value, Unknown):
            return Unknown(f"{value.what}.{name}")
        if isinstance(value, Mapping):
            if name in value:
                return value[name]
            label = getattr(value, "label", "object")
            raise HclError(f"{self.where(attr)}: {label} has no attribute {name!r}")
        raise HclError(f"{self.where(attr)}: cannot read .{name} of a {type_name(value)}")

    def _index_expr_term(self, node: Tree[Any]) -> Any:
        target, index = tokens_removed(node.children)
        return self.index(self.eval(target), index)

    def index(self, value: Any, index: Tree[Any]) -> Any:
        if index.data == "short_index":
            key: Any = int(str(index.children[-1]))
        else:
            key = self.eval(tokens_removed(index.children)[0])
        if isinstance(value, Unknown):
            return Unknown(f"{value.what}[{key!r}]")
        if isinstance(value, Mapping):
            name = to_string(key, self.where(index))
            if name not in value:
                raise HclError(f"{self.where(index)}: no element {name!r} (have: {', '.join(sorted(value))})")
            return value[name]
        if isinstance(value, (list, tuple)):
            position = number(key, self.where(index))
            if not isinstance(position, int) or not 0 <= position < len(value):
                raise HclError(f"{self.where(index)}: index {key!r} is out of range for {len(value)} elements")
            return value[position]
        raise HclError(f"{self.where(index)}: cannot index a {type_name(value)}")

    def splat(self, node: Tree[Any]) -> Any:
        target, splat = tokens_removed(node.children)
        value = self.eval(target)
        if value is None:
            return []
        items = list(value.values()) if isinstance(value, Mapping) else value
        if not isinstance(items, (list, tuple)):
            items = [items]
        steps = tokens_removed(splat.children)
        out = []
        for item in items:
            value = item
            for step in steps:
                value = self.get_attr(value, step) if step.data == "get_attr" else self.index(value, step)
            out.append(value)
        return out

    _attr_splat_expr_term = splat
    _full_splat_expr_term = splat

    # -- operators ------------------------------------------------------------------

    def _conditional(self, node: Tree[Any]) -> Any:
        """cond ? a : b - only the chosen result's errors count, but both results' types unify."""
        cond_node, yes, no = tokens_removed(node.children)
        where = self.where(node)
        cond = self.eval(cond_node)
        if isinstance(cond, Unknown):
            return Unknown("a conditional whose condition is known after apply")
        chosen, other = (yes, no) if boolean(cond, where) else (no, yes)
        value = self.eval(chosen)
        try:
            other_value = self.eval(other)
        except HclError:
            return value  # the other result fails: its type is unknown, nothing to unify with

        unified = unify_values([value, other_value], where)
        if unified is None:
            raise HclError(
                f"{where}: inconsistent conditional result types: the results are a {type_name(value)} "
                f"and a {type_name(other_value)}"
            )
        return unified[0]

    def _unary_op(self, node: Tree[Any]) -> Any:
        op = str(node.children[0])
        value = self.eval(node.children[1])
        if isinstance(value, Unknown):
            return Unknown(f"({op} of a value known after apply)")
        if op == "!":
            return not boolean(value, self.where(node))
        return numbers.subtract(0, number(value, self.where(node)))

    def _binary_op(self, node: Tree[Any]) -> Any:
        """Both operands are always evaluated: Terraform does not short-circuit && and ||."""
        left_node, term = tokens_removed(node.children)
        operator_node, right_node = tokens_removed(term.children)
        op = str(operator_node.children[0])
        where = self.where(node)
        left, right = self.eval(left_node), self.eval(right_node)
        if isinstance(left, Unknown) or isinstance(right, Unknown):
            return Unknown(f"({op} of a value known after apply)")
        if op in ("&&", "||"):
            a_bool, b_bool = boolean(left, where), boolean(right, where)
            return (a_bool and b_bool) if op == "&&" else (a_bool or b_bool)
        if op == "==":
            return equal(left, right)
        if op == "!=":
            return not equal(left, right)
        a, b = number(left, where), number(right, where)
        if op in ("<", ">", "<=", ">="):
            return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        operations = {
            "+": numbers.add,
            "-": numbers.subtract,
            "*": numbers.multiply,
            "/": numbers.divide,
            "%": numbers.modulo,
        }
        if op not in operations:
            raise HclError(f"{where}: unsupported operator {op}")
        try:
            return operations[op](a, b)
        except numbers.NumberError as error:
            raise HclError(f"{where}: {error}") from None

    # -- for expressions --------------------------------------------------------------

    def for_items(self, intro: Tree[Any]) -> tuple[list[str], list[tuple[Any, Any]]]:
        parts = tokens_removed(intro.children)
        names = [str(p.children[0]) for p in parts if p.data == "identifier"]
        collection = self.eval([p for p in parts if p.data != "identifier"][-1])
        pairs = iteration_pairs(collection)
        if pairs is None:
            raise HclError(
                f"{self.where(intro)}: a for expression needs a list, set or map, got {type_name(collection)}"
            )
        return names, pairs

    def bind(self, names: list[str], key: Any, value: Any) -> Evaluator:
        bound = {names[0]: value} if len(names) == 1 else {names[0]: key, names[1]: value}
        return Evaluator(self.scope.child(**bound))

    def _for_tuple_expr(self, node: Tree[Any]) -> list[Any]:
        intro, body, *rest = tokens_removed(node.children)
        names, pairs = self.for_items(intro)
        out = []
        for key, value in pairs:
            inner = self.bind(names, key, value)
            if rest and not boolean(inner.eval(tokens_removed(rest[0].children)[0]), self.where(node)):
                continue
            out.append(inner.eval(body))
        return out

    def _for_object_expr(self, node: Tree[Any]) -> dict[str, Any]:
        intro, key_expr, value_expr, *rest = tokens_removed(node.children)
        grouping = any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in node.children)
        names, pairs = self.for_items(intro)
        out: dict[str, Any] = {}
        for key, value in pairs:
            inner = self.bind(names, key, value)
            if rest and not boolean(inner.eval(tokens_removed(rest[0].children)[0]), self.where(node)):
                continue
            new_key = to_string(inner.eval(key_expr), self.where(node))
            new_value = inner.eval(value_expr)
            if grouping:
                out.setdefault(new_key, []).append(new_value)
            elif new_key in out:
                raise HclError(f"{self.where(node)}: duplicate key {new_key!r} in for expression (use ... to group)")
            else:
                out[new_key] = new_value
        return out

    # -- functions ------------------------------------------------------------------

    def _function_call(self, node: Tree[Any]) -> Any:
        parts = tokens_removed(node.children)
        name = str(parts[0].children[0])
        arg_nodes = tokens_removed(parts[1].children) if len(parts) > 1 else []
        expand = len(parts) > 1 and any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in parts[1].children)
        where = self.where(node)
        if name in LAZY_FUNCTIONS:
            return self.lazy_call(name, arg_nodes, where)
        function = self.scope.functions.get(name)
        if function is None:
            raise HclError(f"{where}: function {name}() is not supported here")
        args = [self.eval(a) for a in arg_nodes]
        if expand:
            if not isinstance(args[-1], (list, tuple)):
                raise HclError(f"{where}: {name}(): only a list can be expanded with ...")
            args = args[:-1] + list(args[-1])
        if name not in SHAPE_FUNCTIONS and any(contains_unknown(a) for a in args):
            return Unknown(f"{name}() of a value known after apply")
        try:
            return function(*args)
        except HclError as error:
            message = str(error)
            raise HclError(message if message.startswith(self.scope.where) else f"{where}: {message}") from None
        except (TypeError, ValueError, KeyError, IndexError, OSError) as exc:
            raise HclError(f"{where}: {name}(): {exc}") from exc

    def lazy_call(self, name: str, arg_nodes: list[Tree[Any]], where: str) -> Any:
        """can() and try(): a value only known after apply makes their result unknown too."""
        if name == "can":
            if len(arg_nodes) != 1:
                raise HclError(f"{where}: can() takes exactly one argument")
            try:
                value = self.eval(arg_nodes[0])
            except HclError:
                return False
            if contains_unknown(value):
                return Unknown("can() of a value known after apply")
            return True
        if not arg_nodes:
            raise HclError(f"{where}: try() needs at least one argument")
        for arg in arg_nodes:
            try:
                value = self.eval(arg)
            except HclError:
                continue
            if contains_unknown(value):
                return Unknown("try() of a value known after apply")
            return value
        raise HclError(f"{where}: no argument of try() could be evaluated")


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def evaluate(node: Any, scope: Scope) -> Any:
    return Evaluator(scope).eval(node)


def canonical_json(value: Any) -> Any:
    """Terraform's jsonencode (see :mod:`scaleorfail.tf.encoding`); Unknown if anything in it is."""
    return json_encode(value)


def render_template(text: str, scope: Scope) -> str | Unknown:
    return render_segments(scan(text), Evaluator(scope))


def templatefile(path: str, variables: Mapping[str, Any], base_scope: Scope) -> str | Unknown:
    """Terraform's templatefile(): only the given variables (and functions) are visible."""
    if not isinstance(variables, Mapping):
        raise HclError(f"templatefile(): the variables must be an object, got {type_name(variables)}")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    scope = Scope(dict(variables), base_scope.functions, where=path)
    return render_template(text, scope)
