"""The emulator's moto extensions: every declared target exists in the pinned moto and is patched exactly once.

A moto upgrade is this file's checklist: a target that moved or vanished, a method moto
now has that we add, a patch made twice or without a declaration - each fails here.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections import Counter
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import moto
import pytest
import waiting
from hypothesis import given
from hypothesis import strategies as st

from scaleorfail.emulator import moto_ext
from scaleorfail.emulator.moto_ext import core
from scaleorfail.emulator.moto_ext.stepfunctions import copies
from scaleorfail.emulator.moto_ext.stepfunctions.interpreter import ProgramTemplates

ROOT = Path(__file__).resolve().parent.parent


def declared() -> list[core.Target]:
    return [t for targets in core.INSTALLERS.values() for t in targets] + [t for t, _ in core.OVERRIDES]


def present(owner: object, name: str) -> bool:
    return name in owner if isinstance(owner, MutableMapping) else hasattr(owner, name)


def test_the_extensions_are_written_for_the_installed_moto() -> None:
    assert moto.__version__ == moto_ext.MOTO_VERSION


@pytest.mark.parametrize("target", declared(), ids=lambda t: t.path)
def test_each_declared_target_exists_in_the_pinned_moto(target: core.Target) -> None:
    """What a patch replaces is there; what it adds is not (yet): a moto that grew it needs a look."""
    assert target.path.startswith("moto."), target.path
    assert target.why.strip(), f"{target.path}: no reason given"
    owner, name = core.locate(target.path)
    if target.adds:
        assert not present(owner, name), f"{target.path} now exists in moto: override it knowingly (adds=False)"
    else:
        assert present(owner, name), f"{target.path} is not in moto {moto.__version__}"


def test_no_target_is_declared_twice() -> None:
    twice = {path: n for path, n in Counter(t.path for t in declared()).items() if n > 1}
    assert twice == {}


def test_every_method_of_our_response_subclasses_is_a_declared_override() -> None:
    """Each override is a method of exactly one of our subclasses of the class it names, and the reverse."""
    overrides = {t.path: method for t, method in core.OVERRIDES}
    found: dict[str, object] = {}
    for path in overrides:
        base, _ = core.locate(path)
        ours = [c for c in base.__subclasses__() if c.__module__.startswith("scaleorfail.")]
        assert len(ours) == 1, f"{path}: {ours}"
        for attribute, value in vars(ours[0]).items():
            if callable(value) and not attribute.startswith("__"):
                found[core.path_of(base, attribute)] = value
    assert found == overrides


INSTALL = """
import json, sys, tempfile
from pathlib import Path
from scaleorfail.emulator import moto_ext
from scaleorfail.emulator.moto_ext import core
from scaleorfail.emulator.moto_ext.stepfunctions import copies
from scaleorfail.emulator.settings import EmulatorSettings

with tempfile.TemporaryDirectory() as work:
    moto_ext.install(EmulatorSettings(port=1), Path(work))
    try:
        deferred = {
            "imported_at_install": "moto.cloudformation" in sys.modules,
            "applied_at_install": sorted(core.APPLIED),
        }
        for service in dict.fromkeys(core.DEFERRED.values()):  # what each service's first request runs
            core.apply_deferred(service)
        found = {}
        for path, value in core.APPLIED.items():
            owner, name = core.locate(path)
            held = owner.get(name) if isinstance(owner, dict) else vars(owner).get(name)
            routed = getattr(getattr(value, "__self__", None), "__qualname__", None)
            found[path] = {"held": held is value, "routed": routed}
        json.dump({"found": found, "deferred": deferred}, sys.stdout)
    finally:
        moto_ext.shutdown()
