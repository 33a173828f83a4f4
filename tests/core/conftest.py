"""Fixtures shared by the core tests."""

from __future__ import annotations

import zipfile

import pytest

from core.synthetic.phantom import make_phantom, write_patient


@pytest.fixture(scope="module")
def phantom_study(tmp_path_factory):
    """A phantom patient as an extracted DICOM folder, and its truth."""
    root = tmp_path_factory.mktemp("study")
    case = make_phantom(7, 16, 64)
    folder = write_patient(case, root / "zips", 1)
    with zipfile.ZipFile(folder / "PATIENT_DICOM.zip") as z:
        z.extractall(root / "dicom")
    return root / "dicom" / "PATIENT_DICOM", case
