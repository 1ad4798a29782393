"""The run manifest: what a load run was asked to do and every execution it started.

The contract between the load harness (:mod:`scaleorfail.load`, which writes it through
:class:`Recorder`) and the harvest (which reads it with :func:`load`); a failed start is
the harvest record's :class:`~scaleorfail.record.model.FailedStart`.

`runs/<run_id>/manifest.json` (schema ``scale-or-fail/run-manifest``, version 1) is
rewritten atomically while the run goes on and at its end. Every start, failed start and
observed completion is also appended to `runs/<run_id>/journal.jsonl` and flushed at
once, so that a crash between two manifest writes loses nothing: :func:`load` merges
the journal back in.

Status: ``running`` while the harness lives (``harness`` names its pid and host and
carries a heartbeat, rewritten every couple of seconds), then ``complete``,
``interrupted`` (Ctrl+C / SIGTERM), ``failed`` (the harness stopped itself: ``failure``
says why, e.g. the emulator went away) or ``crashed`` (the harness died without writing
an end state - found by :func:`load` from the journal or a dead harness).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaleorfail.errors import UserError
from scaleorfail.record.model import FailedStart
from scaleorfail.record.pace import StartPace, measure

SCHEMA = "scale-or-fail/run-manifest"
VERSION = 1
HEARTBEAT_STALE_S = 120.0  # a running manifest not rewritten for this long, by a harness on another host: crashed
STATUSES = ("running", "complete", "interrupted", "failed", "crashed")


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
    status: str = "running"  # running | complete | interrupted | failed | crashed
    workers: int = 1
    completion_tracking: bool = True
    locust: dict[str, str] = field(default_factory=dict)
    executions: list[Started] = field(default_factory=list)
    failed_starts: list[FailedStart] = field(default_factory=list)
    unconfirmed: list[Starting] = field(default_factory=list)
    finished: list[Finished] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    emulator_instance: str | None = None  # local target: the emulator instance the run started on
    harness: dict[str, Any] = field(default_factory=dict)  # pid, host, heartbeat_at of the coordinator
    failure: dict[str, Any] | None = None  # status failed: kind, message, at

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
        pace = self.start_pace()
        if pace is not None:
            data["summary"]["start_pace"] = {**asdict(pace), "short": pace.short}
        return data

    def start_pace(self) -> StartPace | None:
        """The achieved start rate against the asked one (None: a single batch, or an unknown plan)."""
        planned = self.parameters.get("executions_planned")
        duration = self.parameters.get("duration")  # the profile's, resolved by the harness
        if not isinstance(planned, int) or not isinstance(duration, int | float) or self.profile == "single-batch":
            return None
        return measure(
            planned,
            float(duration),
            [(e.started_at, e.latency_ms) for e in self.executions],
            [f.at for f in self.failed_starts],
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("schema") != SCHEMA:
            raise UserError("this is not a scale-or-fail run manifest", "point at runs/<run_id>/manifest.json")
        if data.get("version") != VERSION:
            raise UserError(
                f"run manifest version {data.get('version')} is not supported (this tool reads {VERSION})",
                "re-run the load with this version of scale-or-fail",
            )
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        missing = [f.name for f in fields(cls) if f.name not in known and _required(f)]
        if missing:
            raise UserError(f"the run manifest has no {missing[0]!r} field", "it is damaged; see its journal.jsonl")
        for key, kind in (("run_id", str), ("target", str), ("started_at", str), ("status", str)):
            if not isinstance(known.get(key), kind):
                raise UserError(f"the run manifest's {key!r} is not a {kind.__name__}", "it is damaged")
        for key in ("parameters", "stack_outputs"):
            if not isinstance(known.get(key), dict):
                raise UserError(f"the run manifest's {key!r} is not an object", "it is damaged")
        known["executions"] = records(Started, data.get("executions", []), "executions")
        known["failed_starts"] = records(FailedStart, data.get("failed_starts", []), "failed_starts")
        known["finished"] = records(Finished, data.get("finished", []), "finished")
        known["unconfirmed"] = records(Starting, data.get("unconfirmed", []), "unconfirmed")
        for key, default in (("notes", []), ("harness", {})):
            if not isinstance(known.get(key, default), type(default)):
                known[key] = default
        return cls(**known)


def _required(item: Any) -> bool:
    from dataclasses import MISSING

    return bool(item.default is MISSING and item.default_factory is MISSING)


TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float)}


def record(kind: type[Any], data: Any) -> Any:
    """One journal/manifest record, checked: unknown keys ignored, missing or mistyped ones refused."""
    if not isinstance(data, dict):
        raise ValueError(f"a {kind.__name__} record must be an object")
    values: dict[str, Any] = {}
    for item in fields(kind):
        if item.name not in data:
            raise ValueError(f"a {kind.__name__} record has no {item.name!r}")
        value = data[item.name]
        allowed = TYPES.get(str(item.type), (object,))
        if not isinstance(value, allowed) or isinstance(value, bool):
            raise ValueError(f"{kind.__name__}.{item.name} is {type(value).__name__}, not {item.type}")
        values[item.name] = value
    return kind(**values)


def records(kind: type[Any], rows: Any, where: str) -> list[Any]:
    if not isinstance(rows, list):
        raise UserError(f"the run manifest's {where!r} is not a list", "it is damaged; see its journal.jsonl")
    out = []
    for index, row in enumerate(rows):
        try:
            out.append(record(kind, row))
        except ValueError as error:
            raise UserError(
                f"the run manifest's {where}[{index}] is damaged: {error}", "see its journal.jsonl"
            ) from None
    return out


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def storage_message(run_dir: Path, error: OSError) -> UserError:
    """One line for a run directory that cannot be written any more (a full disk, a lost mount ...)."""
    return UserError(
        f"cannot write the run's records in {run_dir}: {error.strerror or error} (errno {error.errno}); the run "
        "stopped, with the end state written where anything could be",
        "free space on that disk (or choose another --run-dir) and run the load again",
    )


class Journal:
    """Append-only record of a load process's starts, flushed at every line. A write that fails (a full
    disk) is kept as ``error`` and ends the journal: the harness stops the run on it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.error: OSError | None = None

    def log(self, kind: str, record: Any) -> None:
        with self._lock:
            if self.error is not None:
                return
            try:
                self._file.write(json.dumps({"kind": kind, **asdict(record)}) + "\n")
                self._file.flush()
            except OSError as error:
                self.error = error

    def close(self) -> None:
        with self._lock, contextlib.suppress(OSError):  # a full disk: what could be written was
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
        self._storage_error: OSError | None = None
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

    def start_latency_p50(self) -> float | None:
        """The median StartExecution latency of the last 200 starts (the progress line's who-is-slow)."""
        with self._lock:
            latencies = sorted(e.latency_ms for e in self.manifest.executions[-200:])
        return latencies[len(latencies) // 2] if latencies else None

    def absorb_journal(self, journal: Path) -> None:
        """Take in what a load process journalled (a worker that died before sending it all)."""
        try:
            entries, _ = journal_entries(journal)
        except OSError:
            return
        for entry in entries:
            if isinstance(entry, Started):
                self.started([entry])
            elif isinstance(entry, FailedStart):
                with self._lock:
                    known = {(f.name, f.at) for f in self.manifest.failed_starts}
                if (entry.name, entry.at) not in known:
                    self.failed([entry])
            elif isinstance(entry, Finished):
                self.finished([entry])
        with self._lock:
            resolved = self._names | {f.name for f in self.manifest.failed_starts}
            for entry in entries:
                if isinstance(entry, Starting) and entry.name not in resolved:
                    self._pending.setdefault(entry.name, entry)

    def fail(self, kind: str, message: str) -> None:
        """The harness stops itself: why (the end state is written by close("failed"))."""
        with self._lock:
            self.manifest.failure = {"kind": kind, "message": message, "at": now_iso()}
            self.manifest.notes.append(message)

    @property
    def storage_error(self) -> OSError | None:
        """The first write that failed (the journal's or the manifest's): the run cannot keep its records."""
        return self._storage_error or self._journal.error

    def write(self, status: str | None = None) -> Path:
        with self._lock:
            if status is not None:
                self.manifest.status = status
                self.manifest.stopped_at = now_iso()
            self.manifest.harness = {**harness_identity(), "heartbeat_at": now_iso()}
            self.manifest.executions.sort(key=lambda e: e.seq)
            data = self.manifest.to_json()
        path = self.run_dir / "manifest.json"
        temporary = path.with_suffix(f".tmp{os.getpid()}")
        try:
            temporary.write_text(json.dumps(data, indent=2) + "\n")
            temporary.replace(path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            self._storage_error = self._storage_error or error
            if status is not None:  # the end state: in place, compact (the old copy's room is freed first)
                with contextlib.suppress(OSError), path.open("r+", encoding="utf-8") as handle:
                    handle.truncate(0)
                    handle.write(json.dumps(data, separators=(",", ":")) + "\n")
        return path

    def close(self, status: str) -> Path:
        """The final manifest; calls still in flight become unconfirmed starts (harvest resolves them)."""
        with self._lock:
            known = {u.name for u in self.manifest.unconfirmed}
            self.manifest.unconfirmed += [p for name, p in self._pending.items() if name not in known]
        path = self.write(status)
        self._journal.close()
        return path


def harness_identity() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def harness_gone(manifest: Manifest, now: datetime | None = None) -> str | None:
    """Why a `running` manifest's harness is known to be dead (None: it may still be running)."""
    return harness_dead(manifest.harness or {}, now)


def harness_dead(harness: dict[str, Any], now: datetime | None = None) -> str | None:
    """Why the harness a manifest names (pid, host, heartbeat) is known to be dead (None: it may be running)."""
    pid, host = harness.get("pid"), harness.get("host")
    if isinstance(pid, int) and host == socket.gethostname():
        from scaleorfail.emulator.identity import alive

        if not alive(pid):
            return f"the harness (pid {pid})"
    beat = harness.get("heartbeat_at")
    if isinstance(beat, str):
        try:
            age = ((now or datetime.now(UTC)) - datetime.fromisoformat(beat)).total_seconds()
        except ValueError:
            return None
        if age > HEARTBEAT_STALE_S:  # another host's harness, or this pid reused by another program
            return f"the harness on {host} (silent for {age:.0f} s)"
    return None


def load(path: Path) -> Manifest:
    """Read a manifest (a run directory or its manifest.json), merging the journal back in."""
    manifest_path = path / "manifest.json" if path.is_dir() else path
    if not manifest_path.exists():
        raise UserError(f"no run manifest at {manifest_path}", "list runs with `ls runs/`, or run a load first")
    try:
        data = json.loads(manifest_path.read_text())
    except ValueError as error:
        raise UserError(
            f"{manifest_path} is not valid JSON ({error})", "it may be truncated; see journal.jsonl"
        ) from None
    except OSError as error:
        raise UserError(f"cannot read {manifest_path}: {error.strerror}", "check its permissions") from None
    if not isinstance(data, dict):
        raise UserError(f"{manifest_path} is not a run manifest (not a JSON object)", "it is damaged")
    try:
        manifest = Manifest.from_json(data)
    except UserError as error:
        raise UserError(f"{manifest_path}: {error.cause}", error.fix) from None
    added = sum(merge_journal(manifest, journal) for journal in sorted(manifest_path.parent.glob("journal*.jsonl")))
    if manifest.status == "running":
        # a live harness is still writing; without a harness record (older manifests), records only in the
        # journal mean it ended between two writes
        gone = harness_gone(manifest) if manifest.harness else ("the harness" if added else None)
        if gone is not None:
            manifest.status = "crashed"
            recovered = f"; {added} records recovered from the journal" if added else ""
            manifest.notes.append(f"{gone} ended without writing the run's end state{recovered}")
    return manifest


def claim_run_dir(path: Path, overwrite: bool) -> Path:
    """The folder of a new run: refused when a run already lives there (unless overwrite), and writable."""
    existing = (path / "manifest.json").exists() or any(path.glob("journal*.jsonl"))
    if existing and not overwrite:
        raise UserError(
            f"run {path.name} already exists ({path}): its evidence would be overwritten",
            "choose another --run-id (or none, for a generated one), or pass --overwrite to replace it",
        )
    try:
        if existing:
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UserError(
            f"cannot write the run directory {path}: {error.strerror or error}",
            "choose a writable --run-dir (or fix the folder's permissions)",
        ) from None
    return path


JOURNAL_KINDS: dict[str, type[Any]] = {
    "starting": Starting,
    "unconfirmed": Starting,
    "started": Started,
    "failed": FailedStart,
    "finished": Finished,
}


def journal_entries(journal: Path) -> tuple[list[Any], list[str]]:
    """The records of a journal, and one line per unreadable line (cut short by a crash, or damaged)."""
    entries: list[Any] = []
    problems: list[str] = []
    for number, line in enumerate(journal.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            kind = raw.get("kind") if isinstance(raw, dict) else None
            if kind not in JOURNAL_KINDS:
                raise ValueError(f"unknown record kind {kind!r}")
            entries.append(record(JOURNAL_KINDS[kind], raw))
        except ValueError as error:
            reason = f"not JSON ({error.msg})" if isinstance(error, json.JSONDecodeError) else str(error)
            problems.append(f"{journal.name} line {number}: {reason[:160]}; skipped")
    return entries, problems


def journal_problems(run_dir: Path) -> list[str]:
    """One line per damaged journal line of a run (its records are not in the harvest: say so)."""
    found: list[str] = []
    for journal in sorted(run_dir.glob("journal*.jsonl")):
        try:
            found += journal_entries(journal)[1]
        except OSError as error:
            found.append(f"{journal.name}: cannot be read ({error.strerror})")
    return found


def merge_journal(manifest: Manifest, journal: Path) -> int:
    """Add journal records the manifest misses (a crash after the last write); returns how many."""
    names = {e.name for e in manifest.executions}
    failed = {(f.name, f.at) for f in manifest.failed_starts}
    failed_names = {f.name for f in manifest.failed_starts}
    finished = {f.name for f in manifest.finished}
    unconfirmed = {u.name for u in manifest.unconfirmed}
    starting: dict[str, Starting] = {}
    added = 0
    try:
        entries, problems = journal_entries(journal)
    except OSError as error:
        manifest.notes.append(f"{journal.name} could not be read ({error.strerror}); its records are not merged")
        return 0
    for entry in entries:
        if isinstance(entry, Starting):
            starting[entry.name] = entry
        elif isinstance(entry, Started) and entry.name not in names:
            manifest.executions.append(entry)
            names.add(entry.name)
            added += 1
        elif isinstance(entry, FailedStart) and (entry.name, entry.at) not in failed:
            manifest.failed_starts.append(entry)
            failed_names.add(entry.name)
            added += 1
        elif isinstance(entry, Finished) and entry.name not in finished:
            manifest.finished.append(entry)
            finished.add(entry.name)
            added += 1
    manifest.notes += problems
    for name, pending in starting.items():
        if name not in names and name not in failed_names and name not in unconfirmed:
            manifest.unconfirmed.append(pending)
            added += 1
    manifest.unconfirmed = [u for u in manifest.unconfirmed if u.name not in names and u.name not in failed_names]
    manifest.executions.sort(key=lambda e: e.seq)
    return added
