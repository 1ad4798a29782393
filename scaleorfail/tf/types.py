"""Terraform type constraints (``type = object({...})`` ...) and value conversion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scaleorfail.tf.values import (
    HclError,
    Unknown,
    boolean,
    number,
    to_string,
    type_name,
)


@dataclass(frozen=True)
class TypeSpec:
    kind: str  # string | number | bool | any | list | set | map | object | tuple
    element: TypeSpec | None = None
    attributes: dict[str, Attr] = field(default_factory=dict)
    elements: tuple[TypeSpec, ...] = ()

    def __str__(self) -> str:
        if self.kind in ("list", "set", "map"):
            return f"{self.kind}({self.element})"
        if self.kind == "object":
            return "object({" + ", ".join(f"{k}={a.spec}" for k, a in self.attributes.items()) + "})"
        if self.kind == "tuple":
            return "tuple([" + ", ".join(str(e) for e in self.elements) + "])"
        return self.kind


@dataclass(frozen=True)
class Attr:
    spec: TypeSpec
    optional: bool = False
    default: Any = None


ANY = TypeSpec("any")
PRIMITIVES = ("string", "number", "bool", "any")


def convert(value: Any, spec: TypeSpec, where: str) -> Any:
    """Convert a value to a type the way Terraform converts variable values."""
    if value is None or isinstance(value, Unknown) or spec.kind == "any":
        return value
    if spec.kind == "string":
        if isinstance(value, (Mapping, list, tuple)):
            raise HclError(f"{where}: a string is required, got {type_name(value)}")
        return to_string(value, where)
    if spec.kind == "number":
        return number(value, where)
    if spec.kind == "bool":
        return boolean(value, where)
    if spec.kind in ("list", "set"):
        if not isinstance(value, (list, tuple)):
            raise HclError(f"{where}: a {spec.kind} is required, got {type_name(value)}")
        assert spec.element is not None
        items = [convert(v, spec.element, f"{where}[{i}]") for i, v in enumerate(value)]
        if spec.kind == "set":
            unique: list[Any] = []
            for item in items:
                if item not in unique:
                    unique.append(item)
            return unique
        return items
    if spec.kind == "tuple":
        if not isinstance(value, (list, tuple)) or len(value) != len(spec.elements):
            raise HclError(f"{where}: a tuple of {len(spec.elements)} elements is required")
        return [convert(v, s, f"{where}[{i}]") for i, (v, s) in enumerate(zip(value, spec.elements, strict=True))]
    if not isinstance(value, Mapping):
        raise HclError(f"{where}: a {spec.kind} is required, got {type_name(value)}")
    if spec.kind == "map":
        assert spec.element is not None
        return {str(k): convert(v, spec.element, f"{where}.{k}") for k, v in value.items()}
    out: dict[str, Any] = {}
    for name, attr in spec.attributes.items():
        if name in value and value[name] is not None:
            out[name] = convert(value[name], attr.spec, f"{where}.{name}")
        elif attr.optional:
            out[name] = attr.default
        elif name in value:
            out[name] = None
        else:
            raise HclError(f"{where}: attribute {name!r} is required")
    return out


# -- type unification (what Terraform does to the results of a conditional, tolist(), tomap() ...) ----


def type_of(value: Any) -> TypeSpec:
    """The structural type of a value; null and unknown values have the dynamic type."""
    if value is None or isinstance(value, Unknown):
        return ANY
    if isinstance(value, bool):
        return TypeSpec("bool")
    if isinstance(value, str):
        return TypeSpec("string")
    if isinstance(value, (list, tuple)):
        return TypeSpec("tuple", elements=tuple(type_of(v) for v in value))
    if isinstance(value, Mapping):
        return TypeSpec("object", attributes={str(k): Attr(type_of(v)) for k, v in value.items()})
    return TypeSpec("number")


def unify(types: list[TypeSpec]) -> TypeSpec | None:
    """The type every one of types converts to, as cty's unify does; None when there is none."""
    known = [t for t in types if t.kind != "any"]
    if not known:
        return ANY
    first = known[0]
    if all(t == first for t in known):
        return first
    kinds = {t.kind for t in known}
    if kinds <= {"string", "number", "bool"}:
        return TypeSpec("string")
    if kinds <= {"tuple", "list", "set"}:
        tuples = [t for t in known if t.kind == "tuple"]
        if len(tuples) == len(known) and len({len(t.elements) for t in tuples}) == 1:
            columns = [unify([t.elements[i] for t in tuples]) for i in range(len(tuples[0].elements))]
            if all(c is not None for c in columns):
                return TypeSpec("tuple", elements=tuple(c for c in columns if c is not None))
        element = unify([e for t in known for e in _element_types(t)])
        return None if element is None else TypeSpec("list", element=element)
    if kinds <= {"object", "map"}:
        objects = [t for t in known if t.kind == "object"]
        if len(objects) == len(known) and len({tuple(sorted(t.attributes)) for t in objects}) == 1:
            names = sorted(objects[0].attributes)
            attrs = {n: unify([t.attributes[n].spec for t in objects]) for n in names}
            if all(a is not None for a in attrs.values()):
                return TypeSpec("object", attributes={n: Attr(a) for n, a in attrs.items() if a is not None})
        element = unify([e for t in known for e in _element_types(t)])
        return None if element is None else TypeSpec("map", element=element)
    return None


def _element_types(spec: TypeSpec) -> list[TypeSpec]:
    if spec.kind == "tuple":
        return list(spec.elements)
    if spec.kind == "object":
        return [a.spec for a in spec.attributes.values()]
    return [spec.element] if spec.element is not None else []


def unify_values(values: list[Any], where: str) -> list[Any] | None:
    """The values converted to their unified type; None when they have none."""
    spec = unify([type_of(v) for v in values])
    if spec is None:
        return None
    return [convert(v, spec, where) for v in values]


def collection_of(values: list[Any], kind: str, fn: str) -> list[Any]:
    """tolist/toset/tomap: every element converted to one element type, or a clear error."""
    element = unify([type_of(v) for v in values])
    if element is None:
        raise HclError(f"{fn}(): the elements have no common type, so they cannot be made a {kind}")
    return [convert(v, element, fn + "()") for v in values]
