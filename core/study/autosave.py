"""Crash recovery of the working segmentation (no Qt): one compressed file per study, written
atomically into the user data folder, offered back when the study is opened again.

A recovery file holds the uint8 working label, the lesion review states
(:attr:`core.study.editing.LabelEditor.review`) and the study's identity: for a DICOM series its
study and series UIDs and a digest of its instance UIDs, for a volume file its path, size and
modification time, otherwise (dataset case, demo) its name and a digest of a subsample of the CT;
always the grid's shape and spacing. A file whose identity or grid differs from the open study's is
never applied: the same path may now hold another scan, and a label on the wrong grid would be
silently wrong. Nothing is ever written next to the study (users' DICOM folders are read-only to us).

The slot of a study (its file name) depends only on what names the study (UIDs, path, name), so a
newer save of the same study replaces the older one, and a stale file of a changed volume file is
replaced by the first save of the new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import platformdirs

from ..runtime.atomic import atomic_open
from ..runtime.errors import LiverSegError
from ..runtime.labels import TUMOUR
from ..runtime.summary import LesionSummary
from .session import Segmented

log = logging.getLogger(__name__)
FORMAT = 1
SUFFIX = ".recovery.npz"


class RecoveryMismatch(LiverSegError):
    """A recovery file that does not belong to the open study (identity or grid differ) or is unreadable."""


def autosave_dir() -> Path:
    """Where recovery files live: ``autosave/`` in the user data folder (platformdirs)."""
    return Path(platformdirs.user_data_dir("LiverSegStudio", appauthor=False)) / "autosave"


@dataclass(frozen=True)
class StudyIdentity:
    """What tells one study from another, for recovery.

    Attributes:
        kind: "dicom", "file" or "named" (dataset case, demo).
        names: what names the study (UIDs, path or name): decides the slot.
        checks: what must also be equal for a recovery to apply (instance digest, size and time,
            CT digest).
        shape: the grid (z, y, x) in voxels.
        spacing: (z, y, x) mm, rounded to the micrometre.
        title: what the user calls it (shown in the offer).
    """

    kind: str
    names: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    shape: tuple[int, int, int] = (0, 0, 0)
    spacing: tuple[float, float, float] = (0.0, 0.0, 0.0)
    title: str = ""

    @property
    def slot(self) -> str:
        """The recovery file's stem: a digest of the kind and the names."""
        text = json.dumps([self.kind, self.names], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def matches(self, other: StudyIdentity) -> bool:
        """Same study on the same grid (the title may differ)."""
        return (self.kind, self.names, self.checks, tuple(self.shape), tuple(self.spacing)) == \
            (other.kind, other.names, other.checks, tuple(other.shape), tuple(other.spacing))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> StudyIdentity:
        return cls(str(d["kind"]), dict(d.get("names") or {}), dict(d.get("checks") or {}),
                   _ints3(d["shape"]), _floats3(d["spacing"]), str(d.get("title", "")))


def _ints3(values) -> tuple[int, int, int]:
    a, b, c = (int(v) for v in values)
    return a, b, c


def _floats3(values) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return a, b, c


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def study_identity(study, source: str = "") -> StudyIdentity:
    """The identity of ``study`` (:class:`core.study.study.Study`) opened from ``source`` (the
    session's source: a DICOM folder, a volume file, or "" for a dataset case or the demo).
    Cheap: file metadata and UIDs, or a digest of a 1/256 subsample of the CT."""
    shape = _ints3(study.shape)
    spacing = _floats3(round(float(s), 6) for s in study.spacing)
    meta = study.volume.meta if study.volume is not None else None
    grid = study.file_grid
    if grid is not None:
        path = os.path.abspath(grid.path)
        st = os.stat(path)
        return StudyIdentity("file", {"path": path}, {"size": st.st_size, "mtime_ns": st.st_mtime_ns},
                             shape, spacing, study.name or path)
    if meta is not None and meta.series_uid:
        names = {"study_uid": meta.study_uid, "series_uid": meta.series_uid}
        checks = {"instances": _digest("\n".join(meta.sop_instance_uids).encode())}
        return StudyIdentity("dicom", names, checks, shape, spacing, study.name or meta.description)
    name = study.name or source
    sample = np.ascontiguousarray(study.hu[::4, ::8, ::8])
    names = {"name": name, "source": os.path.abspath(source) if source else ""}
    return StudyIdentity("named", names, {"ct": _digest(sample.tobytes())}, shape, spacing, name)


@dataclass(frozen=True)
class RecoveryInfo:
    """A recovery file found: where, of which study, and when it was written (seconds since the epoch)."""

    path: Path
    identity: StudyIdentity
    saved_at: float

    def when(self) -> str:
        """The save time in local time, e.g. "2024-05-02 14:31"."""
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))


@dataclass
class Recovery:
    """A recovery read back: the working label (uint8 [Z, Y, X]) and the review states, keyed by
    flat anchor index like :attr:`core.study.editing.LabelEditor.review`."""

    info: RecoveryInfo
    label: np.ndarray
    review: dict


