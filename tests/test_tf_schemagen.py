"""The provider-schema generator (`make tf-schema`, tools/tf/schemagen.py), on a small assembly of the
same shape as the cdktn provider wheels it reads: arguments, blocks, provenance, and the error for a
type no assembly describes. The schema it writes is what tests/test_terraform_static.py checks terraform/ against.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tools.tf import schema as provider_schema

# -- the schema generator, on a small assembly of the same shape as cdktn's ------------------------------------


def _fake_wheel(path: Path, *, redirect: bool) -> Path:
    import gzip
    import io
    import tarfile
    import zipfile

    link = "https://registry.terraform.io/providers/hashicorp/demo/1.2.3/docs/resources/thing"
    assembly = {
        "name": "@cdktn/provider-demo",
        "types": {
            "demo.Thing": {
                "kind": "class",
                "docs": {"summary": f"Represents a {{@link {link} demo_thing}}."},
                "initializer": {"parameters": [{"name": "config", "type": {"fqn": "demo.ThingConfig"}}]},
                "properties": [
                    {"name": "tfResourceType", "static": True, "type": {"primitive": "string"}},
                    {"name": "arn", "type": {"primitive": "string"}},
                    {"name": "outputBase64Sha256", "type": {"primitive": "string"}},
                    {"name": "sizeInput", "type": {"primitive": "number"}},
                ],
            },
            "demo.ThingConfig": {
                "kind": "interface",
                "properties": [
                    {
                        "name": "size",
                        "docs": {"summary": f"Docs at Terraform Registry: {{@link {link}#size Thing#size}}."},
                        "type": {"primitive": "number"},
                    },
                    {
                        "name": "enabled",
                        "optional": True,
                        "docs": {"summary": f"Docs at Terraform Registry: {{@link {link}#enabled Thing#enabled}}."},
                        "type": {"union": {"types": [{"primitive": "boolean"}, {"fqn": "cdktn.IResolvable"}]}},
                    },
                    {
                        "name": "rule",
                        "optional": True,
                        "docs": {"summary": "rule block."},
                        "type": {
                            "union": {
                                "types": [
                                    {"fqn": "cdktn.IResolvable"},
                                    {"collection": {"kind": "array", "elementtype": {"fqn": "demo.Rule"}}},
                                ]
                            }
                        },
                    },
                ],
            },
            "demo.Rule": {
                "kind": "interface",
                "properties": [
                    {
                        "name": "tags",
                        "docs": {"summary": f"Docs at Terraform Registry: {{@link {link}#tags Thing#tags}}."},
                        "type": {"collection": {"kind": "map", "elementtype": {"primitive": "string"}}},
                    }
                ],
            },
        },
    }
    text = json.dumps(assembly).encode()
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w:gz") as tar:
        members = {"package/.jsii": text}
        if redirect:
            members = {
                "package/.jsii": json.dumps(
                    {"schema": "jsii/file-redirect", "compression": "gzip", "filename": ".jsii.gz"}
                ).encode(),
                "package/.jsii.gz": gzip.compress(text),
            }
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    wheel = path / "cdktn_provider_demo-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("cdktn_provider_demo/_jsii/provider-demo@9.9.9.jsii.tgz", tarball.getvalue())
        archive.writestr(
            "cdktn_provider_demo-9.9.9.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: cdktn-provider-demo\nVersion: 9.9.9\n",
        )
    return wheel


@pytest.mark.parametrize("redirect", [False, True], ids=["plain", "gzip-redirect"])
def test_the_schema_generator_reads_arguments_blocks_and_provenance(tmp_path: Path, redirect: bool) -> None:
    from tools.tf.schemagen import generate

    wheel = _fake_wheel(tmp_path, redirect=redirect)
    module = tmp_path / "tf"
    module.mkdir()
    (module / "main.tf").write_text('resource "demo_thing" "this" {\n  size = 1\n}\n')
    document = generate([wheel], module)
    thing = document["resource"]["demo_thing"]
    assert thing["arguments"] == {
        "enabled": {"type": "bool", "required": False},
        "size": {"type": "number", "required": True},
    }
    assert thing["blocks"]["rule"]["nesting"] == "list"
    assert thing["blocks"]["rule"]["arguments"]["tags"] == {"type": ["map", "string"], "required": True}
    assert provider_schema.attribute_known(thing, "output_base64sha256") and provider_schema.attribute_known(
        thing, "arn"
    )
    (source,) = document["_provenance"]["sources"]
    assert (source["package"], source["version"], source["provider"], source["provider_version"]) == (
        "cdktn-provider-demo",
        "9.9.9",
        "hashicorp/demo",
        "1.2.3",
    )
    assert source["wheel_sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_the_schema_generator_names_a_type_no_assembly_describes(tmp_path: Path) -> None:
    from scaleorfail.errors import UserError
    from tools.tf.schemagen import generate

    wheel = _fake_wheel(tmp_path, redirect=False)
    (tmp_path / "main.tf").write_text('resource "demo_other" "this" {}\n')
    with pytest.raises(UserError, match="no assembly describes resource demo_other"):
        generate([wheel], tmp_path)
