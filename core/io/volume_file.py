"""CT volumes stored as one file: NIfTI ``.nii`` / ``.nii.gz`` (as every public liver dataset ships
them), NRRD ``.nrrd`` / ``.nhdr`` and MetaImage ``.mha`` / ``.mhd`` (:mod:`core.io.volume_formats`).

A file may store its voxels in any axis order and direction. :func:`read_volume_file` reads it
(NIfTI with nibabel; every format gives its voxel -> RAS affine) and reorients the array to the
layout a DICOM axial series has here (``hu`` [Z, Y, X] with x towards the patient's left, y
posterior, z superior: the viewer then shows the patient's right on the screen's left and the head
up), keeping the way back in :class:`FileGrid`. Every label written for such a study
(:func:`core.io.export.write_nifti`) is put back onto the file's own voxel grid with the file's own
affine, so it lines up voxel for voxel with the input in any other tool.

Refused with one line naming the file: not a volume of its format, 2D, 4D (more than one volume),
colour or complex voxels, unsupported element types, absurd sizes, a missing data file, truncated
or corrupt data. An intensity range that does not look like CT in Hounsfield units is a warning,
not a refusal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from ..runtime.errors import LiverSegError, VolumeFileError, one_line  # noqa: F401 (VolumeFileError: importable from here)
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from . import volume_formats as vf
from .dicom import load_series
from .dicom.geometry import LPS_FROM_RAS
from .dicom.pixels import memory_budget
from .dicom.types import SeriesMeta, Volume
from .volume_formats import Source

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
MAX_SIDE = 4096


def is_volume_file(path: str | os.PathLike) -> bool:
    name = str(path).lower()
    return any(name.endswith(s) for s in VOLUME_SUFFIXES) and Path(path).is_file()


@dataclass(frozen=True)
class FileGrid:
    """The way from our [Z, Y, X] array back to the file's voxel grid.

    Attributes:
        path: the file read.
        shape: the file's array shape (i, j, k).
        ornt: nibabel orientation (per file axis: canonical axis, flip) from the file to the
            canonical (x, y, z) = (left, posterior, superior) order.
        affine: the file's own affine (RAS, NIfTI convention), written back with every label.
        kind: the file's format ("NIfTI", "NRRD", "MetaImage").
    """

    path: str
    shape: tuple[int, int, int]
    ornt: tuple[tuple[float, float], ...]
    affine: tuple[tuple[float, ...], ...]
    kind: str = "NIfTI"

    def to_file(self, zyx: np.ndarray) -> np.ndarray:
        """A [Z, Y, X] array (ours) as the file's (i, j, k) array."""
        from nibabel import orientations as no
        back = no.ornt_transform(np.array([[0, 1], [1, 1], [2, 1]], float), np.array(self.ornt))
        out = no.apply_orientation(np.transpose(zyx, (2, 1, 0)), back)
        if out.shape != self.shape:
            raise ValueError(f"{self.path}: label of shape {zyx.shape} does not fit the file's grid {self.shape}")
        return np.ascontiguousarray(out)

    def affine_array(self) -> np.ndarray:
        return np.array(self.affine, float)


def _refuse(path, why: str) -> VolumeFileError:
    return VolumeFileError(f"{path}: {why}")


def open_source(p: Path):
    """The file's header read into a :class:`core.io.volume_formats.Source` (voxels not yet read)."""
    name = p.name.lower()
    if name.endswith(vf.NRRD_SUFFIXES):
        return vf.open_nrrd(p)
    if name.endswith(vf.META_SUFFIXES):
        return vf.open_metaimage(p)
    return _open_nifti(p)


def _open_nifti(p: Path):
    import nibabel as nib

    try:
        img = nib.load(str(p))
    except Exception as exc:  # nibabel raises many types for non-NIfTI input
        raise _refuse(p, f"not a NIfTI volume ({one_line(exc, 100)})") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise _refuse(p, f"not a NIfTI volume ({type(img).__name__})")
    dtype = img.get_data_dtype()
    if dtype.names or np.issubdtype(dtype, np.complexfloating):
        raise _refuse(p, f"voxels of type {dtype} (colour or complex), not CT intensities")
    return Source("NIfTI", tuple(int(s) for s in img.shape), np.asarray(img.affine, float),
                  lambda: np.asanyarray(img.dataobj))


