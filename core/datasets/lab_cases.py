"""A lab's own training cases: a corrected study stored as a case of a dataset folder.

After *Segment* and correction, the GUI's *File > Add to training set...* calls :func:`add_study`:
the open study's CT, the corrected label, its geometry and who corrected it become one ``ct`` case
(:mod:`.dataset`) of a lab dataset, by default :func:`default_lab_dataset` in the user data folder.
One case per study: :func:`study_case_id` is stable (DICOM: the study and series UIDs; a volume
file: its resolved path), so adding the same study again replaces its case, and only when asked to
(``replace=True``; else :class:`CaseExists`). The dataset never goes inside the source (a DICOM
folder, or the folder of a volume file): users' folders are only read.

:func:`import_lab_dataset` copies the cases of such a dataset into another one (``liverseg import``
of a lab dataset), so a lab can merge the datasets of several workstations. Qt-free; takes the
study duck-typed (``hu``, ``spacing``, ``origin``, ``direction``, ``name``, ``label``, ``volume``),
as :mod:`core.study` stands above this package.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import numpy as np
import platformdirs

from ..runtime.atomic import file_sha256
from ..runtime.errors import DatasetError
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from .dataset import FORMAT, MANIFEST, Case, list_cases, load_case, read_manifest, same_source, write_case

LAB_KIND = "lab"


class CaseExists(DatasetError):
    """The dataset already holds a case of this study; add it again with ``replace=True``."""

    def __init__(self, dataset: str | os.PathLike, case_id: str):
        super().__init__(f"{dataset}: already holds case {case_id} of this study (replace it to store the new labels)")
        self.dataset, self.case_id = str(dataset), case_id


def default_lab_dataset() -> Path:
    """``<user data folder>/datasets/lab``: where *Add to training set...* stores cases unless told otherwise."""
    return Path(platformdirs.user_data_dir("LiverSegStudio", appauthor=False)) / "datasets" / "lab"


def _hash(text: str, n: int = 10) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _safe(text: str, limit: int = 48) -> str:
    """``text`` as the start of a case id: letters, digits, '.', '_', '-'; starting with a letter or digit."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:limit].strip("._-")
    return s


def _meta(study):
    v = getattr(study, "volume", None)
    return v.meta if v is not None else None


def _volume_file(study) -> str:
    v = getattr(study, "volume", None)
    return str(v.file_grid.path) if v is not None and getattr(v, "file_grid", None) is not None else ""


def study_source(study) -> str:
    """Where the study came from: the volume file, the DICOM folder, else its name (dataset case, demo)."""
    m = _meta(study)
    return (m.source if m is not None and m.source else "") or getattr(study, "name", "")


def study_case_id(study) -> str:
    """The case id of this study, the same every time it is opened.

    DICOM: the patient id (when present) and a short hash of the study + series instance UIDs;
    a volume file: its name and a short hash of its resolved path; else (a dataset case, the demo)
    its name and a short hash of it.
    """
    m, vf = _meta(study), _volume_file(study)
    if vf:
        p = Path(vf)
        stem = p.name.split(".")[0] or p.name
        return f"{_safe(stem) or 'volume'}.{_hash(os.path.realpath(p))}"
    if m is not None and (m.study_uid or m.series_uid):
        return f"{_safe(m.patient_id) or 'study'}.{_hash(m.study_uid + '/' + m.series_uid)}"
    name = getattr(study, "name", "") or "study"
    return f"{_safe(name) or 'study'}.{_hash(name)}"


def find_case_of_study(dataset: str | os.PathLike, study) -> str | None:
    """The id of the case of ``study`` in ``dataset``, or None (no such case, or no dataset yet)."""
    folder = Path(dataset)
    if not (folder / MANIFEST).is_file():
        return None
    cid = study_case_id(study)
    entry = read_manifest(folder)["cases"].get(cid)
    return cid if entry and (folder / entry.get("file", "")).is_file() else None


def _forbidden(study, source_dirs: Iterable[str]) -> list[Path]:
    """The folders the dataset must stay out of: the DICOM folder(s), a volume file's folder."""
    out = []
    for p in [study_source(study) if _meta(study) is not None else "", _volume_file(study), *source_dirs]:
        if p:
            q = Path(p).expanduser().resolve()
            out.append(q.parent if q.is_file() else q)
    return list(dict.fromkeys(out))


def refuse_inside_source(dataset: str | os.PathLike, study, source_dirs: Iterable[str] = ()) -> Path:
    """``dataset`` resolved, after refusing a folder that is (or lies inside) the study's source."""
    d = Path(dataset).expanduser().resolve()
    ours = default_lab_dataset().parent.parent.resolve()  # the app's own user data folder
    for src in _forbidden(study, source_dirs):
        if (src == ours or src in ours.parents) and (d == ours or ours in d.parents):
            continue  # a source holding the home folder (a CT in ~): our own data folder is not "near" it
        if d == src or src in d.parents:
            raise DatasetError(f"{d}: the training dataset must not be inside the study's source folder {src} "
                               f"(choose another dataset folder)")
    return d


