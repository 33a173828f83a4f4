"""Query answers (pydicom datasets from C-FIND or QIDO-RS JSON) as :mod:`.types` values."""

from __future__ import annotations

from .types import SeriesHit, StudyHit

STUDY_FIELDS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "StudyDescription",
                "AccessionNumber", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                "NumberOfStudyRelatedInstances")
SERIES_FIELDS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                 "NumberOfSeriesRelatedInstances")



def text(ds, keyword: str) -> str:
    """A query answer's field as text ("" when absent or empty)."""
    value = ds.get(keyword) if hasattr(ds, "get") else None
    if value is None:
        return ""
    value = getattr(value, "value", value)
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def count(ds, keyword: str) -> int | None:
    try:
        return int(text(ds, keyword))
    except ValueError:
        return None


def study_hit(ds) -> StudyHit:
    return StudyHit(text(ds, "StudyInstanceUID"), text(ds, "PatientID"), text(ds, "PatientName"),
                    text(ds, "StudyDate"), text(ds, "StudyDescription"), text(ds, "AccessionNumber"),
                    text(ds, "ModalitiesInStudy"), count(ds, "NumberOfStudyRelatedSeries"),
                    count(ds, "NumberOfStudyRelatedInstances"))


def series_hit(ds, study_uid: str) -> SeriesHit:
    return SeriesHit(study_uid, text(ds, "SeriesInstanceUID"), text(ds, "Modality"), text(ds, "SeriesNumber"),
                     text(ds, "SeriesDescription"), count(ds, "NumberOfSeriesRelatedInstances"))
