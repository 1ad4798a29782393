"""The package's import graph (grimp): one direction, no cycles, the rooms; and the pipeline's names defined once.

The rooms (docs/architecture.md): cli -> commands -> usecases on top; below them deploy,
load (the harness), harvest and evidence; the record (manifest, harvest record, saved
queries) they write and read; the emulator below the whole client side; tools/ outside.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import grimp
import pytest

from scaleorfail import pipeline

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "scaleorfail"
# The base: imported by the emulator and the client side alike, importing nothing of the package.
BASE = {f"{PACKAGE}.errors", f"{PACKAGE}.pipeline", f"{PACKAGE}.stats", f"{PACKAGE}.terminal"}
EMULATOR = f"{PACKAGE}.emulator"
# Top to bottom: each may import what is below it, never what is above.
UPPER = [f"{PACKAGE}.cli", f"{PACKAGE}.commands", f"{PACKAGE}.usecases"]
EVIDENCE = f"{PACKAGE}.evidence"
RECORD = f"{PACKAGE}.record"
HARVEST = f"{PACKAGE}.harvest"
LOAD = f"{PACKAGE}.load"
DEPLOY = f"{PACKAGE}.deploy"
MOTO_EXT = f"{EMULATOR}.moto_ext"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, include_external_packages=False)


def component(module: str) -> str:
    """The top-level module or subpackage of the package a module belongs to."""
    return ".".join(module.split(".")[:2])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), i.e. the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def imports(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def test_no_module_imports_itself_back_through_others(graph: grimp.ImportGraph) -> None:
    assert cycles(imports(graph)) == []


def test_no_two_parts_of_the_package_import_each_other(graph: grimp.ImportGraph) -> None:
    """Subpackages squashed: target <-> deploy, executions <-> load ... would each be a cycle here."""
    edges: dict[str, set[str]] = {}
    for module, targets in imports(graph).items():
        for other in targets:
            if component(module) != component(other) and PACKAGE not in (component(module), component(other)):
                edges.setdefault(component(module), set()).add(component(other))
    assert cycles(edges) == []


def test_the_emulator_imports_nothing_of_the_client_side(graph: grimp.ImportGraph) -> None:
    outside = {
        (module, other)
        for module in graph.find_descendants(EMULATOR)
        for other in graph.find_modules_directly_imported_by(module)
        if not other.startswith(EMULATOR) and other not in BASE
    }
    assert outside == set()


def test_the_graph_tool_is_pinned_as_a_dev_dependency() -> None:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        dev = tomllib.load(handle)["project"]["optional-dependencies"]["dev"]
    assert [d for d in dev if d.startswith("grimp==")] == [f"grimp=={version('grimp')}"]


def test_the_base_modules_import_nothing_of_the_package(graph: grimp.ImportGraph) -> None:
    for module in BASE:
        assert graph.find_modules_directly_imported_by(module) == set(), module


def test_the_layers_import_downwards_only(graph: grimp.ImportGraph) -> None:
    """cli -> commands -> usecases -> the rest: nothing below a layer imports it."""
    for position, layer in enumerate(UPPER):
        above = set(UPPER[: position + 1])
        importers = {
            module
            for module in graph.find_downstream_modules(layer, as_package=True)
            if not any(module == a or module.startswith(a + ".") for a in above)
        }
        assert importers == set(), f"{layer} is imported from below: {sorted(importers)}"


def test_tests_and_benchmarks_use_the_use_cases_not_the_commands() -> None:
    """The commands are argument adapters; what they do is in scaleorfail.usecases."""
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("tests", "bench")
        for path in sorted((ROOT / folder).glob("*.py"))
        if re.search(r"^\s*(from|import) scaleorfail\.commands", path.read_text(), re.M)
    ]
    assert offenders == []


def chain(graph: grimp.ImportGraph, importer: str, imported: str) -> bool:
    return bool(graph.chain_exists(importer=importer, imported=imported, as_packages=True))


def test_the_evidence_reads_the_record(graph: grimp.ImportGraph) -> None:
    """The evidence imports the record and the base, never the harness, the harvest's collectors or the deployment;
    only `sof insights` (evidence.insights) talks to a target."""
    allowed = {*BASE, f"{PACKAGE}.markdown"}
    outside = {
        (module, other)
        for module in graph.find_descendants(EVIDENCE)
        for other in graph.find_modules_directly_imported_by(module)
        if not other.startswith((EVIDENCE, RECORD)) and other not in allowed
    }
    assert outside == {(f"{EVIDENCE}.insights", f"{PACKAGE}.target")}
    for room in (HARVEST, LOAD, DEPLOY):
        assert not chain(graph, EVIDENCE, room), room


def test_the_harvest_reads_the_manifest_not_the_harness(graph: grimp.ImportGraph) -> None:
    assert not chain(graph, HARVEST, LOAD)
    assert not chain(graph, HARVEST, EVIDENCE)


def test_the_record_is_below_its_writers_and_readers(graph: grimp.ImportGraph) -> None:
    for room in (LOAD, HARVEST, EVIDENCE, DEPLOY):
        assert not chain(graph, RECORD, room), room
    for room in (HARVEST, EVIDENCE):
        assert not chain(graph, LOAD, room), room


def test_only_the_emulator_imports_moto() -> None:
    """Every touch of moto is in the emulator's moto extensions (and its server, which runs moto's app)."""
    graph = grimp.build_graph(PACKAGE, include_external_packages=True)
    importers = set(graph.find_modules_that_directly_import("moto"))
    assert {m for m in importers if not m.startswith(MOTO_EXT)} == {f"{EMULATOR}.server"}


def test_nothing_in_the_package_imports_the_build_tools() -> None:
    """tools/ (schema generator, Terraform oracle, README tables) is for tests and make targets, not shipped."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / PACKAGE).rglob("*.py"))
        if re.search(r"^\s*(from|import) tools\b", path.read_text(), re.M)
    ]
    assert offenders == []
    with (ROOT / "pyproject.toml").open("rb") as handle:
        assert tomllib.load(handle)["tool"]["setuptools"]["packages"]["find"]["include"] == [f"{PACKAGE}*"]