"""


def test_install_makes_every_declared_patch_once_and_it_stays() -> None:
    """In a fresh process: install() applies each declared patch and route, and each still holds what it put."""
    done = waiting.run([sys.executable, "-c", INSTALL], cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    applied = answer["found"]
    patches = {t.path for targets in core.INSTALLERS.values() for t in targets}
    assert set(applied) == patches
    # CloudFormation's patches wait for its first request, and its models are not even imported before
    later = {t.path for installer, targets in core.INSTALLERS.items() if installer in core.DEFERRED for t in targets}
    assert later and all(path.startswith("moto.") for path in later)
    assert set(answer["deferred"]["applied_at_install"]) == patches - later
    assert answer["deferred"]["imported_at_install"] is False
    assert [path for path, found in applied.items() if not found["held"]] == []
    routed = {found["routed"] for path, found in applied.items() if "url_paths[" in path}
    ours = {
        c.__qualname__
        for target, _ in core.OVERRIDES
        for c in core.locate(target.path)[0].__subclasses__()
        if c.__module__.startswith("scaleorfail.")
    }
    assert routed == ours  # every subclass with overrides serves a route, and only ours do


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)


def containers(value: object) -> list[int]:
    """The ids of every dict and list in a JSON value."""
    if isinstance(value, dict):
        return [id(value), *(i for item in value.values() for i in containers(item))]
    if isinstance(value, list):
        return [id(value), *(i for item in value for i in containers(item))]
    return []


@given(JSON)
def test_the_interpreters_json_copy_is_equal_and_shares_no_container(value: object) -> None:
    copied = copies.json_copy(value)
    assert copied == value and json.dumps(copied) == json.dumps(value)
    assert not set(containers(copied)) & set(containers(value))


def test_what_is_not_json_is_copied_as_copy_deepcopy_copies_it() -> None:
    moment = datetime(2026, 12, 7, tzinfo=UTC)
    shared = [1, 2]
    value = {"when": moment, "pair": (shared, shared), "kind": Counter(a=1)}
    copied = copies.json_copy(value)
    assert copied == value and copied["when"] == moment
    assert copied["pair"][0] is copied["pair"][1] and copied["pair"][0] is not shared  # deepcopy's memo, inside
    assert type(copied["kind"]) is Counter and copied["kind"] is not value["kind"]


def test_program_states_and_sets_are_copied_member_by_member_as_deepcopy_would() -> None:
    """The program states the environment copies at every state: the same kind and attributes as a deepcopy,
    nothing shared; a set of names likewise."""
    from moto.stepfunctions.parser.asl.eval import program_state

    running = program_state.ProgramRunning()
    running.next_state_name = "Embed"
    failed = program_state.ProgramError({"error": "States.TaskFailed", "cause": "boom"})
    stopped = program_state.ProgramStopped(datetime(2026, 12, 8, tzinfo=UTC), "Stop", None)
    for original in (running, failed, stopped, program_state.ProgramEnded()):
        copied = copies.json_copy(original)
        assert type(copied) is type(original) and copied is not original
        assert vars(copied) == vars(copy.deepcopy(original))
    assert copies.json_copy(running).next_state_name == "Embed"
    assert copies.json_copy(failed).error is not failed.error
    names = {"Preprocess", "Embed"}
    assert copies.json_copy(names) == names and copies.json_copy(names) is not names


def test_programs_asked_for_during_a_definitions_first_parse_wait_for_it_and_get_copies() -> None:
    """Executions of a new state machine that start together: one ANTLR parse, not one each."""
    parsed: list[str] = []

    def parse(definition: str) -> dict[str, Any]:
        parsed.append(definition)
        time.sleep(0.3)  # the others arrive while it runs
        return {"definition": definition, "states": [{"Type": "Pass"}]}

    templates = ProgramTemplates(parse)
    with ThreadPoolExecutor(20) as pool:
        programs = list(pool.map(lambda _: templates.fresh("d"), range(20)))
    assert parsed == ["d"]
    assert all(program == programs[0] for program in programs)
    assert len({id(program) for program in programs}) == 20  # each execution holds a program of its own


def test_a_failed_first_parse_leaves_the_next_caller_to_parse_and_an_unpicklable_program_is_parsed_each_time() -> None:
    attempts: list[str] = []

    def flaky(definition: str) -> dict[str, Any]:
        attempts.append(definition)
        if len(attempts) == 1:
            time.sleep(0.2)
            raise ValueError("the first parse fails")
        return {"definition": definition}

    templates = ProgramTemplates(flaky)
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: _outcome(templates, "d"), range(4)))
    assert outcomes.count("ValueError") == 1
    assert [outcome for outcome in outcomes if outcome != "ValueError"] == [{"definition": "d"}] * 3
    assert attempts == ["d", "d"]  # the failure, then one parse whose copy served the rest

    unpicklable = ProgramTemplates(lambda definition: {"run": lambda: definition})
    assert [unpicklable.fresh("e")["run"]() for _ in range(3)] == ["e", "e", "e"]


def _outcome(templates: ProgramTemplates, definition: str) -> object:
    try:
        return templates.fresh(definition)
    except ValueError:
        return "ValueError"
