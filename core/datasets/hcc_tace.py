"""HCC-TACE-Seg (The Cancer Imaging Archive, CC BY 4.0) with the project's silver labels, as
training cases.

The CT ships one ``PATIENT.tar.xz`` per patient (TCIA's folder layout inside); it is unpacked at
run time into a scratch folder and never copied into the repository. The labels are ours
(``resources/training-labels/hcc-tace-seg/NAME.nii.gz``, one per volume, on the series' own grid):
a teacher network's masks fused with the cascade's and corrected by review; silver, never an
expert's (provenance: the README beside them). Two series hold two acquisitions (contrast
phases) under one series UID: each acquisition is its own volume and its own case.
"""

from __future__ import annotations

import logging
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..io.dicom import load_series
from ..io.label_file import read_nifti_label
from ..runtime.errors import DatasetError
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from .dataset import Case, list_cases, read_manifest, write_case

log = logging.getLogger(__name__)

DATASET_NAME = "HCC-TACE-Seg (The Cancer Imaging Archive)"
LICENCE = "CC BY 4.0"
CITATION = ("Moawad AW, Fuentes D, Morshid A, et al. Multimodality annotated HCC cases with and without "
            "advanced imaging segmentation [Data set]. The Cancer Imaging Archive, 2021. "
            "https://doi.org/10.7937/TCIA.5FNA-0924")
LABEL_QUALITY = "silver"  # a model's masks corrected by review, never an expert's
UNPACKED_MARK = ".liverseg-unpacked"


@dataclass(frozen=True)
class HccSeries:
    """One volume of the collection: a series, or one acquisition of a series holding two.

    Attributes:
        name: the case id and the label file's stem, ``PATIENT_YYYYMMDD_sSERIES[_acqN]``.
        patient: e.g. ``HCC_007`` (the archive ``HCC_007.tar.xz``).
        folder: the series folder as TCIA names it.
        acquisition: AcquisitionNumber where the series holds several, else None.
        phase: the contrast phase read from the images (aorta, portal vein and liver HU).
        slice_mm: slice spacing.
        tumours: whether the labels outline the tumours; False on the unenhanced 10 mm series, whose
            labels outline the liver only (lesions there are not visible reliably enough to label),
            so the tumour stage does not train on them.
    """

    name: str
    patient: str
    folder: str
    acquisition: int | None
    phase: str
    slice_mm: float
    tumours: bool = True


SERIES: tuple[HccSeries, ...] = (
    HccSeries("HCC_006_19990806_s103", "HCC_006", "103.000000-LIVER 3 PHASE AP-45033", None, "portal-venous", 2.5),
    HccSeries("HCC_007_19971227_s2", "HCC_007", "2.000000-PRE LIVER-82398", None, "unenhanced", 10.0, tumours=False),
    HccSeries("HCC_007_19971227_s4_acq2", "HCC_007", "4.000000-Recon 2 LIVER 3 PHASE AP-28011", 2,
              "arterial", 2.5),
    HccSeries("HCC_007_19971227_s4_acq3", "HCC_007", "4.000000-Recon 2 LIVER 3 PHASE AP-28011", 3,
              "portal-venous", 2.5),
    HccSeries("HCC_007_19980314_s2", "HCC_007", "2.000000-PRE LIVER-48636", None, "unenhanced", 10.0, tumours=False),
    HccSeries("HCC_007_19980314_s4_acq1", "HCC_007", "4.000000-Recon 2 3 PHASE LIVER ABD-87008", 1,
              "arterial", 2.5),
    HccSeries("HCC_007_19980314_s4_acq3", "HCC_007", "4.000000-Recon 2 3 PHASE LIVER ABD-87008", 3,
              "portal-venous", 2.5),
    HccSeries("HCC_009_19980215_s2", "HCC_009", "2.000000-PRE LIVER-36498", None, "unenhanced", 10.0, tumours=False),
    HccSeries("HCC_009_19980215_s103", "HCC_009", "103.000000-LIVER 3 PHASE CAP-83135", None, "portal-venous", 2.5),
    HccSeries("HCC_015_19981101_s103", "HCC_015", "103.000000-LIVER 3 PHASE AP-44492", None, "portal-venous", 2.5),
    HccSeries("HCC_015_19981101_s4", "HCC_015", "4.000000-Recon 2 LIVER 3 PHASE AP-06472", None, "arterial", 2.5),
)
PATIENTS = tuple(sorted({s.patient for s in SERIES}))


