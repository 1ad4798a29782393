"""Step Functions: the interpreter's deep copies of JSON values, made at the cost of the value.

moto's ASL interpreter deep-copies a state's data at every step: the input when a state is
entered (``States.reset``), every JSONPath it reads (``States._extract``), the parameters of a
Task, the frame's stack, the result, the event details. ``copy.deepcopy`` is general (a memo of
every object, a dispatch and a ``__reduce_ex__`` per object it does not know); for the dicts,
lists and scalars a state's data is made of, it cost about 19 copies and a third of the
emulator's CPU per Lambda task (yappi, 1,000 tickets at c=40).

:func:`json_copy` copies dicts and lists and shares what cannot change (strings, numbers,
booleans, None, datetimes), and hands anything else to ``copy.deepcopy``; for a JSON value it
gives what ``copy.deepcopy`` gives, since a JSON value has no cycles and no shared parts.
Each module below has its ``copy`` module replaced by :data:`COPY`, which is ``copy`` with that
``deepcopy``.
"""

from __future__ import annotations

import copy
import types
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from scaleorfail.emulator.moto_ext.core import declare, locate, replace

SHARED = frozenset({str, int, float, bool, type(None), datetime, date, Decimal, bytes})
ASL = "moto.stepfunctions.parser.asl"
MODULES = (
    f"{ASL}.eval.states",
    f"{ASL}.eval.environment",
    f"{ASL}.eval.event.event_manager",
    f"{ASL}.component.common.string.string_expression",
    f"{ASL}.component.common.path.result_path",
    f"{ASL}.component.intrinsic.function.statesfunction.json_manipulation.json_merge",
    f"{ASL}.component.state.exec.execute_state",
    f"{ASL}.component.state.exec.state_map.state_map",
    f"{ASL}.component.state.exec.state_parallel.state_parallel",
    f"{ASL}.component.state.exec.state_task.service.state_task_service",
)


def json_copy(value: Any, memo: Any = None) -> Any:
    """A deep copy of `value`: dicts and lists copied, immutable scalars shared, the rest deep-copied."""
    kind = type(value)
    if kind in SHARED:
        return value
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if kind is tuple and all(type(item) in SHARED for item in value):
        return value
    return copy.deepcopy(value, memo)


COPY = types.ModuleType("copy", "the copy module, its deepcopy made for JSON values (scaleorfail)")
COPY.__dict__.update({name: getattr(copy, name) for name in copy.__all__})
COPY.deepcopy = json_copy  # type: ignore[attr-defined]


def _targets(installer: Any) -> Any:
    for module in reversed(MODULES):
        installer = declare(
            f"{module}.copy",
            why="JSON values deep-copied at their own cost: moto's copy.deepcopy of a state's data, about 19 "
            "copies per Lambda task, was a third of the emulator's CPU",
        )(installer)
    return installer


@_targets
def _json_copies() -> None:
    for module in MODULES:
        owner, name = locate(f"{module}.copy")
        replace(owner, name, COPY)
