"""Check declarations and evaluated arguments against the provider schema reference.

The reference (tests/reference/terraform-provider-schema.json, written by
:mod:`tools.tf.schemagen` from the providers' own schemas) gives, per provider,
resource and data source type: arguments with their type and whether they are
required, nested blocks with their nesting (single or list), and readable attributes.
:func:`body_problems` checks what is written (names, required arguments and blocks);
:func:`value_problems` checks what an instance evaluates to (types Terraform can
convert, at most one instance of a single block, required values not null).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scaleorfail.tf import numbers
from scaleorfail.tf.config import Body
from scaleorfail.tf.expr import Unknown

RESOURCE_META = frozenset({"count", "for_each", "depends_on", "provider"})
META_BLOCKS = frozenset({"lifecycle", "provisioner", "connection"})
PROVIDER_META = frozenset({"alias"})


def load_reference(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _normal(name: str) -> str:
    return name.replace("_", "").lower()


def attribute_known(schema: Mapping[str, Any], name: str) -> bool:
    """Whether an instance of this type has an attribute name (computed ones compared without underscores)."""
    return _normal(name) in {_normal(a) for a in schema.get("attributes", [])} | {"id"}


def body_problems(body: Body, schema: Mapping[str, Any], where: str, *, top: str = "", prefix: str = "") -> list[str]:
    """Unknown arguments and blocks, and missing required ones, in a written block body.

    top is "resource", "data" or "provider" for a top-level body (meta-arguments allowed), "" inside.
    """
    problems: list[str] = []
    arguments: Mapping[str, Any] = schema.get("arguments", {})
    blocks: Mapping[str, Any] = schema.get("blocks", {})
    meta = RESOURCE_META if top in ("resource", "data") else PROVIDER_META if top == "provider" else frozenset()
    for name, attribute in body.attributes.items():
        if name in meta:
            continue
        if name not in arguments:
            hint = " (it is a block: write it as a block)" if name in blocks else ""
            problems.append(f"{attribute.file}:{attribute.line}: {where}: unknown argument {prefix}{name}{hint}")
    present = set(body.attributes)
    for block in body.blocks:
        if top in ("resource", "data") and block.type in META_BLOCKS:
            continue
        if block.type == "dynamic":
            name = block.labels[0]
            contents = block.body.blocks_of("content")
            if len(contents) != 1:
                problems.append(f"{block.where}: {where}: dynamic {prefix}{name} needs exactly one content block")
                continue
            inner = contents[0].body
        else:
            name, inner = block.type, block.body
        present.add(name)
        if name not in blocks:
            hint = " (it is an argument: write name = value)" if name in arguments else ""
            problems.append(f"{block.where}: {where}: unknown block {prefix}{name}{hint}")
            continue
        problems += body_problems(inner, blocks[name], where, prefix=f"{prefix}{name}.")
    for name, spec in [*arguments.items(), *blocks.items()]:
        if spec.get("required") and name not in present:
            problems.append(f"{where}: required {prefix}{name} is missing")
    return problems


def convertible(value: Any, type_spec: Any) -> bool:
    """Whether Terraform can convert value to an attribute of type_spec (null and unknown always can)."""
    if value is None or isinstance(value, Unknown) or type_spec == "any":
        return True
    if type_spec == "string":
        return isinstance(value, (str, bool)) or numbers.is_number(value)
    if type_spec == "number":
        if isinstance(value, str):
            try:
                numbers.parse(value)
            except numbers.NumberError:
                return False
            return True
        return numbers.is_number(value)
    if type_spec == "bool":
        return isinstance(value, bool) or value in ("true", "false")
    kind, element = type_spec
    if kind == "list":
        return isinstance(value, (list, tuple)) and all(convertible(v, element) for v in value)
    if kind == "map":
        return isinstance(value, Mapping) and all(convertible(v, element) for v in value.values())
    if kind == "object":
        return isinstance(value, Mapping) and all(
            convertible(value.get(name), spec["type"]) for name, spec in element.items()
        )
    return False


def _type_text(type_spec: Any) -> str:
    if isinstance(type_spec, str):
        return type_spec
    kind, element = type_spec
    return f"{kind}({_type_text(element) if kind != 'object' else '...'})"


def value_problems(values: Mapping[str, Any], schema: Mapping[str, Any], where: str, prefix: str = "") -> list[str]:
    """Evaluated arguments (nested blocks as lists of dicts, as the evaluator gives them) against the schema."""
    problems: list[str] = []
    arguments: Mapping[str, Any] = schema.get("arguments", {})
    blocks: Mapping[str, Any] = schema.get("blocks", {})
    for name, spec in arguments.items():
        value = values.get(name)
        if spec.get("required") and name in values and value is None:
            problems.append(f"{where}: required argument {prefix}{name} is null")
        if name in values and not convertible(value, spec["type"]):
            problems.append(f"{where}: {prefix}{name} must be a {_type_text(spec['type'])}, got {_describe(value)}")
    for name, spec in blocks.items():
        instances = values.get(name) or []
        if spec.get("nesting") == "single" and len(instances) > 1:
            problems.append(f"{where}: {prefix}{name} takes at most one block, got {len(instances)}")
        if spec.get("required") and not instances:
            problems.append(f"{where}: required block {prefix}{name} has no instance")
        for index, instance in enumerate(instances):
            problems += value_problems(instance, spec, where, f"{prefix}{name}[{index}].")
    return problems


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return f"{type(value).__name__} {text[:60]}"