def slot_path(identity: StudyIdentity, folder: Path | None = None) -> Path:
    return Path(folder or autosave_dir()) / (identity.slot + SUFFIX)


def save(identity: StudyIdentity, label: np.ndarray, review: dict, folder: Path | None = None,
         progress=None, cancel=None) -> Path:
    """Write the recovery of ``identity`` (``label`` and ``review``) into its slot, atomically:
    a crash while writing leaves the previous recovery whole. Returns the file."""
    label = np.asarray(label)
    if label.dtype != np.uint8 or tuple(label.shape) != tuple(identity.shape):
        raise ValueError(f"label {label.dtype} {label.shape} does not fit the study's grid {identity.shape}")
    meta = {"format": FORMAT, "saved_at": time.time(), "identity": identity.to_json(),
            "review": {str(int(k)): _entry_json(v) for k, v in review.items()}}
    blob = np.frombuffer(json.dumps(meta, default=_plain).encode("utf-8"), np.uint8)
    path = slot_path(identity, folder)
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, label=label, meta=blob)
    return path


def _entry_json(entry: dict) -> dict:
    """A review entry as JSON: its lesion record in the reports' form."""
    lesion = entry.get("lesion")
    return {**entry, "lesion": lesion.to_json()} if isinstance(lesion, LesionSummary) else dict(entry)


def _entry_read(entry: dict) -> dict:
    """A review entry read back: its lesion record a :class:`LesionSummary` again."""
    lesion = entry.get("lesion")
    return {**entry, "lesion": LesionSummary.from_json(lesion)} if isinstance(lesion, dict) else dict(entry)


def _plain(value):
    """numpy scalars and arrays in a lesion record, as JSON."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _read_meta(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise RecoveryMismatch(f"{path}: unreadable recovery file ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RecoveryMismatch(f"{path}: unknown recovery format")
    return meta


def read_info(path: str | os.PathLike) -> RecoveryInfo:
    """The identity and time of a recovery file, without decompressing its label."""
    path = Path(path)
    meta = _read_meta(path)
    try:
        return RecoveryInfo(path, StudyIdentity.from_json(meta["identity"]), float(meta["saved_at"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise RecoveryMismatch(f"{path}: unreadable recovery identity ({exc})") from exc


def find(identity: StudyIdentity, folder: Path | None = None) -> RecoveryInfo | None:
    """The recovery of this study, or None: none saved, unreadable, or of another study or grid
    in its slot (a volume file changed since, another series under the same name)."""
    path = slot_path(identity, folder)
    if not path.exists():
        return None
    try:
        info = read_info(path)
    except RecoveryMismatch as exc:
        log.warning("%s", exc)
        return None
    return info if info.identity.matches(identity) else None


def load(identity: StudyIdentity, folder: Path | None = None, progress=None, cancel=None) -> Recovery:
    """Read back the recovery of ``identity``, checked: the identity and grid must match and the
    label must be a uint8 volume of that grid holding only background, liver and tumour.

    Raises:
        RecoveryMismatch: none, unreadable, or not this study's.
    """
    info = find(identity, folder)
    if info is None:
        raise RecoveryMismatch(f"no recovery of {identity.title or 'this study'} on this grid")
    try:
        with np.load(info.path, allow_pickle=False) as z:
            label = z["label"]
            meta = json.loads(z["meta"].tobytes().decode("utf-8"))
        review = {int(k): v for k, v in meta["review"].items()}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise RecoveryMismatch(f"{info.path}: unreadable recovery file ({exc})") from exc
    if label.dtype != np.uint8 or tuple(label.shape) != tuple(identity.shape):
        raise RecoveryMismatch(f"{info.path}: label {label.dtype} {label.shape} is not on the grid {identity.shape}")
    if label.size and int(label.max()) > TUMOUR:
        raise RecoveryMismatch(f"{info.path}: label values beyond tumour ({int(label.max())})")
    if any(not 0 <= k < label.size for k in review):
        raise RecoveryMismatch(f"{info.path}: review anchors outside the grid")
    try:
        review = {k: _entry_read(v) for k, v in review.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RecoveryMismatch(f"{info.path}: unreadable review states ({exc!r})") from exc
    return Recovery(info, np.ascontiguousarray(label), review)


def as_segmented(recovery: Recovery):
    """The recovery as a :class:`core.study.session.Segmented` to adopt (label and review states)."""
    return Segmented(recovery.label, {"engines": {}, "device": f"recovered from {recovery.info.when()}"},
                     review=dict(recovery.review))


def discard(identity: StudyIdentity, folder: Path | None = None) -> bool:
    """Remove the recovery of this study's slot; True when there was one."""
    try:
        slot_path(identity, folder).unlink()
        return True
    except FileNotFoundError:
        return False


def list_recoveries(folder: Path | None = None) -> list[RecoveryInfo]:
    """Every readable recovery file, newest first (for the start of the app)."""
    root = Path(folder or autosave_dir())
    found = []
    for p in root.glob("*" + SUFFIX) if root.is_dir() else ():
        try:
            found.append(read_info(p))
        except RecoveryMismatch as exc:
            log.warning("%s", exc)
    return sorted(found, key=lambda i: -i.saved_at)
