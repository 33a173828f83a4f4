"""What a PACS query asks and answers, and what a send returns: plain dataclasses shared by the
DIMSE and DICOMweb clients, the CLI and the GUI."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..runtime.errors import PacsError

_DATE = re.compile(r"^\d{8}$")


def _check_date(label: str, value: str) -> None:
    if value and not _DATE.match(value):
        raise PacsError(f"{label} {value!r} is not a date (YYYYMMDD)")


@dataclass(frozen=True)
class PacsQuery:
    """A study search. Empty fields match anything; ``patient_name`` may hold ``*`` wildcards.

    Attributes:
        date_from, date_to: study date range, YYYYMMDD, inclusive (either may be empty).
        modality: studies holding a series of this modality ("" for any).
    """

    patient_id: str = ""
    patient_name: str = ""
    date_from: str = ""
    date_to: str = ""
    accession: str = ""
    modality: str = "CT"
    limit: int = 500

    def __post_init__(self):
        _check_date("from date", self.date_from)
        _check_date("to date", self.date_to)
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise PacsError(f"date range {self.date_from}-{self.date_to} ends before it starts")

    @property
    def date_range(self) -> str:
        """DICOM range matching: ``A-B``, ``A-``, ``-B`` or empty."""
        if not (self.date_from or self.date_to):
            return ""
        if self.date_from == self.date_to:
            return self.date_from
        return f"{self.date_from}-{self.date_to}"


@dataclass(frozen=True)
class StudyHit:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    date: str = ""
    description: str = ""
    accession: str = ""
    modalities: str = ""
    n_series: int | None = None
    n_instances: int | None = None


@dataclass(frozen=True)
class SeriesHit:
    study_uid: str
    series_uid: str
    modality: str = ""
    number: str = ""
    description: str = ""
    n_instances: int | None = None


@dataclass
class StoreResult:
    """What the PACS said about each file sent: SOP Instance UIDs accepted and refused (with why)."""

    accepted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.accepted) and not self.failed

    def describe(self) -> str:
        text = f"{len(self.accepted)} instance(s) accepted"
        if self.failed:
            text += f", {len(self.failed)} refused ({self.failed[0][1]})"
        return text


@dataclass(frozen=True)
class RetrieveResult:
    """A series in the local cache: its folder, files, whether it came from the cache, seconds."""

    path: str
    n_files: int
    from_cache: bool
    seconds: float
