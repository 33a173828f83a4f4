"""The retrieve cache: one folder per series, grouped by study, in the user's cache folder.

A series is downloaded into a ``.partial-*`` folder beside its final place and renamed into place
only when complete, with an ``entry.json`` naming its instances; so a transfer killed half-way
(Ctrl-C, ``kill -9``, a dropped network) leaves nothing that is used later, and the next
:meth:`RetrieveCache.clean` removes it. An entry is used only while the PACS still lists the same
instances (a series that changed is downloaded again). The cache keeps under a size limit by
removing the least recently used entries first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ..runtime.atomic import write_json

DEFAULT_LIMIT_GB = 20.0
ENTRY = "entry.json"
PARTIAL = ".partial-"
STALE_PARTIAL_S = 3600.0  # a partial folder this old belongs to no running transfer
_UID = re.compile(r"^[0-9.]{1,64}$")


def cache_root() -> Path:
    return Path(platformdirs.user_cache_dir("LiverSegStudio", appauthor=False)) / "pacs"


def uids_digest(sop_uids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(sop_uids)).encode()).hexdigest()


def _safe(uid: str) -> str:
    """A folder name for a UID (UIDs are digits and dots; anything else is hashed)."""
    return uid if _UID.match(uid) else "h" + hashlib.sha256(uid.encode()).hexdigest()[:32]


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    study_uid: str
    series_uid: str
    digest: str
    n_files: int
    bytes: int
    last_used: float


def _read_entry(folder: Path) -> CacheEntry | None:
    """A series folder's entry from its ``entry.json``; None when absent or unreadable."""
    try:
        meta = json.loads((folder / ENTRY).read_text(encoding="utf-8"))
        return CacheEntry(folder, str(meta["study_uid"]), str(meta["series_uid"]), str(meta["digest"]),
                          int(meta["n_files"]), int(meta["bytes"]), (folder / ENTRY).stat().st_mtime)
    except (OSError, ValueError, KeyError, TypeError):
        return None


class RetrieveCache:
    def __init__(self, root: os.PathLike | None = None, limit_gb: float = DEFAULT_LIMIT_GB):
        self.root = Path(root or cache_root())
        self.limit_bytes = int(limit_gb * 1024 ** 3)

    def series_dir(self, study_uid: str, series_uid: str) -> Path:
        return self.root / _safe(study_uid) / _safe(series_uid)

    def entry(self, study_uid: str, series_uid: str) -> CacheEntry | None:
        """The complete entry of a series, or None (absent, partial or unreadable)."""
        e = _read_entry(self.series_dir(study_uid, series_uid))
        return e if e is not None and (e.study_uid, e.series_uid) == (study_uid, series_uid) else None

    def lookup(self, study_uid: str, series_uid: str, sop_uids: Sequence[str] | None = None) -> Path | None:
        """The cached series' folder when complete and (given the PACS's current instances) unchanged;
        marks it used."""
        e = self.entry(study_uid, series_uid)
        if e is None or (sop_uids is not None and e.digest != uids_digest(sop_uids)):
            return None
        os.utime(e.path / ENTRY)
        return e.path

    def begin(self, study_uid: str, series_uid: str) -> Path:
        """A fresh partial folder to download into."""
        final = self.series_dir(study_uid, series_uid)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.parent / f"{PARTIAL}{final.name}-{uuid.uuid4().hex[:8]}"
        partial.mkdir()
        return partial

    def commit(self, partial: Path, study_uid: str, series_uid: str, sop_uids: Sequence[str],
               source: str = "") -> Path:
        """Make a finished download the series' entry (replacing an older one) and keep the cache
        under its limit."""
        files = [f for f in partial.iterdir() if f.is_file()]
        write_json(partial / ENTRY, {"study_uid": study_uid, "series_uid": series_uid,
                                     "digest": uids_digest(sop_uids), "n_files": len(files),
                                     "bytes": sum(f.stat().st_size for f in files), "source": source,
                                     "retrieved": time.strftime("%Y-%m-%dT%H:%M:%S")})
        final = self.series_dir(study_uid, series_uid)
        if final.exists():  # the series changed on the PACS: the old copy goes
            old = final.parent / f"{PARTIAL}{final.name}-old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(partial, final)
        self.evict(keep=final)
        return final

    def discard(self, partial: Path) -> None:
        shutil.rmtree(partial, ignore_errors=True)

    def entries(self) -> list[CacheEntry]:
        out: list[CacheEntry] = []
        if not self.root.is_dir():
            return out
        for study in self.root.iterdir():
            if not study.is_dir():
                continue
            for series in study.iterdir():
                if series.name.startswith(PARTIAL) or not series.is_dir():
                    continue
                e = _read_entry(series)
                if e is not None and e.path == self.series_dir(e.study_uid, e.series_uid):
                    out.append(e)
        return out

    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.entries())

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove least recently used entries until the cache is under its limit (never ``keep``)."""
        removed: list[Path] = []
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        total = sum(e.bytes for e in entries)
        for e in entries:
            if total <= self.limit_bytes:
                break
            if keep is not None and e.path == Path(keep):
                continue
            shutil.rmtree(e.path, ignore_errors=True)
            total -= e.bytes
            removed.append(e.path)
        return removed

    def clean(self, max_age_s: float = STALE_PARTIAL_S) -> list[Path]:
        """Remove partial folders older than ``max_age_s`` (left by killed transfers), and folders
        without a readable entry."""
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        now = time.time()
        for study in self.root.iterdir():
            if not study.is_dir():
                continue
            for child in study.iterdir():
                if not child.is_dir():
                    continue
                stale = now - child.stat().st_mtime > max_age_s
                broken = not child.name.startswith(PARTIAL) and not (child / ENTRY).is_file()
                if (child.name.startswith(PARTIAL) or broken) and stale:
                    shutil.rmtree(child, ignore_errors=True)
                    removed.append(child)
        return removed
