"""The open study: CT, its geometry, the working label and the reference (ground truth), if any."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.dicom.types import Volume


@dataclass
class Study:
    """What the app has open.

    Attributes:
        hu: int16 [Z, Y, X] Hounsfield units.
        spacing: (z, y, x) mm.
        origin, direction: patient geometry (LPS), for exports.
        name: where it came from (folder, dataset case, demo).
        label: the working segmentation (uint8 [Z, Y, X]) or None before segmenting.
        reference: ground truth (dataset case, demo phantom) or None.
        volume: the :class:`core.io.dicom.Volume` when opened from DICOM (for DICOM SEG export).
        warnings: loader warnings to show.
    """

    hu: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    name: str = ""
    label: np.ndarray | None = None
    reference: np.ndarray | None = None
    volume: Volume | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_volume(cls, v, name: str = "") -> Study:
        return cls(v.hu, v.spacing, v.origin, v.direction, name or v.meta.source, volume=v, warnings=v.warnings)

    @classmethod
    def from_case(cls, c, name: str = "") -> Study:
        return cls(c.hu, c.spacing, c.origin, c.direction, name or c.case_id, reference=c.label)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)

    @property
    def file_grid(self):
        """The volume file's own grid (:class:`core.io.volume_file.FileGrid`), or None (DICOM, dataset, demo)."""
        return self.volume.file_grid if self.volume is not None else None

    @property
    def source_dir(self) -> str:
        """The DICOM folder the study was opened from ("" for a dataset case or the demo)."""
        return self.volume.source_dir if self.volume is not None else ""
