"""Terraform type constraint expressions (``type = object({ a = optional(string, "x") })``) as TypeSpecs.

Apart from types.py because an ``optional()`` default is an expression: reading one needs
the evaluator (expr.py), which itself converts values with types.py.
"""

from __future__ import annotations

from typing import Any

from lark import Tree

from scaleorfail.tf.expr import evaluate
from scaleorfail.tf.types import ANY, PRIMITIVES, Attr, TypeSpec, convert
from scaleorfail.tf.values import HclError, Scope, tokens_removed

__all__ = ["ANY", "parse_type"]


def parse_type(node: Tree[Any], scope: Scope) -> TypeSpec:
    """Turn a type-constraint expression tree into a TypeSpec."""
    if node.data == "expr_term":
        return parse_type(tokens_removed(node.children)[0], scope)
    if node.data == "identifier":
        name = str(node.children[0])
        if name in PRIMITIVES:
            return TypeSpec(name)
        raise HclError(f"unknown type {name!r}")
    if node.data == "function_call":
        parts = tokens_removed(node.children)
        name = str(parts[0].children[0])
        args = tokens_removed(parts[1].children) if len(parts) > 1 else []
        if name in ("list", "set", "map"):
            return TypeSpec(name, element=parse_type(args[0], scope))
        if name == "object":
            return TypeSpec("object", attributes=_object_attrs(args[0], scope))
        if name == "tuple":
            inner = tokens_removed(args[0].children)[0]
            return TypeSpec("tuple", elements=tuple(parse_type(e, scope) for e in tokens_removed(inner.children)))
        raise HclError(f"unknown type constructor {name}()")
    raise HclError(f"cannot read a type from a {node.data}")


def _object_attrs(node: Tree[Any], scope: Scope) -> dict[str, Attr]:
    obj = tokens_removed(node.children)[0] if node.data == "expr_term" else node
    attrs: dict[str, Attr] = {}
    for elem in tokens_removed(obj.children):
        key_node, type_node = tokens_removed(elem.children)
        key = str(tokens_removed(tokens_removed(key_node.children)[0].children)[0].children[0])
        attrs[key] = _attr(type_node, scope)
    return attrs


def _attr(node: Tree[Any], scope: Scope) -> Attr:
    inner = tokens_removed(node.children)[0] if node.data == "expr_term" else node
    if inner.data == "function_call":
        parts = tokens_removed(inner.children)
        if str(parts[0].children[0]) == "optional":
            args = tokens_removed(parts[1].children)
            spec = parse_type(args[0], scope)
            default = convert(evaluate(args[1], scope), spec, "optional() default") if len(args) > 1 else None
            return Attr(spec, optional=True, default=default)
    return Attr(parse_type(node, scope))
