"""Reading untrusted zip archives safely, in memory.

Nothing is ever extracted to disk. Every member name is checked (no absolute
paths, no ``..``, no drive letters, no symlinks, no duplicates), every size is
bounded before and while reading (zip bombs), and archives nest at most one
level (an archive inside an archive, like 3D-IRCADb-01's patient zips).
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from ..runtime.errors import ArchiveError, one_line

MAX_MEMBER = 256 << 20  # one DICOM file
MAX_INNER_ARCHIVE = 2 << 30  # one patient zip inside the database zip
MAX_TOTAL = 16 << 30  # all members of one archive, uncompressed
MAX_MEMBERS = 200_000
MAX_DEPTH = 2  # the outer archive and the archives inside it


def unsafe_reason(name: str) -> str:
    """Why a member name is unsafe, or "" when it is fine."""
    if not name or "\x00" in name:
        return "an empty or NUL-containing name"
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(n).parts:
        return "a '..' path component"
    return ""


@dataclass
class SafeZip:
    """A validated zip archive.

    Args:
        source: a file path, or the bytes of an archive found inside another.
        name: how to name it in messages.
        depth: 1 for a file on disk, 2 for an archive inside it.
    """

    source: str | bytes
    name: str
    depth: int = 1

    def __post_init__(self):
        if self.depth > MAX_DEPTH:
            raise ArchiveError(f"{self.name}: archives nested deeper than {MAX_DEPTH} levels")
        try:
            fh: BinaryIO = io.BytesIO(self.source) if isinstance(self.source, bytes) else open(self.source, "rb")
            self.zf = zipfile.ZipFile(fh)
        except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            # NotImplementedError: "zip file version 9.8" (found by the atheris fuzz test)
            raise ArchiveError(f"{self.name}: not a readable zip archive ({one_line(exc, 100)})") from None
        infos = self.zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(f"{self.name}: {len(infos)} members, more than {MAX_MEMBERS}")
        seen: set[str] = set()
        total = 0
        for info in infos:
            reason = unsafe_reason(info.filename)
            if reason:
                raise ArchiveError(f"{self.name}: member {info.filename!r} has {reason}; refused")
            key = info.filename.replace("\\", "/").rstrip("/")
            if key in seen:
                raise ArchiveError(f"{self.name}: duplicate member name {info.filename!r}; refused")
            seen.add(key)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ArchiveError(f"{self.name}: member {info.filename!r} is a symbolic link; refused")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{self.name}: member {info.filename!r} is encrypted")
            total += info.file_size
        if total > MAX_TOTAL:
            raise ArchiveError(f"{self.name}: members would expand to {total / 2**30:.1f} GiB "
                               f"(limit {MAX_TOTAL / 2**30:.0f} GiB); refused as a zip bomb")
        self.infos = [i for i in infos if not i.is_dir()]

    def names(self) -> list[str]:
        return [i.filename for i in self.infos]

    def read(self, info: zipfile.ZipInfo, limit: int | None = None) -> bytes:
        """A member's bytes, refusing more than ``limit`` (default MAX_MEMBER) declared or actual bytes."""
        limit = MAX_MEMBER if limit is None else limit
        if info.file_size > limit:
            raise ArchiveError(f"{self.name}: member {info.filename!r} declares {info.file_size} bytes "
                               f"(limit {limit}); refused as a zip bomb")
        try:
            with self.zf.open(info) as fh:
                data = fh.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise ArchiveError(f"{self.name}: member {info.filename!r} is corrupt ({one_line(exc, 100)})") from None
        except Exception as exc:  # zlib.error and friends
            raise ArchiveError(f"{self.name}: member {info.filename!r} is corrupt ({one_line(exc, 100)})") from None
        if len(data) > limit:
            raise ArchiveError(f"{self.name}: member {info.filename!r} expands beyond {limit} bytes; refused")
        return data

    def open_inner(self, info: zipfile.ZipInfo) -> SafeZip:
        """An archive stored inside this one, read into memory and validated."""
        return SafeZip(self.read(info, MAX_INNER_ARCHIVE), f"{self.name}::{info.filename}", self.depth + 1)

    def close(self) -> None:
        self.zf.close()
