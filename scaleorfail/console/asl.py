"""An ASL definition as a graph for the browser to lay out: states, containers, transitions.

A Map state is a container holding its ItemProcessor's (or Iterator's) states; a Parallel
state holds its branches. Transitions into a container enter its StartAt state(s); a
container's inner states that end (End: true, Succeed) continue to the container's Next.
Choice rules, Default and Catch clauses are labelled edges. The browser lays this out
with dagre and draws it; nothing here depends on an execution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

START, END = "__start__", "__end__"
CONTAINERS = ("Map", "Parallel")


@dataclass
class Graph:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "edges": self.edges}


def _scopes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The inner state machines of a Map (one) or a Parallel (one per branch)."""
    inner = spec.get("ItemProcessor") or spec.get("Iterator")
    if isinstance(inner, dict):
        return [inner]
    return [b for b in spec.get("Branches") or [] if isinstance(b, dict)]


class _Builder:
    def __init__(self) -> None:
        self.graph = Graph()
        self.specs: dict[str, dict[str, Any]] = {}

    def entries(self, name: str) -> list[str]:
        """The nodes a transition to `name` arrives at (a container's StartAt states)."""
        spec = self.specs.get(name, {})
        if spec.get("Type") in CONTAINERS:
            found = []
            for scope in _scopes(spec):
                start = scope.get("StartAt")
                if isinstance(start, str):
                    found += self.entries(start)
            return found or [name]
        return [name]

    def add_scope(self, machine: dict[str, Any], parent: str | None, after: list[str]) -> None:
        """Add a scope's states; `after`: where its ending states go (the container's Next, or End)."""
        states = machine.get("States") or {}
        for name, spec in states.items():
            if isinstance(spec, dict):
                self.specs[str(name)] = spec
        for name, spec in states.items():
            if not isinstance(spec, dict):
                continue
            kind = str(spec.get("Type") or "?")
            self.graph.nodes.append(
                {
                    "id": name,
                    "type": kind,
                    "resource": spec.get("Resource"),
                    "parent": parent,
                    "container": kind in CONTAINERS,
                    "comment": spec.get("Comment"),
                    "function": _function(spec),
                }
            )
        for name, spec in states.items():
            if isinstance(spec, dict):
                self.add_transitions(str(name), spec, after)

    def add_transitions(self, name: str, spec: dict[str, Any], after: list[str]) -> None:
        kind = spec.get("Type")
        container = kind in CONTAINERS
        targets: list[tuple[str, str, str]] = []  # (target state or END, label, kind)
        if kind == "Choice":
            for rule in spec.get("Choices") or []:
                if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
                    targets.append((rule["Next"], _rule_label(rule), "choice"))
            if isinstance(spec.get("Default"), str):
                targets.append((spec["Default"], "Default", "choice"))
        elif isinstance(spec.get("Next"), str):
            targets.append((spec["Next"], "", "next"))
        elif spec.get("End") or kind == "Succeed":
            targets += [(a, "", "next") for a in after]
        for catch in spec.get("Catch") or []:
            if isinstance(catch, dict) and isinstance(catch.get("Next"), str):
                label = "Catch " + ", ".join(str(e) for e in catch.get("ErrorEquals") or [])
                targets.append((catch["Next"], label, "catch"))
        for target, label, how in targets:
            if container and how == "next":
                continue  # a container is left by its inner states' ends (wired with the inner scope)
            arrive = [END] if target == END else self.entries(target)
            # a container's Catch leaves from its entries: edges do not start at a layout cluster
            for source in self.entries(name) if container else [name]:
                for node in arrive:
                    self.graph.edges.append({"from": source, "to": node, "label": label, "kind": how})
        if container:
            follow = [spec["Next"]] if isinstance(spec.get("Next"), str) else after
            for scope in _scopes(spec):
                self.add_scope(scope, name, follow)


def _function(spec: dict[str, Any]) -> str | None:
    """The Lambda function a Task invokes (Parameters.FunctionName), for the node's second line."""
    parameters = spec.get("Parameters") or spec.get("Arguments") or {}
    if isinstance(parameters, dict):
        name = parameters.get("FunctionName") or parameters.get("FunctionName.$")
        if isinstance(name, str):
            return name.rsplit(":function:", 1)[-1]
    return None


def _rule_label(rule: dict[str, Any]) -> str:
    variable = rule.get("Variable")
    for key, value in rule.items():
        if key not in ("Next", "Variable", "Comment") and not isinstance(value, (dict, list)):
            return f"{variable or ''} {key} {value}".strip()[:60]
    if isinstance(rule.get("Condition"), str):
        return str(rule["Condition"])[:60]
    return str(rule.get("Comment") or "rule")[:60]


def build(definition: dict[str, Any]) -> Graph:
    """The graph of a definition, with a Start and an End node at the top level."""
    builder = _Builder()
    builder.graph.nodes.append({"id": START, "type": "Start", "parent": None, "container": False})
    builder.graph.nodes.append({"id": END, "type": "End", "parent": None, "container": False})
    builder.add_scope(definition, None, [END])
    start = definition.get("StartAt")
    if isinstance(start, str):
        for node in builder.entries(start):
            builder.graph.edges.insert(0, {"from": START, "to": node, "label": "", "kind": "next"})
    return builder.graph