def read_volume_file(path: str | os.PathLike, progress: ProgressFn | None = None,
                     cancel: CancelToken | None = None):
    """Read a CT volume file (NIfTI, NRRD, MetaImage) into a :class:`core.io.dicom.Volume` (with ``file_grid``)."""
    from nibabel import orientations as no


    p = Path(path)
    if not p.is_file():
        raise _refuse(p, "no such file")
    report(progress, "read", 0, 1, p.name)
    try:
        src = open_source(p)
    except (OSError, ValueError) as exc:
        raise _refuse(p, f"cannot read ({one_line(exc, 100)})") from None
    shape = src.shape
    if len(shape) < 3 or (len(shape) == 3 and min(shape) == 1 and sum(s > 1 for s in shape) < 3):
        raise _refuse(p, f"a 2D image ({' x '.join(map(str, shape))}); a CT volume has at least 2 slices")
    if len(shape) > 3:
        if any(s != 1 for s in shape[3:]):
            raise _refuse(p, f"{len(shape)}D data ({' x '.join(map(str, shape))}): more than one volume")
        shape = shape[:3]
    if max(shape) > MAX_SIDE or min(shape) < 2:
        raise _refuse(p, f"absurd size {' x '.join(map(str, shape))}")
    need = int(np.prod(shape)) * 2
    if need > memory_budget():
        raise _refuse(p, f"{' x '.join(map(str, shape))} voxels need {need / 2**30:.1f} GiB, "
                         f"more than the {memory_budget() / 2**30:.1f} GiB allowed")
    check(cancel)
    try:
        data = np.asanyarray(src.load()).reshape(shape)
    except LiverSegError:
        raise
    except Exception as exc:
        raise _refuse(p, f"truncated or corrupt voxel data ({one_line(exc, 100)})") from None
    if data.dtype.names or np.issubdtype(data.dtype, np.complexfloating) or data.dtype.kind not in "iufb":
        raise _refuse(p, f"voxels of type {data.dtype} (colour, complex or text), not CT intensities")
    affine = np.asarray(src.affine, float)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise _refuse(p, "no usable geometry (degenerate affine)")
    lps = LPS_FROM_RAS @ affine
    ornt = no.io_orientation(lps)
    canon = no.apply_orientation(data, ornt)  # (x, y, z): left, posterior, superior
    lps_canon = lps @ no.inv_ornt_aff(ornt, shape)
    hu = _to_int16(np.transpose(canon, (2, 1, 0)))
    cols = lps_canon[:3, :3]
    spacing_xyz = np.linalg.norm(cols, axis=0)
    direction = cols / spacing_xyz
    warnings = list(src.warnings)
    lo, hi = (np.percentile(hu[:: max(1, hu.shape[0] // 16)], (1, 99)) if hu.size else (0, 0))
    if lo > -500 or hi > 4000 or hi - lo < 200:
        warnings.append(f"intensities {lo:.0f}..{hi:.0f} (1st-99th percentile) do not look like CT in "
                        f"Hounsfield units; results may be meaningless")
    grid = FileGrid(str(p), shape, cast("tuple[tuple[float, float], ...]", tuple(tuple(map(float, r)) for r in ornt)),
                    tuple(tuple(map(float, r)) for r in affine), src.kind)
    meta = SeriesMeta(series_uid="", study_uid="", frame_of_reference_uid="", modality="CT", sop_class_uid="",
                      patient_name="", patient_id="", study_date="", description=p.name, manufacturer="",
                      sop_instance_uids=(), files=(str(p),), window=None, source=str(p))
    report(progress, "read", 1, 1, p.name)
    return Volume(hu=hu, spacing=(float(spacing_xyz[2]), float(spacing_xyz[1]), float(spacing_xyz[0])),
                  origin=cast("tuple[float, float, float]", tuple(float(v) for v in lps_canon[:3, 3])),
                  direction=direction, meta=meta,
                  warnings=tuple(warnings), file_grid=grid)


def _to_int16(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.int16:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a, nan=-1024.0)
        a = np.rint(a)
    return np.ascontiguousarray(np.clip(a, -32768, 32767).astype(np.int16))


def open_volume(path: str | os.PathLike, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None, acquisition: int | None = None):
    """A study from a volume file (NIfTI, NRRD, MetaImage) or a DICOM folder, whichever ``path`` is
    (``acquisition``: of a DICOM series holding several, which one)."""
    if is_volume_file(path):
        if acquisition is not None:
            raise VolumeFileError(f"{path}: --acquisition applies to a DICOM folder, not a volume file")
        return read_volume_file(path, progress, cancel)
    return load_series(path, progress=progress, cancel=cancel, acquisition=acquisition)
