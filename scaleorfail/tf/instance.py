"""Evaluate a Terraform module tree the way ``terraform plan`` would, without providers.

A :class:`ModuleInstance` binds a module's variables (type conversion, defaults,
validation rules), evaluates locals, module calls, resources and data sources on
demand, and lists every resource instance with its evaluated arguments. What a
provider would compute (ARNs, data-source results) comes from a
:class:`ResourceModel`, so the same evaluation serves static tests (fake values) and
the local deployment (the emulator's values).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from scaleorfail.tf.config import (
    META_ARGUMENTS,
    RESOURCE_META_ARGUMENTS,
    Block,
    Body,
    ModuleConfig,
    all_modules,
    module_source_dir,
    parse_file,
)
from scaleorfail.tf.expr import (
    HclError,
    LazyMapping,
    Scope,
    boolean,
    evaluate,
    iteration_pairs,
    plain,
    to_string,
    tokens_removed,
    type_name,
)
from scaleorfail.tf.functions import PURE_FUNCTIONS, functions_for
from scaleorfail.tf.typeexpr import parse_type
from scaleorfail.tf.types import ANY, convert

SKIPPED_BLOCKS = frozenset({"lifecycle", "provisioner", "connection", "precondition", "postcondition"})


class ResourceModel(Protocol):
    """What a provider computes for a resource or data instance."""

    def computed(self, mode: str, rtype: str, address: str, args: dict[str, Any]) -> dict[str, Any]:
        """Attributes (beyond the arguments) of one instance, e.g. its ARN."""
        ...


@dataclass
class ResourceInstance:
    """One instance; args and attrs hold Python numbers (int/float), values Terraform's exact ones."""

    address: str
    mode: str  # "managed" or "data"
    type: str
    name: str
    key: Any
    args: dict[str, Any]
    attrs: dict[str, Any]
    block: Block
    module: ModuleInstance
    values: dict[str, Any]


