"""Bring back earlier work: a label volume (NIfTI, NRRD, MetaImage, or a DICOM SEG by us or another tool)
onto an open study.

:func:`read_label` returns the label on the study's own [Z, Y, X] grid (0 background, 1 liver,
2 tumour) or refuses, with both geometries in one line, a label that does not line up with the
study. A label volume file may be stored in any axis order and direction (both the label and the
study are brought to one canonical order by whole-voxel flips and transposes, never resampled); a DICOM
SEG must reference the study's series, and its frames are placed by the source images they
reference. Segments of another tool's SEG are mapped by name: a segment whose label mentions a
tumour / lesion / cancer is tumour, one that mentions the liver is liver, others are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.errors import LiverSegError, one_line
from .dicom.geometry import LPS_FROM_RAS, voxel_to_lps
from .volume_file import open_source

IDENTITY_ORNT = np.array([[0, 1], [1, 1], [2, 1]], float)


class LabelFileError(LiverSegError):
    """A label file that cannot be put on the open study."""


def _geometry(shape, affine) -> str:
    sp = np.linalg.norm(affine[:3, :3], axis=0)
    return (f"{' x '.join(map(str, shape))} voxels of {' x '.join(f'{s:.3g}' for s in sp)} mm "
            f"at ({', '.join(f'{v:.1f}' for v in affine[:3, 3])})")


def _canonical(arr_xyz: np.ndarray, aff_lps: np.ndarray):
    from nibabel import orientations as no
    ornt = no.io_orientation(aff_lps)
    return no.apply_orientation(arr_xyz, ornt), aff_lps @ no.inv_ornt_aff(ornt, arr_xyz.shape), ornt


def read_nifti_label(path: Path, study) -> np.ndarray:
    import nibabel as nib
    try:
        img: Any = nib.load(str(path))  # a SpatialImage: dataobj, affine
        lab = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise LabelFileError(f"{path}: not a readable NIfTI label ({one_line(exc, 100)})") from None
    return _on_study(path, lab, np.asarray(img.affine, float), study)


def read_volume_label(path: Path, study) -> np.ndarray:
    """A label stored as NRRD or MetaImage (read like a CT volume file, its affine in RAS)."""
    try:
        src = open_source(path)
        lab = np.asanyarray(src.load())
    except LiverSegError as exc:
        raise LabelFileError(str(exc)) from None
    except Exception as exc:
        raise LabelFileError(f"{path}: not a readable label volume ({one_line(exc, 100)})") from None
    return _on_study(path, lab, src.affine, study)


def _on_study(path: Path, lab: np.ndarray, ras: np.ndarray, study) -> np.ndarray:
    from nibabel import orientations as no
    if lab.ndim > 3 and all(s == 1 for s in lab.shape[3:]):
        lab = lab.reshape(lab.shape[:3])
    if lab.ndim != 3:
        raise LabelFileError(f"{path}: a {lab.ndim}D label; expected one 3D volume")
    lab_c, lab_aff, _ = _canonical(np.rint(lab).astype(np.int64), LPS_FROM_RAS @ ras)
    study_xyz_shape = tuple(reversed(study.shape))
    st_aff = voxel_to_lps(study.spacing, study.origin, study.direction)
    st_shape_c, st_aff_c, st_ornt = _canonical(np.zeros(study_xyz_shape, np.uint8), st_aff)
    tol = 0.05 * float(min(study.spacing))
    if lab_c.shape != st_shape_c.shape or not np.allclose(lab_aff, st_aff_c, atol=tol):
        raise LabelFileError(f"{path}: its grid ({_geometry(lab.shape, LPS_FROM_RAS @ ras)}, LPS) does not "
                             f"line up with the study's ({_geometry(study_xyz_shape, st_aff)}, LPS)")
    back = no.apply_orientation(lab_c, no.ornt_transform(IDENTITY_ORNT, st_ornt))
    return _codes(np.transpose(back, (2, 1, 0)), path)


def _codes(label: np.ndarray, path) -> np.ndarray:
    values = set(np.unique(label).tolist())
    if not values <= {0, 1, 2}:
        raise LabelFileError(f"{path}: label values {sorted(values)}; expected 0 background, 1 liver, 2 tumour")
    return np.ascontiguousarray(label.astype(np.uint8))


def segment_code(text: str) -> int:
    """2 for a tumour-like segment name, 1 for the liver, 0 for anything else."""
    t = text.lower()
    if any(w in t for w in ("tumo", "lesion", "cancer", "metasta", "carcinoma", "neoplasm")):
        return 2
    return 1 if "liver" in t or "hepat" in t else 0


def read_dicom_seg(path: Path, study) -> np.ndarray:
    import highdicom as hd
    volume = getattr(study, "volume", None)
    meta = getattr(volume, "meta", None)
    if meta is None or not meta.sop_instance_uids:
        raise LabelFileError(f"{path}: a DICOM SEG needs a study opened from its DICOM series")
    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:
        raise LabelFileError(f"{path}: not a readable DICOM SEG ({one_line(exc, 100)})") from None
    refs = {s.SeriesInstanceUID for s in getattr(seg, "ReferencedSeriesSequence", [])}
    if refs and meta.series_uid not in refs:
        raise LabelFileError(f"{path}: refers to series {', '.join(sorted(refs))}, not the open study's "
                             f"series {meta.series_uid}")
    codes = {int(s.SegmentNumber): segment_code(f"{s.SegmentLabel} {getattr(s, 'SegmentDescription', '')}")
             for s in seg.SegmentSequence}
    wanted = [n for n, c in codes.items() if c]
    if not wanted:
        raise LabelFileError(f"{path}: no liver or tumour segment among "
                             f"{', '.join(str(s.SegmentLabel) for s in seg.SegmentSequence)}")
    uids = list(meta.sop_instance_uids)
    referenced = {u[2] for u in seg.get_source_image_uids()}
    present = [u for u in uids if u in referenced]
    if not present:
        raise LabelFileError(f"{path}: references none of the open study's {len(uids)} images")
    try:
        px = seg.get_pixels_by_source_instance(source_sop_instance_uids=present, segment_numbers=wanted,
                                               assert_missing_frames_are_empty=True)
    except Exception as exc:
        raise LabelFileError(f"{path}: frames do not fit the study ({one_line(exc, 120)})") from None
    label = np.zeros(study.shape, np.uint8)
    index = {u: i for i, u in enumerate(uids)}
    if px.shape[1:3] != study.shape[1:]:
        raise LabelFileError(f"{path}: frames of {px.shape[1]} x {px.shape[2]}, the study's slices are "
                             f"{study.shape[1]} x {study.shape[2]}")
    for k, u in enumerate(present):
        z = index[u]
        for j, n in enumerate(wanted):  # tumour over liver, whatever the segment order
            on = px[k, :, :, j] > 0
            label[z][on & (label[z] < codes[n])] = codes[n]
    return label


def read_label(path: str | os.PathLike, study) -> np.ndarray:
    """The label in ``path`` on ``study``'s [Z, Y, X] grid (uint8 0/1/2), or a one-line refusal."""
    p = Path(path)
    if not p.is_file():
        raise LabelFileError(f"{p}: no such file")
    if p.name.lower().endswith((".nii", ".nii.gz")):
        return read_nifti_label(p, study)
    if p.name.lower().endswith((".nrrd", ".nhdr", ".mha", ".mhd")):
        return read_volume_label(p, study)
    with open(p, "rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM":
        return read_dicom_seg(p, study)
    raise LabelFileError(f"{p}: not a label volume (NIfTI, NRRD, MetaImage) or a DICOM SEG")
