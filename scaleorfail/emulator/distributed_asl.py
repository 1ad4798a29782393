"""Distributed Map states of a definition: what the emulator runs itself, and what moto may parse.

moto 5.2.5's ASL grammar knows the Distributed Map only in part: it refuses ``ItemBatcher``,
``ExecutionType: EXPRESS``, an integer ``ToleratedFailurePercentage``, ``ResultWriter.WriterConfig``
and ``ReaderConfig.InputType: JSONL``, all valid on AWS. :func:`for_moto` returns the definition
with those spelled as moto's grammar accepts them (or left out) and, for every Distributed Map
state, its :class:`MapConfig` as written - the emulator's Map Run reads its items, batches them,
starts its child executions and writes its results from that (moto_ext/stepfunctions/distributed.py).

Pure: imports nothing from moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DISTRIBUTED = "DISTRIBUTED"
EXECUTION_TYPES = ("STANDARD", "EXPRESS")
INPUT_TYPES = ("JSON", "JSONL", "CSV")
LABEL_FORBIDDEN = set(' ?*<>{}[]:;,\\|^~$#%&`"')
LABEL_MAX = 40
MAX_CONCURRENCY_MAX = 10_000
EXPRESS_TIMEOUT_S = 300  # an Express workflow runs at most 5 minutes


@dataclass(frozen=True)
class MapConfig:
    """One Distributed Map state as its definition writes it."""

    state: str
    execution_type: str = "STANDARD"
    label: str | None = None
    item_reader: dict[str, Any] | None = None
    item_batcher: dict[str, Any] | None = None
    result_writer: dict[str, Any] | None = None
    declared: frozenset[str] = frozenset()  # the state's fields (which tolerated-failure settings it has)
    processor: dict[str, Any] = field(default_factory=dict)  # the child workflow: StartAt, States ...

    @property
    def input_type(self) -> str:
        config = (self.item_reader or {}).get("ReaderConfig") or {}
        return str(config.get("InputType") or "JSON")

    def child_definition(self) -> str:
        """The child workflow's definition: the ItemProcessor without its ProcessorConfig."""
        machine = {k: v for k, v in self.processor.items() if k != "ProcessorConfig"}
        if self.execution_type == "EXPRESS" and "TimeoutSeconds" not in machine:
            machine["TimeoutSeconds"] = EXPRESS_TIMEOUT_S
        return json.dumps(machine, separators=(",", ":"))


def is_distributed(state: Any) -> bool:
    if not isinstance(state, dict) or state.get("Type") != "Map":
        return False
    processor = state.get("ItemProcessor")
    config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
    return isinstance(config, dict) and config.get("Mode") == DISTRIBUTED


def _moto_state(state: dict[str, Any]) -> tuple[dict[str, Any], MapConfig]:
    """A Distributed Map state as moto's grammar takes it, and its configuration as written."""
    processor = dict(state["ItemProcessor"])
    config = MapConfig(
        state="",
        execution_type=str(processor["ProcessorConfig"].get("ExecutionType") or "STANDARD"),
        label=state.get("Label"),
        item_reader=state.get("ItemReader"),
        item_batcher=state.get("ItemBatcher"),
        result_writer=state.get("ResultWriter"),
        declared=frozenset(state),
        processor=processor,
    )
    moto = {k: v for k, v in state.items() if k not in ("ItemBatcher", "ResultWriter")}
    moto_config = {**processor["ProcessorConfig"], "ExecutionType": "STANDARD"}
    moto["ItemProcessor"] = {**processor, "ProcessorConfig": moto_config}
    if isinstance(moto.get("ToleratedFailurePercentage"), int):
        moto["ToleratedFailurePercentage"] = float(moto["ToleratedFailurePercentage"])
    reader = moto.get("ItemReader")
    if isinstance(reader, dict) and isinstance(reader.get("ReaderConfig"), dict):
        reader_config = dict(reader["ReaderConfig"])
        if reader_config.get("InputType") == "JSONL":
            reader_config["InputType"] = "JSON"
        moto["ItemReader"] = {**reader, "ReaderConfig": reader_config}
    return moto, config