def test_no_source_file_is_over_900_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for folder in (PACKAGE, "tools")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > 900
    }
    assert long == {}


def test_the_state_names_and_the_map_limit_are_the_definitions(graph: grimp.ImportGraph) -> None:
    template = (ROOT / "terraform" / "templates" / "pipeline.asl.json.tftpl").read_text()
    declared = set(re.findall(r'^\s*"([A-Za-z]+)": \{\n\s*"Type"', template, re.M))
    named = {
        pipeline.APPLY_DEFAULTS,
        pipeline.DEFAULT_MAX_CONCURRENCY,
        pipeline.PROCESS_TICKETS,
        pipeline.PROCESS_BATCH,
        *pipeline.STEPS,
        pipeline.QUARANTINE,
        pipeline.REJECTED,
    }
    assert named == declared
    assert "never more than 40" in template and pipeline.MAP_LIMIT == 40
    variables = (ROOT / "terraform" / "variables.tf").read_text()
    assert "default_max_concurrency <= 40" in variables.replace("var.", "")
    # defined once in Python: no other module spells the state names or the Map limit as literals
    literal = re.compile(r"""["'](ApplyDefaults|DefaultMaxConcurrency|ProcessTickets|Preprocess|Embed|Postprocess|"""
                         r"""Quarantine)["']|\bINLINE_MAP_CAP = 40|\bMAP_LIMIT = 40""")  # fmt: skip
    spelled = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / PACKAGE).rglob("*.py"))
        if path.name != "pipeline.py" and literal.search(path.read_text())
    ]
    assert spelled == []
