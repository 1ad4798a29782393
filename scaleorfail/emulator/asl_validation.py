"""Amazon States Language definitions checked as CreateStateMachine / UpdateStateMachine check them.

AWS refuses a definition whose states do not hold together with ``InvalidDefinition`` and every
problem listed ("Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next'
target: Nope at /States/A/Next'"); moto 5.2.5 accepted StartAt or Next naming a missing state and a
machine without a terminal state, and refused others with ``__type: null``. The diagnostics use the
codes of ValidateStateMachineDefinition: SCHEMA_VALIDATION_FAILED (a field missing, of the wrong
type or not allowed), MISSING_TRANSITION_TARGET (StartAt, Next, Default or a Catcher naming no
state of its scope), MISSING_END_STATE (no state can end the machine), DUPLICATE_STATE_NAME,
INVALID_JSON_DESCRIPTION. Scopes nest: a Parallel branch and a Map's ItemProcessor are machines of
their own. Pure: imports nothing from moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
TERMINAL_TYPES = ("Succeed", "Fail")
NO_TRANSITION = ("Choice", "Succeed", "Fail")  # states that take neither Next nor End
WAIT_FIELDS = ("Seconds", "Timestamp", "SecondsPath", "TimestampPath")
MAX_SHOWN = 10


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    location: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message} at {self.location}"


def _pointer(*parts: str | int) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts) if parts else "/"


class _Checker:
    def __init__(self) -> None:
        self.found: list[Diagnostic] = []

    def add(self, code: str, message: str, *where: str | int) -> None:
        self.found.append(Diagnostic(code, message, _pointer(*where)))

    def machine(self, machine: Any, where: tuple[str | int, ...]) -> None:
        if not isinstance(machine, dict):
            self.add("SCHEMA_VALIDATION_FAILED", "The value must be an object", *where)
            return
        states = machine.get("States")
        if not isinstance(states, dict) or not states:
            self.add("SCHEMA_VALIDATION_FAILED", "The field 'States' should be a non-empty object", *where)
            states = {}
        start = machine.get("StartAt")
        if not isinstance(start, str):
            self.add("SCHEMA_VALIDATION_FAILED", "The field 'StartAt' should be non-null", *where)
        elif states and start not in states:
            self.add("MISSING_TRANSITION_TARGET", f"Missing 'StartAt' target: {start}", *where, "StartAt")
        terminal = False
        for name, state in states.items():
            terminal = self.state(name, state, states, (*where, "States", name)) or terminal
        if states and not terminal:
            self.add("MISSING_END_STATE", "Workflow has no terminal state", *where)

    def target(self, name: Any, states: dict[str, Any], field: str, where: tuple[str | int, ...]) -> None:
        if not isinstance(name, str):
            self.add("SCHEMA_VALIDATION_FAILED", f"The value for the field '{field}' must be a STRING", *where)
        elif name not in states:
            self.add("MISSING_TRANSITION_TARGET", f"Missing '{field}' target: {name}", *where)

    def state(self, name: str, state: Any, states: dict[str, Any], where: tuple[str | int, ...]) -> bool:
        """Check one state; True when it can end its machine."""
        if len(name) > 80:
            self.add("SCHEMA_VALIDATION_FAILED", "State names must be at most 80 characters", *where)
        if not isinstance(state, dict):
            self.add("SCHEMA_VALIDATION_FAILED", "The value must be an object", *where)
            return False
        kind = state.get("Type")
        if kind not in TYPES:
            text = "should be non-null" if kind is None else f"is not one of {', '.join(TYPES)}"
            self.add("SCHEMA_VALIDATION_FAILED", f"The field 'Type' {text}", *where)
            return False
        ends = kind in TERMINAL_TYPES
        if kind not in NO_TRANSITION:
            has_next, has_end = "Next" in state, state.get("End") is True
            if has_next and has_end:
                self.add("SCHEMA_VALIDATION_FAILED", "The fields 'Next' and 'End' are mutually exclusive", *where)
            elif not has_next and not has_end:
                self.add("SCHEMA_VALIDATION_FAILED", "The field 'Next' or 'End' is required", *where)
            if has_next:
                self.target(state["Next"], states, "Next", (*where, "Next"))
            ends = ends or has_end
        for index, catcher in enumerate(state.get("Catch") or []):
            if not isinstance(catcher, dict) or not catcher.get("ErrorEquals"):
                self.add(
                    "SCHEMA_VALIDATION_FAILED", "The field 'ErrorEquals' should be non-null", *where, "Catch", index
                )
            elif "Next" not in catcher:
                self.add("SCHEMA_VALIDATION_FAILED", "The field 'Next' should be non-null", *where, "Catch", index)
            else:
                self.target(catcher["Next"], states, "Next", (*where, "Catch", index, "Next"))
        for index, retrier in enumerate(state.get("Retry") or []):
            if not isinstance(retrier, dict) or not retrier.get("ErrorEquals"):
                self.add(
                    "SCHEMA_VALIDATION_FAILED", "The field 'ErrorEquals' should be non-null", *where, "Retry", index
                )
        getattr(self, f"_{kind.lower()}", lambda *_: None)(state, states, where)
        return ends

    def _task(self, state: dict[str, Any], states: dict[str, Any], where: tuple[str | int, ...]) -> None:
        resource = state.get("Resource")
        if not isinstance(resource, str) or not resource.startswith("arn:"):
            self.add("INVALID_RESOURCE", f"The resource provided {resource!r} is not an ARN", *where, "Resource")

    def _choice(self, state: dict[str, Any], states: dict[str, Any], where: tuple[str | int, ...]) -> None:
        choices = state.get("Choices")
        if not isinstance(choices, list) or not choices:
            self.add("SCHEMA_VALIDATION_FAILED", "The field 'Choices' should be a non-empty array", *where)
            return
        for index, rule in enumerate(choices):
            if not isinstance(rule, dict) or "Next" not in rule:
                self.add("SCHEMA_VALIDATION_FAILED", "The field 'Next' should be non-null", *where, "Choices", index)
            else:
                self.target(rule["Next"], states, "Next", (*where, "Choices", index, "Next"))
        if "Default" in state:
            self.target(state["Default"], states, "Default", (*where, "Default"))

    def _wait(self, state: dict[str, Any], states: dict[str, Any], where: tuple[str | int, ...]) -> None:
        given = [f for f in WAIT_FIELDS if f in state]
        if len(given) != 1:
            self.add("SCHEMA_VALIDATION_FAILED", f"Exactly one of {', '.join(WAIT_FIELDS)} is required", *where)

    def _parallel(self, state: dict[str, Any], states: dict[str, Any], where: tuple[str | int, ...]) -> None:
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            self.add("SCHEMA_VALIDATION_FAILED", "The field 'Branches' should be a non-empty array", *where)
            return
        for index, branch in enumerate(branches):
            self.machine(branch, (*where, "Branches", index))

    def _map(self, state: dict[str, Any], states: dict[str, Any], where: tuple[str | int, ...]) -> None:
        field = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        if field not in state:
            self.add("SCHEMA_VALIDATION_FAILED", "The field 'ItemProcessor' should be non-null", *where)
            return
        self.machine(state[field], (*where, field))


def _duplicates(text: str) -> list[Diagnostic]:
    """State names given twice in one States object (json.loads keeps only the last)."""
    found: list[Diagnostic] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, value in items:
            if key in seen and isinstance(value, dict) and "Type" in value:
                found.append(Diagnostic("DUPLICATE_STATE_NAME", f"Duplicate State name: {key}", "/States"))
            seen.add(key)
        return dict(items)

    json.loads(text, object_pairs_hook=pairs)
    return found


def diagnose(definition: str) -> list[Diagnostic]:
    """Every problem of a definition (empty: it can be created)."""
    try:
        machine = json.loads(definition)
    except (json.JSONDecodeError, TypeError) as error:
        return [Diagnostic("INVALID_JSON_DESCRIPTION", f"The definition is not JSON: {error}", "/")]
    checker = _Checker()
    checker.found += _duplicates(definition)
    checker.machine(machine, ())
    return checker.found


def message(found: list[Diagnostic]) -> str:
    """AWS's InvalidDefinition message for these problems."""
    shown = ", ".join(str(d) for d in found[:MAX_SHOWN])
    more = f" (and {len(found) - MAX_SHOWN} more)" if len(found) > MAX_SHOWN else ""
    return f"Invalid State Machine Definition: '{shown}'{more}"
