"""Put a module instance evaluated by the project's evaluator next to Terraform's own answer.

For one :class:`~scaleorfail.tf.instance.ModuleInstance` this builds a configuration
Terraform can evaluate without any provider: the module's variable blocks (so Terraform
converts and validates the same input values), its locals - verbatim where they depend
only on variables, other locals and ``path``, and as literals of the evaluator's values
where they read resources, data sources or modules (what a provider would compute) - and
every other expression of the module that depends only on those: outputs, module-call
arguments, resource and data-source arguments, nested blocks included. Each expression is
evaluated by both and the results compared (:mod:`tools.tf.oracle` runs Terraform).

The configuration is written into a mirror of the repository (symlinks), so relative
paths such as ``${path.module}/templates/...`` and ``file()`` read the same files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lark import Token, Tree

from scaleorfail.tf import numbers
from scaleorfail.tf.config import Attribute, Body
from scaleorfail.tf.encoding import json_encode
from scaleorfail.tf.expr import HclError, Scope, Unknown, contains_unknown, evaluate, tokens_removed
from scaleorfail.tf.instance import ModuleInstance
from scaleorfail.tf.template import scan
from tools.tf.oracle import Outcome, Terraform

PURE_ROOTS = frozenset({"var", "local", "path", "terraform"})
UNKNOWN = "terraform_data.sof_unknown.id"
UNKNOWN_RESOURCE = 'resource "terraform_data" "sof_unknown" {}\n'


# -- what an expression refers to -----------------------------------------------------------


def free_names(node: Any, bound: frozenset[str] = frozenset()) -> set[str]:
    """The names an expression reads from its scope (var, local, module, aws_x, each ...)."""
    if isinstance(node, Token) or not isinstance(node, Tree):
        return set()
    kind = node.data
    if kind == "identifier":
        name = str(node.children[0])
        return set() if name in bound else {name}
    if kind in ("get_attr", "keyword"):
        return set()
    if kind == "function_call":
        return {n for child in tokens_removed(node.children)[1:] for n in free_names(child, bound)}
    if kind == "object_elem_key":
        inner = tokens_removed(node.children)
        bare = len(node.children) == 1 and inner and inner[0].data == "expr_term"
        if bare and len(inner[0].children) == 1 and getattr(inner[0].children[0], "data", "") == "identifier":
            return set()  # a bare key is a literal name
        return {n for child in inner for n in free_names(child, bound)}
    if kind in ("for_tuple_expr", "for_object_expr"):
        parts = tokens_removed(node.children)
        intro = parts[0]
        intro_parts = tokens_removed(intro.children)
        names = frozenset(str(p.children[0]) for p in intro_parts if p.data == "identifier")
        collection = [p for p in intro_parts if p.data != "identifier"][-1]
        loop_scope = bound | names
        return free_names(collection, bound) | {n for p in parts[1:] for n in free_names(p, loop_scope)}
    if kind == "string":
        loop_names = frozenset(
            str(i.children[0])
            for sub in node.iter_subtrees()
            if sub.data == "template_for_start"
            for i in tokens_removed(sub.children)
            if i.data == "identifier"
        )
        template_scope = bound | loop_names
        found: set[str] = set()
        for sub in node.iter_subtrees():
            if sub.data in {"interpolation", "template_if_start"}:
                found |= free_names(tokens_removed(sub.children)[0], template_scope)
            elif sub.data == "template_for_start":
                collection = [e for e in tokens_removed(sub.children) if e.data != "identifier"][-1]
                found |= free_names(collection, template_scope)
        return found
    if kind in ("heredoc_template", "heredoc_template_trim"):
        segments = scan(str(node.children[0]).split("\n", 1)[1])
        loop_names = frozenset(n for s in segments if s.kind == "for" for n in s.names)
        return {n for s in segments if s.expr is not None for n in free_names(s.expr, bound | loop_names)}
    return {n for child in node.children for n in free_names(child, bound)}


def is_pure(node: Any, *, root_module: bool) -> bool:
    """Whether Terraform can evaluate the expression without a provider (from vars, locals, path)."""
    allowed = PURE_ROOTS if root_module else PURE_ROOTS - {"path"}
    return free_names(node) <= allowed


# -- HCL text ---------------------------------------------------------------------------------


def source_text(attribute: Attribute) -> str:
    """The expression exactly as written in its file."""
    meta = attribute.expr.meta
    with open(attribute.file, encoding="utf-8") as handle:
        text = handle.read()
    return text[meta.start_pos : meta.end_pos].strip()


def _hcl_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out).replace("${", "$${").replace("%{", "%%{") + '"'


def hcl_literal(value: Any) -> str:
    """A value written as an HCL expression (unknown parts as a value Terraform cannot know yet)."""
    if isinstance(value, Unknown):
        return UNKNOWN
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if numbers.is_number(value):
        return numbers.to_text(numbers.from_python(value))
    if isinstance(value, str):
        return _hcl_string(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_hcl_string(str(k))} = {hcl_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hcl_literal(v) for v in value) + "]"
    raise HclError(f"cannot write a {type(value).__name__} as HCL")


def variable_blocks(instance: ModuleInstance) -> str:
    """Every variable block of the module, verbatim (types, defaults and validations)."""
    out = []
    for block in instance.config.variables.values():
        with open(block.file, encoding="utf-8") as handle:
            text = handle.read()
        out.append(text[block.span[0] : block.span[1]].strip())
    return "\n\n".join(out) + "\n"


# -- the expressions of a module ----------------------------------------------------------------


@dataclass
class Probe:
    """One expression of the module, where it is written, and the evaluator's answer."""

    where: str
    text: str
    ours: Outcome


