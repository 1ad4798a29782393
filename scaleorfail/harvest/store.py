"""Where a run's harvest record is kept (runs/<run_id>/harvest.json), read and written atomically."""

from __future__ import annotations

from pathlib import Path

from scaleorfail.errors import UserError
from scaleorfail.record import codec
from scaleorfail.record.model import HarvestRecord


def harvest_path(run_dir: Path) -> Path:
    return run_dir / "harvest.json"


def read_any(run_dir: Path) -> HarvestRecord | None:
    """The stored record of a run, final or partial (None when absent, damaged or of another schema/version)."""
    try:
        text = harvest_path(run_dir).read_text()
    except OSError:
        return None
    return codec.loads(text)


def read_cached(run_dir: Path) -> HarvestRecord | None:
    """The stored record of a run, only if it is final (nothing of the run was still going)."""
    record = read_any(run_dir)
    return record if record is not None and record.final else None


def write(run_dir: Path, record: HarvestRecord) -> Path:
    path = harvest_path(run_dir)
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(codec.dumps(record))
        temporary.replace(path)
    except OSError as error:
        raise UserError(
            f"cannot write {path}: {error.strerror or error}", "make the run's folder writable (or copy the run)"
        ) from None
    return path
