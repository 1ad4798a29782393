"""Deployment packages: what a Lambda zip may hold before the emulator accepts it.

Checked at CreateFunction / UpdateFunctionCode (so a bad package is refused with
``InvalidParameterValueException`` at once, as Lambda refuses it) and again before a
package is unpacked: a member with an absolute path, a ``..`` component, a drive letter
or a symbolic link could write or read outside the unpacked folder.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import PurePosixPath, PureWindowsPath

MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda's limit for a function's unzipped code
MAX_MEMBERS = 100_000


class PackageError(ValueError):
    """The package is refused; the message says why (Lambda's wording where it has one)."""


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why one member is unsafe, or None."""
    name = info.filename
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return f"{name!r} is an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return f"{name!r} leaves the package folder (..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"{name!r} is a symbolic link"
    return None


def validate(code: bytes) -> None:
    """Raise PackageError when the zip cannot be unpacked safely (or is no zip)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(code))
    except (zipfile.BadZipFile, ValueError):
        raise PackageError("Could not unzip uploaded file. Please check your file, then try to upload again.") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise PackageError(f"the deployment package has {len(members)} files; the emulator accepts {MAX_MEMBERS}")
        total = 0
        for info in members:
            problem = member_problem(info)
            if problem is not None:
                raise PackageError(f"unsafe deployment package: {problem}")
            total += info.file_size
        if total > MAX_UNZIPPED_BYTES:
            raise PackageError(
                f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes (this package: {total} bytes)"
            )