def series_named(name: str) -> HccSeries:
    for s in SERIES:
        if s.name == name:
            return s
    known = ", ".join(s.name for s in SERIES)
    raise DatasetError(f"{name}: not an HCC-TACE-Seg volume of this project (known: {known})")


def liver_only(case_id: str) -> bool:
    """A volume of the collection whose labels outline the liver but not its tumours."""
    return any(s.name == case_id and not s.tumours for s in SERIES)


def unpack(src: str | os.PathLike, out: str | os.PathLike, patients: tuple[str, ...] = PATIENTS,
           cancel: CancelToken | None = None) -> Path:
    """Unpack the patients' ``.tar.xz`` archives from ``src`` into ``out`` (once: a patient already
    unpacked there is skipped). Returns ``out``."""
    src, out = Path(src), Path(out)
    for patient in patients:
        check(cancel)
        mark = out / f"{patient}{UNPACKED_MARK}"
        if mark.exists():
            continue
        archive = src / f"{patient}.tar.xz"
        if not archive.is_file():
            raise DatasetError(f"{archive}: missing (HCC-TACE-Seg ships one .tar.xz per patient)")
        try:
            with tarfile.open(archive, "r:xz") as tar:
                if hasattr(tarfile, "data_filter"):  # no absolute paths, links out or devices
                    tar.extractall(out, filter="data")
                else:  # Python < 3.10.12: the same check by hand
                    for m in tar.getmembers():
                        if m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                            raise DatasetError(f"{archive}: unsafe member {m.name!r}")
                    tar.extractall(out)
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise DatasetError(f"{archive}: cannot unpack ({exc})") from None
        mark.write_text("ok\n")
    return out


def series_folder(unpacked: str | os.PathLike, s: HccSeries) -> Path:
    """The series' folder in an unpacked tree (TCIA's ``HCC-TACE-Seg/PATIENT/STUDY/SERIES``)."""
    found = sorted(Path(unpacked).glob(f"HCC-TACE-Seg/{s.patient}/*/{s.folder}"))
    if len(found) != 1:
        raise DatasetError(f"{unpacked}: {'no' if not found else len(found)} folder(s) named {s.folder!r} "
                           f"for {s.patient}")
    return found[0]


def load_volume(unpacked: str | os.PathLike, s: HccSeries, cancel: CancelToken | None = None):
    """The CT volume of one series (its acquisition where it holds two)."""
    return load_series(series_folder(unpacked, s), cancel=cancel, acquisition=s.acquisition)


def import_hcc_tace(src: str | os.PathLike, labels: str | os.PathLike, out: str | os.PathLike,
                    scratch: str | os.PathLike, progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> list[str]:
    """Write every volume that has a label file in ``labels`` as a ``ct`` case of the dataset
    ``out`` (cases already there are kept). The archives are unpacked into ``scratch``.

    Returns the case ids written or found.
    """
    labels = Path(labels)
    todo = [s for s in SERIES if (labels / f"{s.name}.nii.gz").is_file()]
    if not todo:
        raise DatasetError(f"{labels}: no HCC-TACE-Seg label files (NAME.nii.gz)")
    have = set(list_cases(Path(out), "ct")) if (Path(out) / "manifest.json").is_file() else set()
    need = tuple(sorted({s.patient for s in todo if s.name not in have}))
    if need:
        unpack(src, scratch, need, cancel)
    ids = []
    for i, s in enumerate(todo):
        check(cancel)
        if s.name not in have:
            vol = load_volume(scratch, s, cancel)
            label = read_nifti_label(labels / f"{s.name}.nii.gz", vol)
            write_case(Path(out), Case(s.name, vol.hu, label.astype("uint8"), vol.spacing, vol.origin, vol.direction,
                                 meta={"source": f"{DATASET_NAME}: {s.patient}/{s.folder}"
                                                 + (f" acquisition {s.acquisition}" if s.acquisition else ""),
                                       "licence": LICENCE, "labels": LABEL_QUALITY, "phase": s.phase,
                                       "tumour_labels": s.tumours}))
        ids.append(s.name)
        report(progress, "import", i + 1, len(todo))
    log.info("HCC-TACE-Seg: %d case(s) in %s (%s)", len(ids), out, ", ".join(ids))
    assert set(ids) <= set(read_manifest(out)["cases"])
    return ids
