"""Which runs a selector names: a run directory, a run id, or a label (the latest run with it).

Every command that takes a run (`sof compare`, `report`, `harvest`, `rca`, `insights --run`,
`portfolio --wall ...`, `make rca RUN=...`) resolves it here, so a label works wherever a run
id does. A run's label is the one in its manifest (`--run-label`, or `make burst`'s
`burst-c<N>`), whatever its run id looks like; when several runs carry the label, the one
started last is meant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleorfail.errors import UserError

MANIFEST = "manifest.json"
SHOWN_LABELS = 8  # labels named in a "no such run" error


@dataclass(frozen=True)
class RunInfo:
    """What the manifest of one run says about it (empty fields when it is unreadable)."""

    path: Path
    run_id: str
    label: str
    started_at: str  # ISO 8601 UTC as the harness wrote it ("" when unknown)
    status: str  # the manifest's status, or "unreadable"
    profile: str
    target: str
    executions: int
    tickets: int
    max_concurrency: int | None
    default_concurrency: bool = False  # the run left the knob to the state machine's default (shown as such)

    @property
    def order(self) -> tuple[str, str]:
        """Sort key: oldest first (start time, then run id, which starts with a UTC timestamp)."""
        return (self.started_at, self.run_id)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _status(data: dict[str, Any]) -> str:
    """The manifest's status, but `crashed` for a `running` one whose harness is dead (as `sof harvest` says)."""
    status = _text(data.get("status")) or "unreadable"
    harness = data.get("harness")
    if status == "running" and isinstance(harness, dict) and harness:
        from scaleorfail.record.manifest import harness_dead

        if harness_dead(harness) is not None:
            return "crashed"
    return status


def read_info(run_dir: Path) -> RunInfo:
    """The run's manifest summary; an unreadable manifest gives status "unreadable" (never an error)."""
    try:
        data = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        return RunInfo(run_dir, run_dir.name, "", "", "unreadable", "", "", 0, 0, None)
    executions = data.get("executions")
    rows = executions if isinstance(executions, list) else []
    tickets = sum(int(row.get("batch_size") or 0) for row in rows if isinstance(row, dict))
    parameters = data.get("parameters")
    knob = parameters.get("max_concurrency") if isinstance(parameters, dict) else None
    outputs = data.get("stack_outputs")
    default = outputs.get("default_max_concurrency") if isinstance(outputs, dict) and knob is None else None
    return RunInfo(
        path=run_dir,
        run_id=_text(data.get("run_id")) or run_dir.name,
        label=_text(data.get("label")),
        started_at=_text(data.get("started_at")),
        status=_status(data),
        profile=_text(data.get("profile")),
        target=_text(data.get("target")),
        executions=len(rows),
        tickets=tickets,
        max_concurrency=_number(knob) if knob is not None else _number(default),
        default_concurrency=knob is None and _number(default) is not None,
    )


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def listing(runs_root: Path) -> list[RunInfo]:
    """Every run under runs_root (a folder with a manifest.json), oldest first."""
    return sorted((read_info(p.parent) for p in runs_root.glob(f"*/{MANIFEST}")), key=lambda info: info.order)


def with_label(label: str, runs_root: Path, known: list[RunInfo] | None = None) -> list[RunInfo]:
    """The runs carrying this label, oldest first."""
    return [info for info in (known if known is not None else listing(runs_root)) if info.label == label]


def _directory(selector: str, runs_root: Path) -> Path | None:
    """A run named by its directory, its manifest.json, or its run id (a folder under runs_root)."""
    path = Path(selector)
    for candidate in (path, runs_root / selector):
        if (candidate / MANIFEST).is_file():
            return candidate
        if candidate.name == MANIFEST and candidate.is_file():
            return candidate.parent
    return None


def missing(selector: str, runs_root: Path, known: list[RunInfo]) -> UserError:
    labels = sorted({info.label for info in known if info.label})
    if labels:
        shown = ", ".join(labels[:SHOWN_LABELS]) + (", ..." if len(labels) > SHOWN_LABELS else "")
        fix = f"give a run id or one of the labels there ({shown}); `make runs` lists every run"
    else:
        fix = "run a load first, e.g. `make burst N=500 MAX_CONCURRENCY=2` (label burst-c2)"
    return UserError(f"no run {selector!r}: no run id, directory or label of that name under {runs_root}", fix)


def resolve(selector: str, runs_root: Path, known: list[RunInfo] | None = None) -> Path:
    """The run directory a selector names: a path, a run id, or a label (the latest run with it)."""
    found = _directory(selector, runs_root)
    if found is not None:
        return found
    runs = known if known is not None else listing(runs_root)
    labelled = with_label(selector, runs_root, runs)
    if labelled:
        return labelled[-1].path
    raise missing(selector, runs_root, runs)


def select(selectors: list[str], runs_root: Path) -> list[Path]:
    """Run directories from paths, run ids or labels; none given: every run under runs_root, oldest first."""
    if not selectors:
        found = [info.path for info in listing(runs_root)]
        if not found:
            raise UserError(f"no runs under {runs_root}", "run a load first: `make burst N=500 MAX_CONCURRENCY=2`")
        return found
    known: list[RunInfo] | None = None
    out: list[Path] = []
    for selector in selectors:
        direct = _directory(selector, runs_root)
        if direct is None:
            known = known if known is not None else listing(runs_root)
            direct = resolve(selector, runs_root, known)
        out.append(direct)
    return out