def add_study(dataset: str | os.PathLike, study, label: np.ndarray | None = None, corrected_by: str = "",
              replace: bool = False, *, source_dirs: Iterable[str] = (), progress: ProgressFn | None = None,
              cancel: CancelToken | None = None) -> str:
    """Store ``study`` (its CT and geometry) with ``label`` (default: its working label) as a case.

    Args:
        dataset: the dataset folder (created, with its manifest, when new).
        corrected_by: who corrected the label (kept in the case's meta).
        replace: replace the case already stored for this study.
        source_dirs: more folders to stay out of (the path the session opened).

    Returns:
        The case id (:func:`study_case_id`).

    Raises:
        DatasetError: the dataset inside the source, a label of another shape or with values
            other than 0, 1, 2, an unwritable folder; :class:`CaseExists` when the study already
            has a case and ``replace`` is False.
    """
    label = getattr(study, "label", None) if label is None else label
    folder = refuse_inside_source(dataset, study, source_dirs)
    cid = study_case_id(study)
    if label is None:
        raise DatasetError(f"{cid}: no label to store: segment the study (and correct it) first")
    hu = np.asarray(study.hu)
    if tuple(label.shape) != tuple(hu.shape):
        raise DatasetError(f"{cid}: label of shape {tuple(label.shape)} does not match the CT's {tuple(hu.shape)}")
    check(cancel)
    report(progress, "add case", 0, 1, cid)
    if label.size and (int(label.min()) < 0 or int(label.max()) > 2):
        values = sorted(np.unique(label).tolist())
        raise DatasetError(f"{cid}: label values {values[:8]}; expected 0 background, 1 liver, 2 tumour")
    counts = np.bincount(np.asarray(label, np.uint8).ravel(), minlength=3)
    if not replace and find_case_of_study(folder, study):
        raise CaseExists(folder, cid)
    m = _meta(study)
    meta = {"source": study_source(study), "name": getattr(study, "name", ""), "kind": LAB_KIND,
            "added": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "corrected_by": corrected_by,
            "label_counts": {"background": int(counts[0]), "liver": int(counts[1]), "tumour": int(counts[2])}}
    if m is not None:
        meta.update({k: v for k, v in (("study_uid", m.study_uid), ("series_uid", m.series_uid),
                                       ("patient_id", m.patient_id), ("study_date", m.study_date)) if v})
    if _volume_file(study):
        meta["volume_file"] = _volume_file(study)
    write_case(folder, Case(cid, hu.astype(np.int16, copy=False), np.asarray(label, np.uint8),
                            cast("tuple[float, float, float]", tuple(float(s) for s in study.spacing)),
                            cast("tuple[float, float, float]", tuple(float(s) for s in study.origin)),
                            np.asarray(study.direction, np.float64), meta))
    report(progress, "add case", 1, 1, cid)
    return cid


def is_lab_dataset(src: str | os.PathLike) -> bool:
    """True when ``src`` is a dataset folder of our format (its ``manifest.json`` says so)."""
    path = Path(src) / MANIFEST
    if not path.is_file():
        return False
    try:
        return read_manifest(src).get("format") == FORMAT
    except DatasetError:
        return False


def import_lab_dataset(src: str | os.PathLike, out: str | os.PathLike, progress: ProgressFn | None = None,
                       cancel: CancelToken | None = None, force: bool = False) -> list[str]:
    """Copy the ``ct`` cases of dataset ``src`` into dataset ``out`` (same ids); returns the ids.

    As the other importers: a case of ``out`` of the same id from another source is never replaced
    without ``force``; a case already copied from the same, unchanged file is skipped.
    """
    src_path, out = Path(src).resolve(), Path(out)
    if out.resolve() == src_path or src_path in out.resolve().parents:
        raise DatasetError(f"{out}: the dataset folder must not be inside the source dataset {src_path}")
    ids = list_cases(src_path, "ct")
    if not ids:
        raise DatasetError(f"{src_path}: a dataset without CT cases")
    entries = read_manifest(src_path)["cases"]
    existing = read_manifest(out)["cases"] if out.exists() else {}
    files = {cid: src_path / entries[cid].get("file", f"{cid}.npz") for cid in ids}
    if not force:  # before anything is written
        for cid in ids:
            prev = existing.get(cid)
            theirs = entries[cid].get("source") or str(files[cid])
            if prev and prev.get("source") and (out / prev.get("file", "")).is_file() \
                    and not same_source(prev["source"], theirs):
                raise DatasetError(f"{out}: case {cid} is already there, from {prev['source']}; importing {files[cid]} "
                                   f"would replace it (use --force, or another dataset folder)")
    for i, cid in enumerate(ids):
        check(cancel)
        report(progress, "import", i, len(ids), cid)
        sha = {files[cid].name: file_sha256(files[cid])}
        prev = existing.get(cid)
        if prev and not force and (out / prev.get("file", "")).is_file() and prev.get("source_sha256") == sha:
            continue
        case = load_case(src_path, cid)
        case.meta = {**case.meta, "source": case.meta.get("source") or str(files[cid]),
                     "imported_from": str(files[cid]), "source_sha256": sha}
        write_case(out, case)
    report(progress, "import", len(ids), len(ids))
    return ids