class ModuleInstance:
    def __init__(
        self,
        config: ModuleConfig,
        inputs: Mapping[str, Any],
        model: ResourceModel,
        *,
        root_dir: str,
        address: str = "",
        configs: dict[str, ModuleConfig] | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.root_dir = root_dir
        self.address = address
        self.configs = configs if configs is not None else all_modules(root_dir)
        module_path = os.path.relpath(config.path, root_dir)
        self.functions = functions_for(root_dir, lambda: self.scope)
        self.path = {"module": module_path, "root": ".", "cwd": "."}
        self.scope = Scope({}, self.functions, where=address or "root module")
        self.variables = self._bind_variables(dict(inputs))
        self._instances: dict[tuple[str, str, str], Any] = {}
        self._children: dict[str, Any] = {}
        roots: dict[str, Any] = {
            "var": self.variables,
            "local": LazyMapping(list(config.locals), self._local, "local"),
            "module": LazyMapping(list(config.modules), self._module_value, "module"),
            "data": {
                rtype: LazyMapping(names, functools.partial(self._value, "data", rtype), f"data.{rtype}")
                for rtype, names in _names_by_type(config.data).items()
            },
            "path": self.path,
            "terraform": {"workspace": "default"},
        }
        for rtype, names in _names_by_type(config.resources).items():
            roots[rtype] = LazyMapping(names, functools.partial(self._value, "managed", rtype), rtype)
        self.scope.roots.update(roots)

    # -- variables ------------------------------------------------------------------

    def _bind_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(inputs) - set(self.config.variables))
        if unknown:
            raise HclError(f"{self.label}: no variable named {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, block in self.config.variables.items():
            attrs = block.body.attributes
            spec = parse_type(attrs["type"].expr, self.scope) if "type" in attrs else ANY
            where = f"variable {name!r}"
            if name in inputs:
                value = convert(inputs[name], spec, where)
            elif "default" in attrs:
                value = convert(evaluate(attrs["default"].expr, self.scope), spec, where)
            else:
                raise HclError(f"{self.label}: variable {name!r} is required (it has no default)")
            if value is None and "nullable" in attrs and not evaluate(attrs["nullable"].expr, self.scope):
                raise HclError(f"{self.label}: variable {name!r} must not be null")
            values[name] = value
        check_scope = self.scope.child(var=values)
        for name, block in self.config.variables.items():
            for rule in block.body.blocks_of("validation"):
                ok = evaluate(rule.body.attributes["condition"].expr, check_scope)
                if not boolean(ok, rule.where):
                    message = evaluate(rule.body.attributes["error_message"].expr, check_scope)
                    raise HclError(f"invalid value for variable {name!r} ({block.where}): {message}")
        return values

    @property
    def label(self) -> str:
        return self.address or "root module"

    # -- locals, modules ------------------------------------------------------------

    def _local(self, name: str) -> Any:
        return evaluate(self.config.locals[name].expr, self.scope)

    def _module_value(self, name: str) -> Any:
        children = self.children(name)
        if isinstance(children, dict):
            return {key: child.output_values() for key, child in children.items()}
        if isinstance(children, list):
            return [child.output_values() for child in children]
        return children.output_values()

    def children(self, name: str) -> Any:
        """The instance(s) of a module call: one, or a dict by for_each key / count index."""
        if name not in self._children:
            block = self.config.modules[name]
            config = self.configs[module_source_dir(self.config, block)]

            def make(key: Any, scope: Scope) -> ModuleInstance:
                inputs = {
                    n: evaluate(a.expr, scope) for n, a in block.body.attributes.items() if n not in META_ARGUMENTS
                }
                suffix = "" if key is None else f"[{_key_text(key)}]"
                address = f"{self.address + '.' if self.address else ''}module.{name}{suffix}"
                return ModuleInstance(
                    config, inputs, self.model, root_dir=self.root_dir, address=address, configs=self.configs
                )

            self._children[name] = self._expand(block, make)
        return self._children[name]

    def _expand(self, block: Block, make: Any) -> Any:
        attrs = block.body.attributes
        if "for_each" in attrs:
            collection = evaluate(attrs["for_each"].expr, self.scope)
            pairs = _for_each_pairs(collection, block.where)
            return {key: make(key, self.scope.child(each={"key": key, "value": value})) for key, value in pairs}
        if "count" in attrs:
            count = evaluate(attrs["count"].expr, self.scope)
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise HclError(f"{block.where}: count must be a whole number, got {count!r}")
            return [make(index, self.scope.child(count={"index": index})) for index in range(count)]
        return make(None, self.scope)

    def output_values(self) -> dict[str, Any]:
        """The outputs with Terraform's exact values (what a parent module sees)."""
        return {
            name: evaluate(block.body.attributes["value"].expr, self.scope)
            for name, block in self.config.outputs.items()
        }

    def outputs(self) -> dict[str, Any]:
        """The outputs with Python numbers (what `terraform output -json` would give)."""
        return dict(plain(self.output_values()))

    # -- resources and data sources -------------------------------------------------

    def _value(self, mode: str, rtype: str, name: str) -> Any:
        instances = self.resource(mode, rtype, name)
        if isinstance(instances, dict):
            return {key: inst.values for key, inst in instances.items()}
        if isinstance(instances, list):
            return [inst.values for inst in instances]
        return instances.values

    def resource(self, mode: str, rtype: str, name: str) -> Any:
        key = (mode, rtype, name)
        if key not in self._instances:
            table = self.config.resources if mode == "managed" else self.config.data
            block = table[(rtype, name)]
            prefix = "" if mode == "managed" else "data."
            base = f"{self.address + '.' if self.address else ''}{prefix}{rtype}.{name}"

            def make(index: Any, scope: Scope) -> ResourceInstance:
                address = base if index is None else f"{base}[{_key_text(index)}]"
                values = evaluate_body(block.body, scope)
                args = plain(values)
                computed = self.model.computed(mode, rtype, address, args)
                values = {**values, **computed}
                attrs = {**args, **plain(computed)}
                return ResourceInstance(address, mode, rtype, name, index, args, attrs, block, self, values)

            self._instances[key] = self._expand(block, make)
        return self._instances[key]

    def instances(self) -> Iterator[ResourceInstance]:
        """Every resource and data instance of this module and its children."""
        for mode, table in (("data", self.config.data), ("managed", self.config.resources)):
            for rtype, name in table:
                yield from _flatten(self.resource(mode, rtype, name))
        for name in self.config.modules:
            for child in _flatten(self.children(name)):
                yield from child.instances()


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value
    return [value]


def _names_by_type(table: Mapping[tuple[str, str], Block]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rtype, name in table:
        out.setdefault(rtype, []).append(name)
    return out


def _for_each_pairs(collection: Any, where: str) -> list[tuple[str, Any]]:
    if isinstance(collection, Mapping):
        return [(str(k), collection[k]) for k in sorted(collection)]
    if isinstance(collection, (list, tuple)):
        if not all(isinstance(item, str) for item in collection):
            raise HclError(f"{where}: for_each over a set needs strings")
        return [(item, item) for item in sorted(set(collection))]
    raise HclError(f"{where}: for_each needs a map or a set of strings, got {type_name(collection)}")


def _key_text(key: Any) -> str:
    return f'"{key}"' if isinstance(key, str) else str(key)


def evaluate_body(body: Body, scope: Scope) -> dict[str, Any]:
    """Arguments and nested blocks (``dynamic`` ones expanded) as plain values.

    Nested blocks become lists of dicts under the block type, as in Terraform's JSON plan.
    """
    out: dict[str, Any] = {}
    for name, attribute in body.attributes.items():
        if name in RESOURCE_META_ARGUMENTS:
            continue
        out[name] = evaluate(attribute.expr, scope)
    for block in body.blocks:
        if block.type in SKIPPED_BLOCKS:
            continue
        if block.type != "dynamic":
            out.setdefault(block.type, []).append(evaluate_body(block.body, scope))
            continue
        label = block.labels[0]
        attrs = block.body.attributes
        iterator = label
        if "iterator" in attrs:
            iterator = to_string(_bare_name(attrs["iterator"].expr), block.where)
        collection = evaluate(attrs["for_each"].expr, scope)
        items = iteration_pairs(collection)
        if items is None:
            raise HclError(f"{block.where}: dynamic {label!r} needs a list or map for for_each")
        content = block.body.blocks_of("content")
        if len(content) != 1:
            raise HclError(f"{block.where}: dynamic {label!r} needs exactly one content block")
        for key, value in items:
            body_value = evaluate_body(content[0].body, scope.child(**{iterator: {"key": key, "value": value}}))
            out.setdefault(label, []).append(body_value)
    return out


def _bare_name(expr: Any) -> str:
    node = expr
    while getattr(node, "data", None) == "expr_term":
        node = tokens_removed(node.children)[0]
    if getattr(node, "data", None) != "identifier":
        raise HclError("iterator must be a bare name")
    return str(node.children[0])


def load_tfvars(path: str) -> dict[str, Any]:
    """Values from a .tfvars file (HCL; only literal expressions and functions)."""
    if not os.path.isfile(path):
        raise HclError(f"no tfvars file at {path}")
    body = parse_file(os.path.abspath(path))
    if body.blocks:
        raise HclError(f"{path}: a tfvars file holds only name = value lines, found a {body.blocks[0].type} block")
    scope = Scope({}, PURE_FUNCTIONS, where=path)
    return {name: evaluate(attribute.expr, scope) for name, attribute in body.attributes.items()}


def root_instance(root_dir: str, model: ResourceModel, variables: Mapping[str, Any] | None = None) -> ModuleInstance:
    root = os.path.abspath(root_dir)
    configs = all_modules(root)
    return ModuleInstance(configs[root], dict(variables or {}), model, root_dir=root, configs=configs)
