"""Step Functions: the interpreter's defensive copies of JSON values, made cheap.

moto's ASL interpreter (5.2.5) copies state data with ``copy.deepcopy`` at every step: a state's
input when it is read and reset, a task's result, each frame's stack and context, every history
event's details. The values are JSON (parsed input, Lambda results, context strings), for
which ``copy.deepcopy``'s generality (a memo of every object, ``__deepcopy__`` and reduce
lookups) costs several times a plain recursive copy: about a quarter of the emulator's CPU
per Lambda task when a Map runs them back to back (`make bench`, bench/results/capacity.md).

Each module below gets, in place of the ``copy`` module it imported, a namespace whose
``deepcopy`` copies dicts, lists and scalars directly and hands anything else (a dataclass, a
datetime, a dict subclass) to ``copy.deepcopy`` - so the result is the same: a copy that shares
nothing mutable with the original. JSON values hold no cycles; one nested deeper than Python's
recursion limit fails with RecursionError, as it does with ``copy.deepcopy``.
"""

from __future__ import annotations

import copy
import types
from typing import Any

from scaleorfail.emulator.moto_ext.core import declare, replace

ASL = "moto.stepfunctions.parser.asl"
MODULES = (
    f"{ASL}.eval.states",
    f"{ASL}.eval.environment",
    f"{ASL}.eval.event.event_manager",
    f"{ASL}.component.state.exec.execute_state",
    f"{ASL}.component.state.exec.state_map.state_map",
    f"{ASL}.component.state.exec.state_parallel.state_parallel",
    f"{ASL}.component.state.exec.state_task.service.state_task_service",
    f"{ASL}.component.common.path.result_path",
    f"{ASL}.component.common.string.string_expression",
)
SCALARS = (str, int, float, bool, type(None))


def json_copy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """A deep copy of a JSON value (dicts, lists, scalars); anything else as copy.deepcopy copies it.

    Like copy.deepcopy it copies a dict or list reached twice once (the memo, keyed by id): the
    context object holds the execution's input in several places, and a batch's input is large."""
    kind = type(value)
    if kind in SCALARS:
        return value
    if memo is None:
        memo = {}
    if kind is dict:
        found = memo.get(id(value))
        if found is None:
            found = memo[id(value)] = {}
            for key, item in value.items():
                found[key] = item if type(item) in SCALARS else json_copy(item, memo)
        return found
    if kind is list:
        found = memo.get(id(value))
        if found is None:
            found = memo[id(value)] = []
            found.extend(item if type(item) in SCALARS else json_copy(item, memo) for item in value)
        return found
    return copy.deepcopy(value, memo)


FAST_COPY = types.SimpleNamespace(deepcopy=json_copy, copy=copy.copy, Error=copy.Error)


def _declared(installer: Any) -> Any:
    for module in reversed(MODULES):
        installer = declare(
            f"{module}.copy",
            why="copy.deepcopy of JSON state data at every step, a quarter of the CPU per task: a plain "
            "recursive copy of dicts and lists (anything else still goes to copy.deepcopy)",
        )(installer)
    return installer


@_declared
def _json_copies() -> None:
    import importlib

    for name in MODULES:
        replace(importlib.import_module(name), "copy", FAST_COPY)
