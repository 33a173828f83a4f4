"""Exporting results in the formats other tools read.

* NIfTI (nibabel), with the affine built from the DICOM geometry (LPS to RAS),
  so the labels overlay correctly in 3D Slicer and ITK-SNAP;
* DICOM SEG (highdicom), referencing the source series, segments "Liver" and
  "Liver tumor" with their SNOMED CT codes;
* the lesion table as CSV and a JSON report.
Every file is written atomically; an existing file is never overwritten
unless ``force``; nothing is ever written into the source DICOM folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import __version__
from ..runtime.atomic import atomic_open, default_mode
from ..runtime.errors import LiverSegError, one_line
from ..runtime.labels import LIVER, TUMOUR
from ..runtime.summary import LesionSummary
from .dicom.geometry import LPS_FROM_RAS, voxel_to_lps

LPS_TO_RAS = LPS_FROM_RAS  # its own inverse
TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                       "ReferringPhysicianName", "StudyID", "AccessionNumber")


class ExportError(LiverSegError):
    """A result cannot be written where asked."""


def check_target(path: str | os.PathLike, force: bool = False, source_dirs: Iterable[str] = ()) -> Path:
    """Refuse an existing file (unless ``force``), any path inside a source DICOM folder, and the
    source volume file itself."""
    p = Path(path).expanduser().resolve()
    for src in source_dirs:
        if not src:
            continue
        s = Path(src).resolve()
        if s.is_file():  # a volume file (NIfTI): never overwritten; writing beside it is fine
            if p == s:
                raise ExportError(f"{p}: refusing to overwrite the source volume file")
            continue
        if p == s or s in p.parents:
            raise ExportError(f"{p}: refusing to write inside the source DICOM folder {s}")
    if p.exists() and not force:
        raise ExportError(f"{p}: already exists (use --force to overwrite)")
    if p.exists() and p.is_dir():
        raise ExportError(f"{p}: is a folder")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{p.parent}: cannot create folder ({one_line(exc, 100)})") from None
    if not os.access(p.parent, os.W_OK):
        raise ExportError(f"{p.parent}: folder is not writable")
    return p


def _write(path: Path, data: bytes) -> None:
    try:
        with atomic_open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({one_line(exc, 120)})") from None


def nifti_affine(spacing, origin=(0.0, 0.0, 0.0), direction=None) -> np.ndarray:
    """RAS affine of a [Z, Y, X] volume stored as NIfTI [X, Y, Z] (i = column, j = row, k = slice)."""
    return LPS_TO_RAS @ voxel_to_lps(spacing, origin, direction)


def _nifti_image(label: np.ndarray, spacing, origin=(0.0, 0.0, 0.0), direction=None):
    """A [Z, Y, X] label as a NIfTI image (x fastest) with the geometry's RAS affine.

    The transposed view is not copied: a C-ordered [Z, Y, X] array seen as [X, Y, Z] is
    Fortran-ordered, which is NIfTI's order on disk, so nibabel writes its memory as it is (a
    C-ordered copy would cost two transposes, ~0.3 s for a 512 x 512 x 119 study)."""
    return _nifti_on(np.transpose(label, (2, 1, 0)), nifti_affine(spacing, origin, direction))


def _nifti_on(data: np.ndarray, affine: np.ndarray):
    """A uint8 NIfTI image of ``data`` (already in the file's axis order) with ``affine`` as its
    qform and sform, in mm."""
    import nibabel as nib
    img = nib.Nifti1Image(data.astype(np.uint8, copy=False), affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    return img


class Gridded(Protocol):
    """What a label is written against: a :class:`core.io.dicom.Volume` or a :class:`core.study.study.Study`."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray

    @property
    def source_dir(self) -> str: ...

    @property
    def file_grid(self): ...


def write_nifti(path, label: np.ndarray, volume: Gridded, force: bool = False) -> Path:
    """Write ``label`` ([Z, Y, X] uint8) as NIfTI in ``volume``'s geometry (spacing, origin, direction).

    Never inside ``volume.source_dir`` (the folder it was read from); an object without one is
    an error, not a silently empty guard.

    nibabel writes straight into a temp file beside the target (its suffix selects
    gzip), which is then renamed onto the target: atomic, and the data written once.
    """
    import nibabel as nib

    p = check_target(path, force, [volume.source_dir])
    grid = volume.file_grid
    if grid is not None:  # opened from a volume file: back onto its own voxel grid, with its own affine
        img = _nifti_on(grid.to_file(label), grid.affine_array())
    else:
        img = _nifti_image(label, volume.spacing, volume.origin, volume.direction)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".nii.gz" if str(p).endswith(".gz") else ".nii",
                               dir=p.parent)
    os.close(fd)
    try:
        nib.save(img, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, default_mode())
        os.replace(tmp, p)
    except OSError as exc:
        raise ExportError(f"{p}: cannot write ({one_line(exc, 120)})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def read_nifti_label(path) -> tuple[np.ndarray, np.ndarray]:
    """A label NIfTI back as ([Z, Y, X] uint8, RAS affine)."""
    import nibabel as nib
    img: Any = nib.load(str(path))  # a SpatialImage: dataobj, affine
    return np.transpose(np.asarray(img.dataobj), (2, 1, 0)).astype(np.uint8), img.affine


def write_dicom_seg(path, label: np.ndarray, volume, force: bool = False) -> Path:
    """Write a DICOM SEG (binary, segments 1 Liver and 2 Liver tumor) referencing the source series.

    ``volume`` must be a :class:`core.io.dicom.Volume` loaded from files on disk (its
    ``meta.files`` are the source slices, in z order).
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    meta = volume.meta
    p = check_target(path, force, [volume.source_dir])
    if volume.file_grid is not None:
        raise ExportError(f"{p}: DICOM SEG needs a study opened from DICOM ({meta.files[0]} is a volume file)")
    sources = []
    for f in meta.files:
        if "::" in f or not os.path.isfile(f):
            raise ExportError(f"{p}: DICOM SEG needs the source slices on disk ({f} is not a file)")
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        if "FrameOfReferenceUID" not in ds or not ds.FrameOfReferenceUID:
            # 3D-IRCADb-01 files have none; the SEG needs one: derive a stable one from the series.
            ds.FrameOfReferenceUID = pydicom.uid.generate_uid(entropy_srcs=[meta.series_uid, "frame"])
        for kw in TYPE2_PATIENT_STUDY:  # type 2 attributes the SEG copies: empty when the source lacks them
            if kw not in ds:
                setattr(ds, kw, "")
        sources.append(ds)
    if label.shape != (len(sources), sources[0].Rows, sources[0].Columns):
        raise ExportError(f"{p}: label shape {label.shape} does not match the source series")
    algo = hd.AlgorithmIdentificationSequence(name="LiverSeg Studio", version=__version__,
                                              family=codes.cid7162.ArtificialIntelligence)
    liver = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Liver", segmented_property_category=codes.SCT.Organ,
        segmented_property_type=codes.SCT.Liver, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algo)
    tumour = hd.seg.SegmentDescription(
        segment_number=2, segment_label="Liver tumor",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algo, anatomic_regions=[codes.SCT.Liver])
    masks = np.stack([label == LIVER, label == TUMOUR], axis=-1).astype(np.uint8)  # [Z, Y, X, 2]
    try:
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=masks, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[liver, tumour], series_instance_uid=hd.UID(), series_number=900,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="LiverSeg Studio",
            manufacturer_model_name="LiverSeg Studio", software_versions=__version__, device_serial_number="0",
            series_description="LiverSeg liver and tumour segmentation", omit_empty_frames=False)
    except Exception as exc:  # highdicom validates heavily
        raise ExportError(f"{p}: cannot build DICOM SEG ({one_line(exc, 200)})") from None
    buf = io.BytesIO()
    seg.save_as(buf)
    _write(p, buf.getvalue())
    return p


LESION_COLUMNS = ["id", "volume_ml", "longest_axial_diameter_mm", "mean_hu", "first_slice", "last_slice",
                  "centroid_z", "centroid_y", "centroid_x", "voxels", "review"]


def lesion_rows(lesions: list[LesionSummary]) -> list[dict]:
    """The lesion CSV's rows (:data:`LESION_COLUMNS`): figures rounded, slices and centroid split."""
    rows = []
    for r in lesions:
        rows.append({"id": r.id, "volume_ml": round(r.volume_ml, 3),
                     "longest_axial_diameter_mm": round(r.longest_axial_diameter_mm, 1),
                     "mean_hu": round(r.mean_hu, 1) if r.mean_hu is not None else "",
                     "first_slice": r.slices[0], "last_slice": r.slices[1],
                     "centroid_z": round(r.centroid[0], 1), "centroid_y": round(r.centroid[1], 1),
                     "centroid_x": round(r.centroid[2], 1), "voxels": r.voxels,
                     "review": r.review})
    return rows


def write_csv_rows(path, columns, rows, force: bool = False, source_dirs=()) -> Path:
    """A CSV of ``rows`` (dicts) under a ``columns`` header, written atomically (never into a source)."""
    p = check_target(path, force, source_dirs)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    _write(p, buf.getvalue().encode("utf-8"))
    return p


def write_lesions_csv(path, lesions: list[LesionSummary], force: bool = False, source_dirs=()) -> Path:
    return write_csv_rows(path, LESION_COLUMNS, lesion_rows(lesions), force, source_dirs)


def write_json_report(path, report: dict, force: bool = False, source_dirs=()) -> Path:
    p = check_target(path, force, source_dirs)

    def clean(o):
        if isinstance(o, float) and not np.isfinite(o):
            return None
        if isinstance(o, (np.floating, np.integer)):
            return clean(o.item())
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o
    _write(p, (json.dumps(clean(report), indent=2) + "\n").encode("utf-8"))
    return p


def write_png(path, rgb: np.ndarray, force: bool = False, source_dirs=()) -> Path:
    """An RGB(A) uint8 image as PNG (for screenshots of the current view)."""
    from PIL import Image
    p = check_target(path, force, source_dirs)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    _write(p, buf.getvalue())
    return p
