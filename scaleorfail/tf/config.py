"""Read a Terraform module directory into blocks and attribute expressions.

Every ``.tf`` file is parsed with python-hcl2 (its lark tree, so expressions keep their
structure for :mod:`scaleorfail.tf.expr`). Nothing is evaluated here.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import hcl2
from lark import Token, Tree

from scaleorfail.tf.expr import HclError, tokens_removed

# Meta-arguments: of a resource, and of a module call (whose `source` is one; a resource's is an argument)
RESOURCE_META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "provider", "lifecycle"})
META_ARGUMENTS = RESOURCE_META_ARGUMENTS | {"providers", "source"}


@dataclass
class Attribute:
    name: str
    expr: Tree[Any]
    file: str
    line: int


@dataclass
class Block:
    type: str
    labels: list[str]
    body: Body
    file: str
    line: int
    span: tuple[int, int] = (0, 0)  # character offsets of the whole block in its file

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Body:
    attributes: dict[str, Attribute] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def blocks_of(self, block_type: str) -> list[Block]:
        return [b for b in self.blocks if b.type == block_type]


@dataclass
class ModuleConfig:
    """The declarations of one module directory."""

    path: str
    files: list[str]
    variables: dict[str, Block] = field(default_factory=dict)
    locals: dict[str, Attribute] = field(default_factory=dict)
    outputs: dict[str, Block] = field(default_factory=dict)
    resources: dict[tuple[str, str], Block] = field(default_factory=dict)
    data: dict[tuple[str, str], Block] = field(default_factory=dict)
    modules: dict[str, Block] = field(default_factory=dict)
    providers: list[Block] = field(default_factory=list)
    terraform: list[Block] = field(default_factory=list)


def _name(node: Any) -> str:
    if isinstance(node, Token):
        return str(node.value)
    if node.data == "string":
        return "".join(
            str(part.children[0]) for part in node.children if isinstance(part, Tree) and part.data == "string_part"
        )
    if node.data in ("identifier", "keyword", "literal_value"):
        return str(node.children[0])
    raise HclError(f"unexpected label node {node.data}")


def read_body(tree: Tree[Any], file: str) -> Body:
    body = Body()
    for child in tokens_removed(tree.children):
        if child.data == "attribute":
            parts = tokens_removed(child.children)
            name = _name(parts[0])
            if name in body.attributes:
                raise HclError(f"{file}:{child.meta.line}: attribute {name!r} is set twice")
            body.attributes[name] = Attribute(name, parts[-1], file, child.meta.line)
        elif child.data == "block":
            parts = tokens_removed(child.children)
            inner = next(p for p in parts if p.data == "body")
            labels = [_name(p) for p in parts if p is not inner]
            span = (child.meta.start_pos, child.meta.end_pos)
            body.blocks.append(Block(labels[0], labels[1:], read_body(inner, file), file, child.meta.line, span))
    return body


def parse_file(path: str) -> Body:
    """The file's blocks and attributes (parsed once per version of the file)."""
    stat = os.stat(path)
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=128)
def _parse(path: str, mtime_ns: int, size: int) -> Body:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = hcl2.parses_to_tree(text)
    except Exception as exc:  # lark's exceptions carry the position
        raise HclError(f"{path}: cannot parse: {str(exc).splitlines()[0]}") from None
    return read_body(tree.children[0], path)


def load_module(path: str) -> ModuleConfig:
    """Parse every .tf file of a module directory (not its children)."""
    if not os.path.isdir(path):
        raise HclError(f"no Terraform module at {path}")
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".tf"))
    if not files:
        raise HclError(f"{path} has no .tf files")
    config = ModuleConfig(path=path, files=files)
    for file in files:
        for block in parse_file(file).blocks:
            _add(config, block)
    return config


def _add(config: ModuleConfig, block: Block) -> None:
    kind, labels = block.type, block.labels
    if kind == "variable":
        config.variables[labels[0]] = block
    elif kind == "locals":
        for name, attribute in block.body.attributes.items():
            if name in config.locals:
                raise HclError(f"{block.where}: local.{name} is defined twice")
            config.locals[name] = attribute
    elif kind == "output":
        config.outputs[labels[0]] = block
    elif kind == "resource":
        config.resources[(labels[0], labels[1])] = block
    elif kind == "data":
        config.data[(labels[0], labels[1])] = block
    elif kind == "module":
        config.modules[labels[0]] = block
    elif kind == "provider":
        config.providers.append(block)
    elif kind == "terraform":
        config.terraform.append(block)
    else:
        raise HclError(f"{block.where}: unknown top-level block {kind!r}")


def module_source_dir(parent: ModuleConfig, block: Block) -> str:
    source_attr = block.body.attributes.get("source")
    if source_attr is None:
        raise HclError(f"{block.where}: module {block.labels[0]!r} has no source")
    source = _literal_string(source_attr.expr)
    if not source.startswith(("./", "../")):
        raise HclError(f"{block.where}: only local module sources are supported, got {source!r}")
    return os.path.normpath(os.path.join(parent.path, source))


def _literal_string(expr: Tree[Any]) -> str:
    node = expr
    while node.data == "expr_term":
        node = tokens_removed(node.children)[0]
    if node.data != "string":
        raise HclError("expected a literal string")
    return _name(node)


def all_modules(root: str) -> dict[str, ModuleConfig]:
    """The root module and every local module it calls, recursively, by directory."""
    found: dict[str, ModuleConfig] = {}

    def visit(path: str) -> None:
        path = os.path.normpath(path)
        if path in found:
            return
        config = load_module(path)
        found[path] = config
        for block in config.modules.values():
            visit(module_source_dir(config, block))

    visit(root)
    return found
