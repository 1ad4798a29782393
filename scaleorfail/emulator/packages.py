"""Deployment packages: what a Lambda zip may hold before the emulator accepts it.

Checked at CreateFunction / UpdateFunctionCode (so a bad package is refused with
``InvalidParameterValueException`` at once, as Lambda refuses it) and again before a
package is unpacked: a member with an absolute path, a ``..`` component, a drive letter
or a symbolic link could write or read outside the unpacked folder.

Sizes are the members' real ones: each member is decompressed (nothing is written) and its
bytes counted against Lambda's 250 MB unzipped limit, stopping as soon as the limit is passed.
A zip whose headers declare 1 KB for a member that holds 300 MB is refused at upload - its
headers do not match its contents - instead of failing every Invoke with BadZipFile.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
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
        for info in members:
            problem = member_problem(info)
            if problem is not None:
                raise PackageError(f"unsafe deployment package: {problem}")
        total = 0
        for info in members:
            real = real_size(code, archive, info, MAX_UNZIPPED_BYTES - total)
            if real < 0:
                raise PackageError(
                    f"Could not unzip uploaded file: {info.filename!r} is damaged. Please check your file, then try "
                    "to upload again."
                )
            total += real
            if total > MAX_UNZIPPED_BYTES:
                raise PackageError(
                    f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes (this package unzips to more, "
                    f"counted while unzipping; the header of {info.filename!r} says {info.file_size:,} bytes)"
                )
            if real != info.file_size:
                raise PackageError(
                    f"Could not unzip uploaded file: the headers of {info.filename!r} say {info.file_size:,} bytes "
                    f"and it holds {real:,}. Please check your file, then try to upload again."
                )


CHUNK = 1024 * 1024
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length


def real_size(code: bytes, archive: zipfile.ZipFile, info: zipfile.ZipInfo, room: int) -> int:
    """The bytes a member really unzips to, counted while decompressing; stops past ``room`` (returns more)."""
    if info.is_dir():
        return info.file_size
    signature, name_length, extra_length = LOCAL_HEADER.unpack_from(code, info.header_offset)
    if signature != b"PK\x03\x04":
        raise PackageError("Could not unzip uploaded file. Please check your file, then try to upload again.")
    start = info.header_offset + LOCAL_HEADER.size + int(name_length) + int(extra_length)
    if info.compress_type == zipfile.ZIP_STORED:
        return min(info.compress_size, len(code) - start)
    if info.compress_type != zipfile.ZIP_DEFLATED:  # bzip2, lzma: zipfile's reader, which checks the CRC
        try:
            with archive.open(info) as member:
                return sum(len(chunk) for chunk in iter(lambda: member.read(CHUNK), b""))
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            return -1
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # the raw deflate stream, read to its own end
    produced = 0
    position = start
    pending = b""
    try:
        while not inflater.eof and produced <= room:
            if not pending:
                if position >= len(code):
                    return -1  # the stream is cut short
                pending = code[position : position + CHUNK]
                position += CHUNK
            produced += len(inflater.decompress(pending, max(1, room + 1 - produced)))
            pending = inflater.unconsumed_tail
    except zlib.error:
        return -1
    return produced
