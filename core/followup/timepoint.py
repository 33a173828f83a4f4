"""One time point of a comparison: a CT, its label and who and when it is, and the patient check.

Why a record of its own: the comparison needs the CT, the label (segmented or read from a file),
the geometry and a few header fields, wherever they came from (a :class:`StudySession` opened from
DICOM or a volume file, a test's phantom). Comparing two different patients is refused, since every
figure of a comparison would then be meaningless, unless the caller says so on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runtime.errors import LiverSegError
from .registration import Grid


class FollowupError(LiverSegError):
    """Two studies cannot be compared as they are (different patients, no label, ...)."""


@dataclass(frozen=True)
class Patient:
    """Who and when a study is (its header fields): what :func:`check_same_patient` reads, known
    as soon as a study is open, so the GUI can ask before segmenting it."""

    name: str = ""
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""

    @classmethod
    def of_session(cls, session) -> Patient:
        """The header fields of a :class:`core.study.session.StudySession` ("" where unknown)."""
        s = session.study
        meta = s.volume.meta if s.volume is not None else None
        return cls(session.source or s.name, getattr(meta, "patient_id", "") or "",
                   getattr(meta, "patient_name", "") or "", getattr(meta, "study_date", "") or "")


@dataclass(frozen=True, eq=False)
class TimePoint:
    """A study at one time point.

    Attributes:
        hu: int16 [Z, Y, X] HU.
        label: uint8 [Z, Y, X]: 0 background, 1 liver, 2 tumour.
        spacing: (z, y, x) mm.
        origin: LPS mm of voxel [0, 0, 0].
        direction: 3x3, columns the LPS directions of the x, y, z index axes (None: identity).
        name: where it came from (shown in the reports).
        patient_id, patient_name, study_date: from the DICOM headers ("" when unknown).
        phase: the contrast phase when the caller knows it; None: read from the images
            (:func:`core.study.phase.detect_phase`).
    """

    hu: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray | None = None
    name: str = ""
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    phase: str | None = None

    def __post_init__(self) -> None:
        if self.hu.shape != self.label.shape:
            raise FollowupError(f"{self.name or 'study'}: label {self.label.shape} does not fit the CT {self.hu.shape}")

    @property
    def grid(self) -> Grid:
        return Grid.of(self.spacing, self.origin, self.direction)

    @classmethod
    def from_session(cls, session, label: np.ndarray | None = None, phase: str | None = None) -> TimePoint:
        """The study of a :class:`core.study.session.StudySession` with ``label`` (default: its
        working label, else its reference)."""
        s = session.study
        label = label if label is not None else (s.label if s.label is not None else s.reference)
        if label is None:
            raise FollowupError(f"{session.source or s.name}: no segmentation to compare (segment it or give labels)")
        who = Patient.of_session(session)
        return cls(s.hu, np.asarray(label, np.uint8), tuple(s.spacing), tuple(s.origin), np.asarray(s.direction),
                   name=who.name, patient_id=who.patient_id, patient_name=who.patient_name,
                   study_date=who.study_date, phase=phase)

    def info(self) -> dict:
        """Name, patient, date, shape and spacing (the JSON form's header of a study)."""
        return {"name": self.name, "patient_id": self.patient_id, "patient_name": self.patient_name,
                "study_date": self.study_date, "shape": [int(n) for n in self.hu.shape],
                "spacing_mm": [round(float(s), 4) for s in self.spacing]}


def _norm(text: str) -> str:
    """Patient names and ids compared without case, spacing or DICOM's ``^`` separators."""
    return " ".join(str(text).replace("^", " ").upper().split())


def check_same_patient(baseline: TimePoint | Patient, followup: TimePoint | Patient,
                       allow_different: bool = False) -> list[str]:
    """Refuse two studies whose patient id or name differ where both have one; returns warnings
    (the fields that could not be checked, or the difference that was allowed).

    Raises:
        FollowupError: the patients differ and ``allow_different`` is False.
    """
    notes, diffs = [], []
    for field_, what in (("patient_id", "patient ID"), ("patient_name", "patient name")):
        a, b = _norm(getattr(baseline, field_)), _norm(getattr(followup, field_))
        if a and b and a != b:
            diffs.append(f"{what} {getattr(baseline, field_)!r} vs {getattr(followup, field_)!r}")
        elif not (a and b):
            notes.append(f"the {what} could not be checked (missing in "
                         f"{'both studies' if not (a or b) else 'one study'})")
    if diffs and not allow_different:
        raise FollowupError(f"{followup.name or 'follow-up'}: not the baseline's patient ({'; '.join(diffs)}); "
                            f"compare anyway only on purpose (--different-patients)")
    if diffs:
        notes.append("different patients compared on purpose: " + "; ".join(diffs))
    return notes
