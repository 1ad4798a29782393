"""The run manifest: what a load run was asked to do and every execution it started.

`runs/<run_id>/manifest.json` (schema ``scale-or-fail/run-manifest``, version 1) is
rewritten atomically while the run goes on and at its end. Every start, failed start and
observed completion is also appended to `runs/<run_id>/journal.jsonl` and flushed at
once, so that a crash between two manifest writes loses nothing: :func:`load` merges
the journal back in.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaleorfail.errors import UserError

SCHEMA = "scale-or-fail/run-manifest"
VERSION = 1


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Started:
    name: str
    arn: str
    started_at: str
    batch_size: int
    worker: int
    seq: int
    latency_ms: float


@dataclass
class FailedStart:
    name: str
    at: str
    error: str
    message: str
    batch_size: int
    worker: int
    seq: int


@dataclass
class Starting:
    """A StartExecution call about to be made; unresolved ones are the unconfirmed starts."""

    name: str
    at: str
    batch_size: int
    worker: int
    seq: int


@dataclass
class Finished:
    name: str
    status: str
    stopped_at: str
    duration_ms: float


@dataclass
class Manifest:
    run_id: str
    label: str
    target: str
    profile: str
    parameters: dict[str, Any]
    stack_outputs: dict[str, Any]
    endpoint_url: str | None
    region: str
    started_at: str
    stopped_at: str | None = None
    status: str = "running"  # running | complete | interrupted | crashed
    workers: int = 1
    completion_tracking: bool = True
    locust: dict[str, str] = field(default_factory=dict)
    executions: list[Started] = field(default_factory=list)
    failed_starts: list[FailedStart] = field(default_factory=list)
    unconfirmed: list[Starting] = field(default_factory=list)
    finished: list[Finished] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data = {"schema": SCHEMA, "version": VERSION, **data}
        data["summary"] = {
            "started": len(self.executions),
            "failed_starts": len(self.failed_starts),
            "unconfirmed_starts": len(self.unconfirmed),
            "finished": len(self.finished),
            "tickets": sum(e.batch_size for e in self.executions),
            "by_status": _count(f.status for f in self.finished),
        }
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("schema") != SCHEMA:
            raise UserError("this is not a scale-or-fail run manifest", "point at runs/<run_id>/manifest.json")
        if data.get("version") != VERSION:
            raise UserError(
                f"run manifest version {data.get('version')} is not supported (this tool reads {VERSION})",
                "re-run the load with this version of scale-or-fail",
            )
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["executions"] = [Started(**e) for e in data.get("executions", [])]
        fields["failed_starts"] = [FailedStart(**e) for e in data.get("failed_starts", [])]
        fields["finished"] = [Finished(**e) for e in data.get("finished", [])]
        fields["unconfirmed"] = [Starting(**e) for e in data.get("unconfirmed", [])]
        return cls(**fields)


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


class Journal:
    """Append-only record of a load process's starts, flushed at every line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def log(self, kind: str, record: Any) -> None:
        with self._lock:
            self._file.write(json.dumps({"kind": kind, **asdict(record)}) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class Recorder:
    """Keeps the manifest of the running load; safe to call from any greenlet or thread."""

    def __init__(self, run_dir: Path, manifest: Manifest) -> None:
        self.run_dir = run_dir
        self.manifest = manifest
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self._finished: set[str] = set()
        self._pending: dict[str, Starting] = {}
        self._journal = Journal(run_dir / "journal.jsonl")
        self.write()

    def _log(self, kind: str, record: Any) -> None:
        self._journal.log(kind, record)

    def starting(self, record: Starting) -> None:
        with self._lock:
            self._pending[record.name] = record
            self._log("starting", record)

    def started(self, records: list[Started]) -> None:
        with self._lock:
            for record in records:
                self._pending.pop(record.name, None)
                if record.name not in self._names:
                    self._names.add(record.name)
                    self.manifest.executions.append(record)
                    self._log("started", record)

    def failed(self, records: list[FailedStart]) -> None:
        with self._lock:
            for record in records:
                self._pending.pop(record.name, None)
                self.manifest.failed_starts.append(record)
                self._log("failed", record)

    def unconfirmed(self, records: list[Starting]) -> None:
        """Starts a load process could not confirm (it stopped while the call was in flight)."""
        with self._lock:
            known = {u.name for u in self.manifest.unconfirmed}
            for record in records:
                if record.name not in self._names and record.name not in known:
                    self.manifest.unconfirmed.append(record)
                    self._log("unconfirmed", record)

    def finished(self, records: list[Finished]) -> None:
        with self._lock:
            for record in records:
                if record.name not in self._finished:
                    self._finished.add(record.name)
                    self.manifest.finished.append(record)
                    self._log("finished", record)

    @property
    def counts(self) -> tuple[int, int, int]:
        with self._lock:
            return len(self.manifest.executions), len(self.manifest.failed_starts), len(self.manifest.finished)

    def write(self, status: str | None = None) -> Path:
        with self._lock:
            if status is not None:
                self.manifest.status = status
                self.manifest.stopped_at = now_iso()
            self.manifest.executions.sort(key=lambda e: e.seq)
            data = self.manifest.to_json()
        path = self.run_dir / "manifest.json"
        temporary = path.with_suffix(f".tmp{os.getpid()}")
        temporary.write_text(json.dumps(data, indent=2) + "\n")
        temporary.replace(path)
        return path

    def close(self, status: str) -> Path:
        """The final manifest; calls still in flight become unconfirmed starts (harvest resolves them)."""
        with self._lock:
            known = {u.name for u in self.manifest.unconfirmed}
            self.manifest.unconfirmed += [p for name, p in self._pending.items() if name not in known]
        path = self.write(status)
        self._journal.close()
        return path


def load(path: Path) -> Manifest:
    """Read a manifest (a run directory or its manifest.json), merging the journal back in."""
    manifest_path = path / "manifest.json" if path.is_dir() else path
    if not manifest_path.exists():
        raise UserError(f"no run manifest at {manifest_path}", "list runs with `ls runs/`, or run a load first")
    try:
        manifest = Manifest.from_json(json.loads(manifest_path.read_text()))
    except ValueError as error:
        raise UserError(
            f"{manifest_path} is not valid JSON ({error})", "it may be truncated; see journal.jsonl"
        ) from None
    for journal in sorted(manifest_path.parent.glob("journal*.jsonl")):
        merge_journal(manifest, journal)
    return manifest


def merge_journal(manifest: Manifest, journal: Path) -> int:
    """Add journal records the manifest misses (a crash after the last write); returns how many."""
    names = {e.name for e in manifest.executions}
    failed = {(f.name, f.at) for f in manifest.failed_starts}
    failed_names = {f.name for f in manifest.failed_starts}
    finished = {f.name for f in manifest.finished}
    unconfirmed = {u.name for u in manifest.unconfirmed}
    starting: dict[str, Starting] = {}
    added = 0
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by the crash
        kind = record.pop("kind", None)
        if kind in ("starting", "unconfirmed"):
            starting[record["name"]] = Starting(**record)
        elif kind == "started" and record["name"] not in names:
            manifest.executions.append(Started(**record))
            names.add(record["name"])
            added += 1
        elif kind == "failed" and (record["name"], record["at"]) not in failed:
            manifest.failed_starts.append(FailedStart(**record))
            failed_names.add(record["name"])
            added += 1
        elif kind == "finished" and record["name"] not in finished:
            manifest.finished.append(Finished(**record))
            finished.add(record["name"])
            added += 1
    for name, record in starting.items():
        if name not in names and name not in failed_names and name not in unconfirmed:
            manifest.unconfirmed.append(record)
            added += 1
    manifest.unconfirmed = [u for u in manifest.unconfirmed if u.name not in names and u.name not in failed_names]
    if added and manifest.status == "running":
        manifest.status = "crashed"
        manifest.notes.append(f"{added} records recovered from journal.jsonl (the run ended without a final write)")
    manifest.executions.sort(key=lambda e: e.seq)
    return added
