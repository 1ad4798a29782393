"""Will a batch reach Step Functions' 25,000-event history limit? An estimate from the definition.

An inline Map writes every iteration's events into its execution's one history, and a
Standard execution that reaches 25,000 events fails (States.Runtime, "The execution
reached the maximum number of history events (25000)."). Per ticket the pipeline writes
MapIterationStarted/Succeeded, and per state its Entered/Exited events plus, for a Task,
TaskScheduled/TaskStarted/TaskSucceeded|TaskFailed for every attempt - so every retry a
Retry policy allows adds three events. This reads the deployed definition and says how
many events a batch writes without retries and with every retry used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from scaleorfail.pipeline import HISTORY_EVENT_LIMIT

DEFAULT_MAX_ATTEMPTS = 3  # the States Language default of a Retrier's MaxAttempts
EXECUTION_EVENTS = 2  # ExecutionStarted + ExecutionSucceeded|Failed
MAP_OWN_EVENTS = 2  # MapStateStarted + MapStateSucceeded|Failed
ITERATION_EVENTS = 2  # MapIterationStarted + MapIterationSucceeded|Failed
STATE_EVENTS = 2  # <Type>StateEntered + <Type>StateExited
ATTEMPT_EVENTS = 3  # TaskScheduled + TaskStarted + TaskSucceeded|TaskFailed


@dataclass(frozen=True)
class HistoryBudget:
    fixed: int  # events outside the Map iterations
    per_item: int  # events per ticket when no attempt fails
    per_item_worst: int  # events per ticket when every retry is used

    def events(self, batch: int, worst: bool = False) -> int:
        return self.fixed + batch * (self.per_item_worst if worst else self.per_item)

    def largest_batch(self, worst: bool = False) -> int:
        return (HISTORY_EVENT_LIMIT - 1 - self.fixed) // (self.per_item_worst if worst else self.per_item)


def _path_states(machine: dict[str, Any]) -> list[dict[str, Any]]:
    """The states on the path from StartAt by Next (the path a successful run takes)."""
    states = machine.get("States") or {}
    seen: list[dict[str, Any]] = []
    name = machine.get("StartAt")
    while isinstance(name, str) and name in states and len(seen) < len(states):
        state = states[name]
        seen.append(state)
        if state.get("End") or state.get("Type") in ("Succeed", "Fail"):
            break
        name = state.get("Next") or state.get("Default")
    return seen


def _retries(state: dict[str, Any]) -> int:
    return sum(int(r.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS)) for r in state.get("Retry") or [])


def budget(definition: str | dict[str, Any]) -> HistoryBudget | None:
    """Events per execution of a definition with an inline Map (None: no Map on its main path, or a Distributed one)."""
    machine = json.loads(definition) if isinstance(definition, str) else definition
    top = _path_states(machine)
    maps = [s for s in top if s.get("Type") == "Map"]
    if not maps or ((maps[0].get("ItemProcessor") or {}).get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED":
        return None  # a Distributed Map's tickets run in child executions: each has its own history
    inner = _path_states(maps[0].get("ItemProcessor") or maps[0].get("Iterator") or {})
    normal = worst = ITERATION_EVENTS
    for state in inner:
        normal += STATE_EVENTS
        worst += STATE_EVENTS
        if state.get("Type") == "Task":
            normal += ATTEMPT_EVENTS
            worst += ATTEMPT_EVENTS * (1 + _retries(state))
    fixed = EXECUTION_EVENTS + STATE_EVENTS * len(top) + MAP_OWN_EVENTS
    return HistoryBudget(fixed=fixed, per_item=normal, per_item_worst=worst)


def warning(batch_size: int, definition: str | dict[str, Any], throttling: bool = True) -> str | None:
    """A warning when a batch of this size can reach the history limit.

    Without `throttling` (the Map cannot run more Lambdas than the account allows), retries are not
    expected, and only a batch over the limit without them is warned about."""
    found = budget(definition)
    if found is None:
        return None
    normal, worst = found.events(batch_size), found.events(batch_size, worst=True)
    if not throttling:
        worst = normal
    if normal >= HISTORY_EVENT_LIMIT:
        return (
            f"warning: a batch of {batch_size} tickets writes ~{normal:,} history events, over Step Functions' "
            f"limit of {HISTORY_EVENT_LIMIT:,}: the execution will fail with States.Runtime; the largest batch "
            f"that fits is {found.largest_batch():,} (split the tickets over several executions)"
        )
    if worst >= HISTORY_EVENT_LIMIT:
        return (
            f"warning: a batch of {batch_size} tickets writes ~{normal:,} history events, and up to ~{worst:,} "
            f"if the Retry policy's every attempt is used (throttling): past {HISTORY_EVENT_LIMIT:,} the execution "
            f"fails with States.Runtime; {found.largest_batch(worst=True):,} tickets is safe whatever is retried"
        )
    return None
