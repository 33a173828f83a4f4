"""Shared fixtures: paths to the shared real patient, extracted once per session."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_P17 = ROOT.parent / "shared" / "data" / "3Dircadb1.17"
NO_SHARED = "../shared/data/3Dircadb1.17 is absent (a user's clone has no shared data; CI always has it)"


@pytest.fixture(scope="session")
def p17_src() -> Path:
    """The shared patient 17 folder (PATIENT_DICOM.zip, MASKS_DICOM.zip), read-only."""
    if not (SHARED_P17 / "PATIENT_DICOM.zip").exists():
        pytest.skip(NO_SHARED)
    return SHARED_P17


@pytest.fixture(scope="session")
def p17_extracted(p17_src, tmp_path_factory) -> Path:
    """Patient 17 with both zips extracted (PATIENT_DICOM/, MASKS_DICOM/)."""
    out = tmp_path_factory.mktemp("p17") / "3Dircadb1.17"
    for name in ("PATIENT_DICOM.zip", "MASKS_DICOM.zip"):
        with zipfile.ZipFile(p17_src / name) as z:
            z.extractall(out)
    return out