def _walk(machine: Any, path: tuple[str, ...], found: dict[tuple[str, ...], MapConfig]) -> Any:
    if not isinstance(machine, dict) or not isinstance(machine.get("States"), dict):
        return machine
    states: dict[str, Any] = {}
    for name, written in machine["States"].items():
        state = written
        if is_distributed(written):
            state, config = _moto_state(written)
            found[(*path, name)] = MapConfig(**{**config.__dict__, "state": name})
            # the child workflow is a definition of its own: parsed (and rewritten) when a child starts
        elif isinstance(written, dict) and written.get("Type") == "Map":
            key = "ItemProcessor" if "ItemProcessor" in written else "Iterator"
            state = {**written, key: _walk(written.get(key), (*path, name), found)}
        elif isinstance(written, dict) and written.get("Type") == "Parallel":
            state = {**written, "Branches": [_walk(b, (*path, name), found) for b in written.get("Branches") or []]}
        states[name] = state
    return {**machine, "States": states}


def for_moto(definition: str) -> tuple[str, dict[tuple[str, ...], MapConfig]]:
    """The definition as moto's grammar accepts it, and each Distributed Map's configuration by state path.

    A definition with no Distributed Map (or that is not JSON) comes back unchanged."""
    if '"DISTRIBUTED"' not in definition:
        return definition, {}
    try:
        machine = json.loads(definition)
    except (TypeError, ValueError):
        return definition, {}
    found: dict[tuple[str, ...], MapConfig] = {}
    rewritten = _walk(machine, (), found)
    if not found:
        return definition, {}
    return json.dumps(rewritten, separators=(",", ":")), found


# -- what CreateStateMachine checks of a Distributed Map (asl_validation.py calls this) -----------


def problems(state: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(code, message, location under the state) for each field of a Distributed Map AWS would refuse."""
    found: list[tuple[str, str, tuple[str, ...]]] = []
    config = state["ItemProcessor"]["ProcessorConfig"]
    kind = config.get("ExecutionType")
    if kind not in EXECUTION_TYPES:
        found.append(
            (
                "SCHEMA_VALIDATION_FAILED",
                "The field 'ExecutionType' must be STANDARD or EXPRESS in DISTRIBUTED mode",
                ("ItemProcessor", "ProcessorConfig", "ExecutionType"),
            )
        )
    label = state.get("Label")
    if label is not None and (
        not isinstance(label, str)
        or not 0 < len(label) <= LABEL_MAX
        or any(c in LABEL_FORBIDDEN or ord(c) < 32 or 127 <= ord(c) <= 159 for c in label)
    ):
        found.append(
            (
                "SCHEMA_VALIDATION_FAILED",
                f"The field 'Label' must be 1-{LABEL_MAX} characters, without whitespace, wildcards, brackets or "
                "special characters",
                ("Label",),
            )
        )
    for name, low, high in (
        ("MaxConcurrency", 0, MAX_CONCURRENCY_MAX),
        ("ToleratedFailurePercentage", 0, 100),
        ("ToleratedFailureCount", 0, None),
    ):
        value = state.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (high and value > high):
            bound = f"between {low} and {high}" if high else f"at least {low}"
            found.append(("SCHEMA_VALIDATION_FAILED", f"The field '{name}' must be a number {bound}", (name,)))
    batcher = state.get("ItemBatcher")
    if batcher is not None:
        keys = ("MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath")
        if not isinstance(batcher, dict) or not any(k in batcher for k in keys):
            found.append(
                (
                    "SCHEMA_VALIDATION_FAILED",
                    "The field 'ItemBatcher' needs MaxItemsPerBatch or MaxInputBytesPerBatch (or their Path)",
                    ("ItemBatcher",),
                )
            )
        else:
            for name in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
                value = batcher.get(name)
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                    text = f"The field '{name}' must be a positive integer"
                    found.append(("SCHEMA_VALIDATION_FAILED", text, ("ItemBatcher", name)))
    reader = state.get("ItemReader")
    if isinstance(reader, dict):
        reader_config = reader.get("ReaderConfig")
        kind = reader_config.get("InputType") if isinstance(reader_config, dict) else None
        if kind is not None and kind not in (*INPUT_TYPES, "MANIFEST"):
            found.append(
                (
                    "SCHEMA_VALIDATION_FAILED",
                    f"The field 'InputType' must be one of {', '.join(INPUT_TYPES)} or MANIFEST",
                    ("ItemReader", "ReaderConfig", "InputType"),
                )
            )
    return found
