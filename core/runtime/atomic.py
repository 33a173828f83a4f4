"""Atomic file writing: a temp file in the target folder, fsync, then rename.

A reader (or a process killed at any moment) therefore sees either the old
file or the complete new one, never a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def default_mode() -> int:
    """Permissions a new file gets normally (0o666 minus the umask); mkstemp would give 0o600."""
    return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", overwrite: bool = True) -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit rename it onto ``path``.

    Args:
        path: final file name.
        mode: "wb" or "w" (text, UTF-8).
        overwrite: when False, raise FileExistsError if ``path`` exists.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, default_mode())
        kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if not overwrite and path.exists():
            raise FileExistsError(f"{path}: already exists")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=32)
def _sha_of_version(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(path)


def cached_sha256(path: str | os.PathLike) -> str:
    """:func:`file_sha256`, computed once per file version (path, modification time, size) and process.

    Raises:
        OSError: the file cannot be read.
    """
    st = os.stat(path)
    return _sha_of_version(os.fspath(path), st.st_mtime_ns, st.st_size)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_json(path: str | os.PathLike, obj: object) -> None:
    with atomic_open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False)
        fh.write("\n")
