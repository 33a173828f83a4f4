"""Typed results of DICOM scanning and loading."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import voxel_to_lps


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found by :func:`core.io.dicom.scan`.

    Attributes:
        key: unique name within one scan: the SeriesInstanceUID, or
            ``UID#n`` when one UID holds slices of several sizes/orientations.
        series_uid: the SeriesInstanceUID ("" when the files have none).
        study_uid: the StudyInstanceUID.
        modality: e.g. "CT", "MR".
        description: SeriesDescription ("" when absent).
        n_slices: number of image files (slices) in the group.
        rows, cols: slice size in pixels.
        spacing: (z, y, x) voxel spacing in mm; z from the slice positions.
        transfer_syntax: name of the transfer syntax of the first slice.
        warnings: non-fatal problems (uneven spacing, missing slices, tilt...).
        files: file names in slice order (along the slice normal).
        split: True when the UID also holds slices of another size/orientation.
        acquisition: the AcquisitionNumber when the UID holds several acquisitions at the same table
            positions (two contrast phases under one series UID): each is its own volume, keyed
            ``UID#acqN``; None otherwise.
    """

    key: str
    series_uid: str
    study_uid: str
    modality: str
    description: str
    n_slices: int
    rows: int
    cols: int
    spacing: tuple[float, float, float]
    transfer_syntax: str
    warnings: tuple[str, ...]
    files: tuple[str, ...]
    split: bool = False
    acquisition: int | None = None
    headers: tuple = field(default=(), repr=False, compare=False)

    @property
    def is_ct(self) -> bool:
        return self.modality.upper() == "CT"

    def summary(self) -> str:
        z, y, x = self.spacing
        return (f"{self.modality or '?':3s} {self.n_slices:4d} x {self.rows} x {self.cols}  "
                f"spacing {z:.2f} x {y:.3f} x {x:.3f} mm  {self.description}").rstrip()


class ScanResult(list):
    """A list of :class:`SeriesInfo` (largest first) plus the skipped files.

    Attributes:
        skipped: (file, reason) for every file that was not an image slice.
        root: the folder that was scanned.
    """

    def __init__(self, series=(), skipped=(), root: str = ""):
        super().__init__(series)
        self.skipped: list[tuple[str, str]] = list(skipped)
        self.root = root


@dataclass(frozen=True)
class SeriesMeta:
    """Series metadata the viewer and the exporters need."""

    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    modality: str
    sop_class_uid: str
    patient_name: str
    patient_id: str
    study_date: str
    description: str
    manufacturer: str
    sop_instance_uids: tuple[str, ...]
    files: tuple[str, ...]
    window: tuple[float, float] | None  # (center, width) when the files give a real one
    source: str
    acquisition: int | None = None  # of a series holding several acquisitions (SeriesInfo.acquisition)


@dataclass
class Volume:
    """A CT volume in Hounsfield units.

    Attributes:
        hu: int16 array [Z, Y, X], rescale slope/intercept applied, slices
            ordered by position along the slice normal.
        spacing: (z, y, x) voxel size in mm.
        origin: patient (LPS) position in mm of voxel [0, 0, 0] (x, y, z).
        direction: 3x3 float array; columns are the LPS unit vectors of the
            index axes x (column), y (row) and z (slice).
        meta: series metadata.
        warnings: non-fatal problems found while loading.
        file_grid: for a volume read from one file (:mod:`core.io.volume_file`), the way back to
            the file's own voxel grid and affine; None for DICOM.
    """

    hu: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    meta: SeriesMeta
    warnings: tuple[str, ...] = ()
    file_grid: object | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)

    def affine(self) -> np.ndarray:
        """4x4 matrix mapping (x, y, z, 1) voxel indices to LPS mm (:func:`.geometry.voxel_to_lps`)."""
        return voxel_to_lps(self.spacing, self.origin, self.direction)

    @property
    def source_dir(self) -> str:
        """The folder the series was read from: exports never write into it."""
        return self.meta.source

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return float(np.prod(self.spacing)) / 1000.0
