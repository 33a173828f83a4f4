"""The measurements of a segmented study as typed records, and their JSON form.

:func:`core.evaluation.evaluate.study_summary` builds a :class:`StudySummary`; the session stores
it, the results panel, the batch rows and ``liverseg predict`` read its attributes, and the JSON
report, the lesion CSV and the PDF report are written from it. The JSON form
(:meth:`StudySummary.to_json`, :meth:`LesionSummary.to_json`) keeps the keys, their order and their
types of the reports written before these records existed, so reports already on disk read back
(:meth:`StudySummary.from_json`) and write out again byte for byte. They live at the bottom
layer of core so that the writers in :mod:`core.io` can take them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .choices import ReviewState

SUMMARY_KEYS = ("liver_ml", "tumor_ml", "tumor_burden_pct", "lesions", "rejected_lesions")


@dataclass
class LesionSummary:
    """One tumour component of a label volume.

    Attributes:
        id: its number, largest lesion first (1-based).
        voxels: its size in voxels.
        volume_ml: its volume.
        slices: (first, last) axial slice holding it.
        centroid: (z, y, x) in voxels.
        anchor: (z, y, x): its voxel nearest the centroid. A voxel inside the lesion names it across
            edits, when ids change (:mod:`core.study.review`).
        longest_axial_diameter_mm: the longest diameter in any one axial slice.
        mean_hu: its mean intensity; None when measured without the CT.
        review: "unseen", "accepted" or "rejected" (:mod:`core.study.review`).
    """

    id: int
    voxels: int
    volume_ml: float
    slices: tuple[int, int]
    centroid: tuple[float, float, float]
    anchor: tuple[int, int, int]
    longest_axial_diameter_mm: float
    mean_hu: float | None = None
    review: ReviewState = "unseen"

    def to_json(self) -> dict[str, Any]:
        """The record as the reports write it (the key order of the reports already written)."""
        d: dict[str, Any] = {"voxels": self.voxels, "volume_ml": self.volume_ml, "slices": list(self.slices),
                             "centroid": list(self.centroid), "anchor": list(self.anchor),
                             "longest_axial_diameter_mm": self.longest_axial_diameter_mm}
        if self.mean_hu is not None:
            d["mean_hu"] = self.mean_hu
        d["id"] = self.id
        d["review"] = self.review
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LesionSummary:
        """A record read back from a report (a missing review state reads as "unseen")."""
        return cls(id=int(d["id"]), voxels=int(d["voxels"]), volume_ml=d["volume_ml"],
                   slices=(int(d["slices"][0]), int(d["slices"][1])),
                   centroid=tuple(d["centroid"]), anchor=tuple(int(c) for c in d["anchor"]),  # type: ignore[arg-type]
                   longest_axial_diameter_mm=d["longest_axial_diameter_mm"], mean_hu=_mean_hu(d),
                   review=d.get("review", "unseen"))

    def with_review(self, review: ReviewState) -> LesionSummary:
        return replace(self, review=review)


def _mean_hu(d: Mapping[str, Any]) -> float | None:
    """No key: measured without the CT (None); a null: a mean that was not finite, which the report
    writer turned into null and writes so again."""
    if "mean_hu" not in d:
        return None
    return float("nan") if d["mean_hu"] is None else d["mean_hu"]


@dataclass
class StudySummary:
    """Liver and tumour volumes, tumour burden and the lesion table of one label volume.

    Attributes:
        liver_ml: the liver (tumours included) in mL.
        tumour_ml: the tumours in mL.
        tumour_burden_pct: ``tumour_ml`` as a share of ``liver_ml`` (0 without liver).
        lesions: the lesions now in the label, largest first, each with its review state.
        rejected_lesions: the lesions rejected in review (no longer in the label), as they were.
    """

    liver_ml: float
    tumour_ml: float
    tumour_burden_pct: float
    lesions: list[LesionSummary] = field(default_factory=list)
    rejected_lesions: list[LesionSummary] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The summary's part of the JSON report (:data:`SUMMARY_KEYS`, in that order)."""
        return {"liver_ml": self.liver_ml, "tumor_ml": self.tumour_ml, "tumor_burden_pct": self.tumour_burden_pct,
                "lesions": [r.to_json() for r in self.lesions],
                "rejected_lesions": [r.to_json() for r in self.rejected_lesions]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StudySummary:
        """The summary of a JSON report (other keys of the report are ignored)."""
        return cls(liver_ml=d["liver_ml"], tumour_ml=d["tumor_ml"], tumour_burden_pct=d["tumor_burden_pct"],
                   lesions=[LesionSummary.from_json(r) for r in d.get("lesions", [])],
                   rejected_lesions=[LesionSummary.from_json(r) for r in d.get("rejected_lesions", [])])

    def table(self) -> list[LesionSummary]:
        """The lesions with their review state, then the rejected ones numbered after them: the rows
        of the lesion CSV and of the PDF report."""
        n = len(self.lesions)
        return list(self.lesions) + [replace(r, id=n + i) for i, r in enumerate(self.rejected_lesions, start=1)]