def _attributes(body: Body, path: str) -> Iterator[tuple[str, Attribute]]:
    for name, attribute in body.attributes.items():
        yield f"{path}.{name}", attribute
    for block in body.blocks:
        label = ".".join([block.type, *block.labels])
        yield from _attributes(block.body, f"{path}.{label}")


def evaluator_outcome(node: Any, scope: Scope) -> Outcome:
    """What the evaluator makes of an expression, in the oracle's terms."""
    try:
        value = evaluate(node, scope)
    except HclError as error:
        return Outcome("error", message=str(error))
    if contains_unknown(value):
        return Outcome("unknown")
    encoded = json_encode(value)
    return Outcome("unknown") if isinstance(encoded, Unknown) else Outcome("value", json=str(encoded))


def probes(instance: ModuleInstance, root_module: bool) -> tuple[dict[str, str], list[Probe]]:
    """(locals the configuration defines, expressions to compare) for one module instance."""
    config = instance.config
    local_values: dict[str, str] = {}
    checks: list[Probe] = []
    for name, attribute in config.locals.items():
        where = f"{os.path.basename(attribute.file)}:{attribute.line}: local.{name}"
        if is_pure(attribute.expr, root_module=root_module):
            local_values[name] = source_text(attribute)
            checks.append(Probe(where, f"local.{name}", evaluator_outcome(attribute.expr, instance.scope)))
        else:
            try:
                local_values[name] = hcl_literal(instance.scope.roots["local"][name])
            except HclError:
                local_values[name] = UNKNOWN
    owners: list[tuple[str, Body]] = [(f"output.{n}", b.body) for n, b in config.outputs.items()]
    owners += [(f"module.{n}", b.body) for n, b in config.modules.items()]
    owners += [(f"{t}.{n}", b.body) for (t, n), b in config.resources.items()]
    owners += [(f"data.{t}.{n}", b.body) for (t, n), b in config.data.items()]
    for owner, body in owners:
        for path, attribute in _attributes(body, owner):
            if not is_pure(attribute.expr, root_module=root_module):
                continue
            where = f"{os.path.basename(attribute.file)}:{attribute.line}: {path}"
            checks.append(Probe(where, source_text(attribute), evaluator_outcome(attribute.expr, instance.scope)))
    return local_values, checks


def variable_values(instance: ModuleInstance) -> str:
    """The instance's input values as a JSON variables file (numbers exact, as Terraform reads them)."""
    encoded = json_encode(instance.variables)
    if isinstance(encoded, Unknown):
        raise HclError(f"{instance.label}: an input is only known after apply, so Terraform cannot be given it")
    return encoded


def mirror(repo_root: Path, terraform_dir: Path, into: Path) -> Path:
    """A directory laid out like the repository (symlinks), with the module's place empty of .tf files."""
    into.mkdir(parents=True, exist_ok=True)
    for entry in repo_root.iterdir():
        if entry.name in (terraform_dir.name, ".git") or (into / entry.name).exists():
            continue
        (into / entry.name).symlink_to(entry)
    work = into / terraform_dir.name
    work.mkdir(exist_ok=True)
    for entry in terraform_dir.iterdir():
        if entry.suffix == ".tf" or entry.name.startswith(".terraform") or (work / entry.name).exists():
            continue
        (work / entry.name).symlink_to(entry)
    return work


@dataclass
class Difference:
    where: str
    text: str
    terraform: Outcome
    ours: Outcome

    def __str__(self) -> str:
        def show(o: Outcome) -> str:
            return o.json[:300] if o.kind == "value" else f"<{o.kind}> {o.message[:300]}"

        return (
            f"{self.where}: {self.text[:120]}\n    terraform: {show(self.terraform)}\n    evaluator: {show(self.ours)}"
        )


def agree(terraform: Outcome, ours: Outcome) -> bool:
    if terraform.kind != ours.kind:
        return False
    return terraform.kind != "value" or terraform.json == ours.json


def compare_instance(
    terraform: Terraform, workdir: Path, instance: ModuleInstance, *, root_module: bool
) -> tuple[int, list[Difference]]:
    """(expressions compared, the ones Terraform and the evaluator disagree on) for one instance."""
    local_values, checks = probes(instance, root_module)
    preamble = [UNKNOWN_RESOURCE, variable_blocks(instance), "locals {"]
    preamble += [f"  {name} = {text}" for name, text in local_values.items()]
    preamble.append("}")
    expressions = {f"p{i}": probe.text for i, probe in enumerate(checks)}
    result = terraform.evaluate(workdir, expressions, preamble="\n".join(preamble), variables=variable_values(instance))
    if result.variable_errors:  # the evaluator accepted these inputs (it evaluated the module), Terraform did not
        rejected = Outcome("error", message="; ".join(result.variable_errors))
        return len(checks), [Difference(instance.label, "the input variables", rejected, Outcome("value", json="{}"))]
    differences = [
        Difference(probe.where, probe.text, result.outcomes[key], probe.ours)
        for key, probe in zip(expressions, checks, strict=True)
        if not agree(result.outcomes[key], probe.ours)
    ]
    return len(checks), differences


def module_instances(root: ModuleInstance) -> Iterator[ModuleInstance]:
    """The root module and every child module instance, depth first."""
    yield root
    for name in root.config.modules:
        children = root.children(name)
        if isinstance(children, dict):
            children = list(children.values())
        for child in children if isinstance(children, list) else [children]:
            yield from module_instances(child)
