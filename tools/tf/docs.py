"""Inputs and outputs tables of each module's README, generated from its .tf files.

terraform-docs is not available from the package registries these machines reach, so
this writes the same two tables between the same markers (``<!-- BEGIN_TF_DOCS -->`` /
``<!-- END_TF_DOCS -->``), leaving the rest of each README to its author. Types and
defaults are shown as written; a variable without a default is required.

    make tf-docs                      # rewrite the tables
    python -m tools.tf.docs --check   # exit 1 when a README is out of date
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from scaleorfail.tf.config import Attribute, ModuleConfig, all_modules

BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"


def _text(attribute: Attribute) -> str:
    meta = attribute.expr.meta
    with open(attribute.file, encoding="utf-8") as handle:
        source = handle.read()
    return re.sub(r"\s+", " ", source[meta.start_pos : meta.end_pos]).strip()


def _literal_string(attribute: Attribute | None) -> str:
    if attribute is None:
        return ""
    text = _text(attribute)
    if text.startswith('"') and text.endswith('"'):
        text = text[1:-1].replace('\\"', '"')
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def tables(config: ModuleConfig) -> str:
    """The generated part of a module's README."""
    lines = [BEGIN, "## Inputs", "", "| Name | Description | Type | Default | Required |", "|---|---|---|---|:-:|"]
    for name in sorted(config.variables):
        attrs = config.variables[name].body.attributes
        type_text = _text(attrs["type"]) if "type" in attrs else "any"
        default = f"`{_cell(_text(attrs['default']))}`" if "default" in attrs else "n/a"
        required = "no" if "default" in attrs else "yes"
        description = _cell(_literal_string(attrs.get("description")))
        lines.append(f"| `{name}` | {description} | `{_cell(type_text)}` | {default} | {required} |")
    lines += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    for name in sorted(config.outputs):
        description = _cell(_literal_string(config.outputs[name].body.attributes.get("description")))
        lines.append(f"| `{name}` | {description} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def rendered(readme: str, config: ModuleConfig) -> str:
    """The README with its generated part replaced (or appended when it has none)."""
    generated = tables(config)
    if BEGIN in readme and END in readme:
        before, rest = readme.split(BEGIN, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        return before + generated + ("\n" + after if after else "")
    return readme.rstrip("\n") + ("\n\n" if readme.strip() else "") + generated


def stale(terraform_dir: Path) -> list[tuple[Path, str]]:
    """(README path, what it should contain) for every module whose README differs."""
    out = []
    for path, config in sorted(all_modules(str(terraform_dir)).items()):
        readme = Path(path) / "README.md"
        current = readme.read_text() if readme.exists() else f"# {os.path.basename(path)}\n"
        wanted = rendered(current, config)
        if not readme.exists() or current != wanted:
            out.append((readme, wanted))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.tf.docs",
        description="Write (or --check) the inputs/outputs tables of terraform/ and its modules' READMEs.",
    )
    parser.add_argument("--terraform", type=Path, default=Path("terraform"), help="the module tree")
    parser.add_argument("--check", action="store_true", help="only report READMEs that are out of date")
    args = parser.parse_args(argv)
    if not args.terraform.is_dir():
        print(f"error: no Terraform module at {args.terraform}\n  fix: run from the repository root", file=sys.stderr)
        return 2
    changes = stale(args.terraform)
    for readme, wanted in changes:
        if args.check:
            print(f"out of date: {readme} (run make tf-docs)")
        else:
            readme.write_text(wanted)
            print(f"wrote {readme}")
    return 1 if args.check and changes else 0


if __name__ == "__main__":
    sys.exit(main())
