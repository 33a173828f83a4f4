"""Import NIfTI datasets into the dataset format: the Medical Segmentation Decathlon, LiTS, plain pairs.

Layouts recognised (extracted folders; the sources are only read, never written):

* Medical Segmentation Decathlon ``Task03_Liver``: ``dataset.json``, ``imagesTr/liver_N.nii.gz``,
  ``labelsTr/liver_N.nii.gz`` (the macOS ``._*`` files of its tarball are ignored);
* LiTS: ``volume-N.nii`` and ``segmentation-N.nii`` anywhere below the folder (its two batches);
* a plain folder of pairs: ``images/NAME.nii.gz`` with ``labels/NAME.nii.gz``, or ``NAME.nii.gz``
  with ``NAME_label`` / ``_labels`` / ``_seg`` / ``_mask.nii.gz`` beside it.

Labels 0 background, 1 liver, 2 tumour (the convention of all three). Each image is read with
:func:`core.io.volume_file.read_volume_file` (any storage order, reoriented to our layout) and its
label is put through the same reorientation after checking that both share one grid (a mismatch is
refused with the two geometries). As for 3D-IRCADb-01, a case already imported from the same files
is skipped, and a case of the same name from another source is never replaced without ``force``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..io.volume_file import read_volume_file
from ..runtime.atomic import file_sha256
from ..runtime.errors import DatasetError, LiverSegError, one_line
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from .dataset import Case, read_manifest, refuse_replacing, write_case
from .ircadb import import_ircadb
from .lab_cases import import_lab_dataset, is_lab_dataset

LABEL_SUFFIXES = ("_label", "_labels", "_seg", "_mask")
NII = (".nii.gz", ".nii")


def _stem(p: Path) -> str:
    name = p.name
    for s in NII:
        if name.lower().endswith(s):
            return name[: -len(s)]
    return name


def _niftis(folder: Path, recursive: bool = False) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in it if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(NII))


def find_nifti_pairs(src: str | os.PathLike) -> tuple[str, list[tuple[str, Path, Path]]] | None:
    """(layout, [(case id, image, label)]) when ``src`` is a NIfTI dataset folder, else None."""
    root = Path(src)
    if not root.is_dir():
        return None
    if (root / "imagesTr").is_dir() and (root / "labelsTr").is_dir():
        pairs = [(_stem(img), img, root / "labelsTr" / img.name) for img in _niftis(root / "imagesTr")]
        return "msd", _require_labels(root, pairs)
    volumes = [p for p in _niftis(root, recursive=True) if re.match(r"^volume-\d+$", _stem(p))]
    if volumes:
        pairs = []
        for v in volumes:
            n = _stem(v).split("-")[1]
            seg = [s for s in (v.with_name(f"segmentation-{n}{suf}") for suf in NII) if s.is_file()]
            pairs.append((f"lits-{n}", v, seg[0] if seg else v.with_name(f"segmentation-{n}.nii")))
        pairs.sort(key=lambda t: int(t[0].split("-")[1]))
        return "lits", _require_labels(root, pairs)
    if (root / "images").is_dir() and (root / "labels").is_dir():
        pairs = [(_stem(img), img, _label_for(root / "labels", img)) for img in _niftis(root / "images")]
        return "pairs", _require_labels(root, pairs)
    files = _niftis(root)
    labels = {p for p in files if any(_stem(p).endswith(s) for s in LABEL_SUFFIXES)}
    pairs = []
    for img in files:
        if img in labels:
            continue
        found = [p for p in labels if _stem(p) in {_stem(img) + s for s in LABEL_SUFFIXES}]
        if found:
            pairs.append((_stem(img), img, found[0]))
    return ("pairs", pairs) if pairs else None


def _label_for(folder: Path, img: Path) -> Path:
    for name in [img.name] + [_stem(img) + s + suf for s in LABEL_SUFFIXES for suf in NII]:
        if (folder / name).is_file():
            return folder / name
    return folder / img.name


def _require_labels(root: Path, pairs: list) -> list:
    missing = [str(lab) for _, _, lab in pairs if not lab.is_file()]
    if missing:
        raise DatasetError(f"{root}: {len(missing)} image(s) without their label, e.g. {missing[0]}")
    if not pairs:
        raise DatasetError(f"{root}: no NIfTI images found")
    return pairs


def read_pair(case_id: str, image: Path, label_path: Path, layout: str):
    """One image + label pair as a :class:`core.datasets.dataset.Case` in our layout."""
    import nibabel as nib
    from nibabel import orientations as no


    v = read_volume_file(image)
    g = v.file_grid
    try:
        lab_img: Any = nib.load(str(label_path))  # a SpatialImage: dataobj, affine
        lab = np.asanyarray(lab_img.dataobj)
    except Exception as exc:
        raise DatasetError(f"{label_path}: not a readable NIfTI label ({one_line(exc, 100)})") from None
    lab = lab.reshape(lab.shape[:3]) if lab.ndim > 3 and all(s == 1 for s in lab.shape[3:]) else lab
    if tuple(lab.shape) != tuple(g.shape) or not np.allclose(lab_img.affine, g.affine_array(), atol=1e-3):
        raise DatasetError(f"{label_path}: label grid {tuple(lab.shape)} with affine "
                           f"{np.round(lab_img.affine[:3], 3).tolist()} does not match the image's {tuple(g.shape)} "
                           f"with affine {np.round(g.affine_array()[:3], 3).tolist()}")
    lab = np.rint(lab).astype(np.int64)
    values = set(np.unique(lab).tolist())
    if not values <= {0, 1, 2}:
        raise DatasetError(f"{label_path}: label values {sorted(values)}; expected 0 background, 1 liver, 2 tumour")
    canon = no.apply_orientation(lab.astype(np.uint8), np.array(g.ornt))
    label = np.ascontiguousarray(np.transpose(canon, (2, 1, 0)))
    meta = {"source": str(image), "layout": layout, "label_file": str(label_path),
            "source_sha256": {image.name: file_sha256(image), label_path.name: file_sha256(label_path)},
            "warnings": list(v.warnings)}
    return Case(case_id, v.hu, label, v.spacing, v.origin, v.direction, meta)


def import_nifti_dataset(src: str | os.PathLike, out: str | os.PathLike, progress: ProgressFn | None = None,
                         cancel: CancelToken | None = None, force: bool = False, _found=None) -> list[str]:
    """Import a NIfTI dataset folder (see the module docstring); returns the case ids."""
    found = find_nifti_pairs(src) if _found is None else _found
    if found is None:
        raise DatasetError(f"{src}: not a NIfTI dataset (Decathlon imagesTr/labelsTr, LiTS volume-N/segmentation-N, "
                           f"or image + label pairs)")
    layout, pairs = found
    out = Path(out)
    src_path = Path(src).resolve()
    if out.resolve() == src_path or src_path in out.resolve().parents:
        raise DatasetError(f"{out}: the dataset folder must not be inside the source folder {src_path}")
    existing = read_manifest(out)["cases"] if out.exists() else {}
    if not force:  # before anything is written: never replace a case that came from elsewhere
        refuse_replacing(out, [(cid, str(img)) for cid, img, _ in pairs])
    ids = []
    for i, (cid, img, lab) in enumerate(pairs):
        check(cancel)
        report(progress, "import", i, len(pairs), cid)
        prev = existing.get(cid)
        if prev and not force and (out / prev.get("file", "")).is_file() and \
                prev.get("source_sha256") == {img.name: file_sha256(img), lab.name: file_sha256(lab)}:
            ids.append(cid)
            continue
        write_case(out, read_pair(cid, img, lab, layout))
        ids.append(cid)
    report(progress, "import", len(pairs), len(pairs))
    return ids


def import_dataset(src: str | os.PathLike, out: str | os.PathLike, progress: ProgressFn | None = None,
                   cancel: CancelToken | None = None, force: bool = False) -> list[str]:
    """Import whatever ``src`` is: a LiverSeg dataset folder (:mod:`.lab_cases`: its cases copied), a
    NIfTI dataset folder, else 3D-IRCADb-01 (archive or folders)."""
    if is_lab_dataset(src):
        return import_lab_dataset(src, out, progress, cancel, force)
    try:
        found = find_nifti_pairs(src)
    except LiverSegError:
        return import_nifti_dataset(src, out, progress, cancel, force)  # a NIfTI layout with a problem: it says what
    if found is not None:
        return import_nifti_dataset(src, out, progress, cancel, force, _found=found)  # the layout scanned once
    return import_ircadb(src, out, progress, cancel, force)
