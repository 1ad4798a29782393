"""Step Functions: the interpreter's copies of state data, made for what that data is - JSON.

moto 5.2.5's interpreter deep-copies a state's input, output, parameters and stack at every step
(``copy.deepcopy``: about 870 calls per ticket of the pipeline, each with its memo, its ``id()`` and
dispatch). The values are JSON documents: dicts, lists, strings, numbers, booleans and null, which
:func:`json_copy` copies three times as fast. The program states the environment copies at every
state (``ProgramRunning`` and its kin: plain objects of a few JSON attributes, a dozen per pipeline
ticket) and sets are copied the same way, member by member; anything else (a datetime, an enum, a
failure event on the stack) is handed to ``copy.deepcopy`` as before.

Each module below reads ``copy`` as a module attribute (``copy.deepcopy(...)``); it gets :data:`COPY`,
which is the ``copy`` module with ``deepcopy`` made :func:`json_copy`:

* ``...asl.eval.states`` (``copy``): ``$states`` input, result and error output (``get_input``, ``reset``);
* ``...asl.eval.environment`` (``copy``): a frame's context object and program state;
* ``...asl.eval.event.event_manager`` (``copy``): a history event's details;
* ``...component.common.string.string_expression`` (``copy``): a JSONPath's value;
* ``...component.common.path.result_path`` (``copy``): the result placed into the input;
* ``...component.state.exec.execute_state`` (``copy``): a Task's frame stack;
* ``...state_task.service.state_task_service`` (``copy``): a Task's parameters;
* ``...state_map.state_map`` (``copy``) and ``...state_map.iteration.job`` (``copy``): a Map's frame
  stack and its iterations' results.

No copy shares anything with its original, as before; what a JSON copy does not keep is identity
between two places of one document holding the same object (a JSON document from a client has
none) and cycles (a JSON document cannot have one).
"""

from __future__ import annotations

import copy
import importlib
import types
from typing import Any

from scaleorfail.emulator.moto_ext.core import declare_each, replace

PARSER = "moto.stepfunctions.parser.asl"
STATE_EXEC = f"{PARSER}.component.state.exec"
MODULES = (
    f"{PARSER}.eval.states",
    f"{PARSER}.eval.environment",
    f"{PARSER}.eval.event.event_manager",
    f"{PARSER}.component.common.string.string_expression",
    f"{PARSER}.component.common.path.result_path",
    f"{STATE_EXEC}.execute_state",
    f"{STATE_EXEC}.state_task.service.state_task_service",
    f"{STATE_EXEC}.state_map.state_map",
    f"{STATE_EXEC}.state_map.iteration.job",
)
ATOMS = (str, int, float, bool, type(None))


def _program_states() -> frozenset[type]:
    """moto's program states: plain objects (no slots, no copy hooks) whose attributes are JSON or datetimes."""
    from moto.stepfunctions.parser.asl.eval import program_state

    return frozenset(
        kind for kind in vars(program_state).values()
        if isinstance(kind, type) and issubclass(kind, program_state.ProgramState)
        and not hasattr(kind, "__deepcopy__") and not any(vars(base).get("__slots__") for base in kind.__mro__)
    )  # fmt: skip


PLAIN_OBJECTS = _program_states()


def json_copy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """A deep copy of a JSON value; a value of any other type is copied by ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if kind in ATOMS:
        return value
    if kind in PLAIN_OBJECTS:  # what deepcopy's reconstruction does for such an object, without its memo
        copied = object.__new__(kind)
        copied.__dict__.update({name: json_copy(item) for name, item in value.__dict__.items()})
        return copied
    if kind is set:
        return {json_copy(item) for item in value}
    return copy.deepcopy(value, memo)


class _Copy(types.ModuleType):
    """The ``copy`` module, its ``deepcopy`` the JSON copy."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


COPY = _Copy("copy")
COPY.deepcopy = json_copy  # type: ignore[attr-defined]


@declare_each(
    [f"{module}.copy" for module in MODULES],
    why="the interpreter's deep copies of JSON state data, at every step, made by a JSON copy "
    "(three times as fast as copy.deepcopy; any other value still copied by copy.deepcopy)",
)
def _json_copies() -> None:
    for name in MODULES:
        replace(importlib.import_module(name), "copy", COPY)
