"""core.synthetic.phantom: realistic, varied, and readable by pydicom and SimpleITK."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import numpy as np
import pydicom
import pytest

from core.synthetic.phantom import make_phantom, write_patient


@pytest.fixture(scope="module")
def cases():
    return [make_phantom(seed, slices=32, size=96) for seed in range(4)]


def test_shapes_types_and_labels(cases):
    for c in cases:
        assert c.hu.shape == c.label.shape == (32, 96, 96)
        assert c.hu.dtype == np.int16 and c.label.dtype == np.uint8
        assert set(np.unique(c.label)) <= {0, 1, 2}
        assert (c.label == 1).sum() > 1000


def test_realistic_hounsfield_values(cases):
    for c in cases:
        assert c.hu[0, 0, 0] <= -900  # air outside the body
        liver = np.median(c.hu[c.label == 1])
        assert 50 <= liver <= 130, liver
        assert c.hu.max() > 400  # bone
        assert ((c.hu > -200) & (c.hu < -50)).sum() > 1000  # fat
        if (c.label == 2).any():
            assert abs(np.median(c.hu[c.label == 2]) - liver) < 120


def test_seeds_vary_and_are_deterministic(cases):
    volumes = [int((c.label > 0).sum()) for c in cases]
    assert len(set(volumes)) == len(volumes)
    np.testing.assert_array_equal(make_phantom(2, 32, 96).hu, cases[2].hu)
    n_tumours = {len(make_phantom(s, 16, 64).tumours) for s in range(12)}
    assert len(n_tumours) >= 3  # 0 to several tumours across seeds


def test_written_patient_reads_in_pydicom_simpleitk_and_ours(tmp_path, cases):
    import SimpleITK as sitk

    from core.io.dicom import load_series
    case = cases[1]
    folder = write_patient(case, tmp_path, 7)
    assert folder.name == f"phantom-s{case.seed}-7"
    with zipfile.ZipFile(folder / "PATIENT_DICOM.zip") as z:
        z.extractall(tmp_path / "x")
        names = z.namelist()
    assert "PATIENT_DICOM/image_0" in names
    ds = pydicom.dcmread(tmp_path / "x" / "PATIENT_DICOM" / "image_3")
    assert ds.Modality == "CT" and ds.RescaleIntercept == -1024 and ds.PixelRepresentation == 0
    v = load_series(tmp_path / "x")
    np.testing.assert_array_equal(v.hu, case.hu)
    assert v.spacing == pytest.approx(case.spacing, abs=1e-4)
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(str(tmp_path / "x" / "PATIENT_DICOM")))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(r.Execute()), case.hu)
    with zipfile.ZipFile(folder / "MASKS_DICOM.zip") as z:
        structures = {n.split("/")[1] for n in z.namelist() if n.count("/") == 2 and n.endswith("image_0")}
    assert "liver" in structures
    assert sum(s.startswith("livertumor") for s in structures) >= (1 if (case.label == 2).any() else 0)


def test_cli_phantom(tmp_path):
    r = subprocess.run([sys.executable, "-m", "app", "phantom", str(tmp_path), "--patients", "2", "--seed", "5",
                        "--slices", "12", "--size", "48"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for k in (1, 2):  # named as phantoms (seeds 5, 6), never as the real 3Dircadb1.N
        assert (tmp_path / f"phantom-s{4 + k}-{k}" / "PATIENT_DICOM.zip").exists()
        assert (tmp_path / f"phantom-s{4 + k}-{k}" / "MASKS_DICOM.zip").exists()
    with zipfile.ZipFile(tmp_path / "phantom-s5-1" / "PATIENT_DICOM.zip") as z:
        ds = pydicom.dcmread(io.BytesIO(z.read("PATIENT_DICOM/image_0")))
    assert ds.PatientID == "phantom-s5-1" and "phantom" in str(ds.PatientName)
