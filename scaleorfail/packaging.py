"""Build the Lambda deployment zip the way Terraform's ``archive_file`` data source does,
and the SageMaker model bundle (model.tar.gz) of the endpoint variant.

The archive is deterministic (sorted entries, fixed timestamps, fixed permissions),
so the same sources always give the same SHA-256 and a re-deploy only changes code
when the code changed.
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import hashlib
import io
import os
import tarfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
DEFAULT_EXCLUDES = ("**/__pycache__/**", "**/*.pyc")


@dataclass(frozen=True)
class Archive:
    path: Path
    size: int
    sha256_hex: str
    base64sha256: str
    files: tuple[str, ...]


def _temporary(output_path: Path) -> Path:
    """A private file next to the output: two builds at once (two deploys) never share one."""
    return output_path.with_name(f"{output_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _described(path: Path, files: list[str]) -> Archive:
    data = path.read_bytes()
    digest = hashlib.sha256(data).digest()
    return Archive(
        path=path,
        size=len(data),
        sha256_hex=digest.hex(),
        base64sha256=base64.b64encode(digest).decode("ascii"),
        files=tuple(files),
    )


def excluded(relative: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        candidates = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(relative, p) for p in candidates):
            return True
    return False


def source_files(source_dir: Path, excludes: tuple[str, ...] = DEFAULT_EXCLUDES) -> list[str]:
    if not source_dir.is_dir():
        raise FileNotFoundError(f"no source directory at {source_dir}")
    found = []
    for folder, dirs, files in os.walk(source_dir):
        dirs.sort()
        for name in files:
            relative = Path(folder, name).relative_to(source_dir).as_posix()
            if not excluded(relative, excludes):
                found.append(relative)
    return sorted(found)


def build_zip(source_dir: Path, output_path: Path, excludes: tuple[str, ...] = DEFAULT_EXCLUDES) -> Archive:
    """Zip every file under source_dir (minus excludes) into output_path."""
    files = source_files(source_dir, excludes)
    if not files:
        raise FileNotFoundError(f"{source_dir} holds no files to package")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(output_path)
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            info = zipfile.ZipInfo(relative, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (source_dir / relative).read_bytes())
    temporary.replace(output_path)
    return _described(output_path, files)


MODEL_ENTRY = "inference.py"


def build_model_bundle(source_dir: Path, output_path: Path, excludes: tuple[str, ...] = DEFAULT_EXCLUDES) -> Archive:
    """The SageMaker model bundle: ``code/inference.py`` and ``code/pipeline/...`` in a tar.gz.

    SageMaker's framework containers unpack model.tar.gz into /opt/ml/model and run the
    script named by SAGEMAKER_PROGRAM from its ``code/`` folder. Deterministic like the
    zip: sorted entries, fixed times, owners and modes, no gzip timestamp.
    """
    files = [f for f in source_files(source_dir, excludes) if f == MODEL_ENTRY or f.startswith("pipeline/")]
    if MODEL_ENTRY not in files:
        raise FileNotFoundError(f"{source_dir / MODEL_ENTRY} is missing: the model bundle needs its entry script")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(output_path)
    with (
        temporary.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for relative in files:
            data = (source_dir / relative).read_bytes()
            info = tarfile.TarInfo(f"code/{relative}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    temporary.replace(output_path)
    return _described(output_path, [f"code/{f}" for f in files])
