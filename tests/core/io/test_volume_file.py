"""NIfTI CT volumes in any axis order and direction: shown like DICOM, labels back on the file's grid."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from core.io.export import ExportError, write_dicom_seg, write_nifti
from core.io.volume_file import VolumeFileError, is_volume_file, open_volume, read_volume_file
from core.study.study import Study

ROOT = Path(__file__).resolve().parents[3]
SPACING = (2.5, 0.8, 0.7)  # z, y, x (mm)


def canonical_ct(z=6, y=20, x=24) -> np.ndarray:
    """[Z, Y, X] int16 in our layout (x to the patient's left, y posterior, z superior), all asymmetric."""
    zz, yy, xx = np.meshgrid(np.arange(z), np.arange(y), np.arange(x), indexing="ij")
    hu = (-1000 + 37 * zz + 11 * yy + 3 * xx).astype(np.int16)
    hu[1:4, 5:9, 2:6] = 200  # a block near the patient's right, anterior, low
    return hu


def write_as(path: Path, hu: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray]:
    """Write ``hu`` (ours) as NIfTI stored in ``order``; returns (file array, file affine)."""
    sz, sy, sx = SPACING
    xyz = np.transpose(hu, (2, 1, 0))  # i=x (L), j=y (P), k=z (S)
    lps = np.diag([sx, sy, sz, 1.0])
    lps[:3, 3] = (-90.0, 40.0, 300.0)
    if order == "RAS":  # flip i and j so they run towards R and A
        arr = xyz[::-1, ::-1, :]
        flip = np.eye(4)
        flip[0, 0], flip[0, 3] = -1, xyz.shape[0] - 1
        flip[1, 1], flip[1, 3] = -1, xyz.shape[1] - 1
        lps = lps @ flip
    elif order == "LPS":
        arr = xyz
    elif order == "permuted":  # stored as (z, x, y) with z running inferior
        arr = np.transpose(xyz, (2, 0, 1))[::-1]
        perm = np.zeros((4, 4))
        perm[3, 3] = 1
        perm[2, 0], perm[2, 3] = -1, xyz.shape[2] - 1  # file i -> z, reversed
        perm[0, 1] = 1  # file j -> x
        perm[1, 2] = 1  # file k -> y
        lps = lps @ perm
    else:
        raise ValueError(order)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    img = nib.Nifti1Image(np.ascontiguousarray(arr), ras)
    nib.save(img, str(path))
    return arr, ras


@pytest.mark.parametrize("order", ["RAS", "LPS", "permuted"])
def test_any_orientation_reads_like_dicom_and_labels_go_back(tmp_path, order):
    hu = canonical_ct()
    path = tmp_path / f"ct-{order}.nii.gz"
    arr, ras = write_as(path, hu, order)
    assert is_volume_file(path)
    v = read_volume_file(path)
    np.testing.assert_array_equal(v.hu, hu)  # same picture whatever the storage order
    assert v.spacing == pytest.approx(SPACING)
    np.testing.assert_allclose(v.direction, np.eye(3), atol=1e-6)
    assert v.origin == pytest.approx((-90.0, 40.0, 300.0))
    assert v.warnings == ()
    # a label computed on our layout goes back onto the file's grid, with the file's affine
    label = (v.hu >= 200).astype(np.uint8)
    out = write_nifti(tmp_path / f"seg-{order}.nii.gz", label, Study.from_volume(v))
    back = nib.load(str(out))
    np.testing.assert_allclose(back.affine, ras, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(back.dataobj), (arr >= 200).astype(np.uint8))
    with pytest.raises(ExportError, match="refusing to overwrite the source volume file"):
        write_nifti(path, label, v, force=True)
    with pytest.raises(ExportError, match="needs a study opened from DICOM"):
        write_dicom_seg(tmp_path / "x.dcm", label, v)


def test_float_scaled_and_odd_intensity_files(tmp_path):
    hu = canonical_ct()
    img = nib.Nifti1Image(hu.astype(np.float32).transpose(2, 1, 0) / 2, np.diag([-0.7, -0.8, 2.5, 1]))
    img.header.set_slope_inter(2.0, 0.0)
    nib.save(img, str(tmp_path / "f.nii"))
    np.testing.assert_array_equal(read_volume_file(tmp_path / "f.nii").hu, hu)
    mr = nib.Nifti1Image(np.random.default_rng(0).uniform(0, 50, (8, 8, 4)).astype(np.float32), np.eye(4))
    nib.save(mr, str(tmp_path / "mr.nii.gz"))
    v = read_volume_file(tmp_path / "mr.nii.gz")  # a warning, not a refusal
    assert any("do not look like CT" in w for w in v.warnings)


def test_bad_volume_files_refused_with_one_line(tmp_path):
    def refused(path, match):
        with pytest.raises(VolumeFileError) as info:
            read_volume_file(path)
        msg = str(info.value)
        assert match in msg and str(path) in msg and "\n" not in msg, msg

    (tmp_path / "junk.nii").write_bytes(b"not a nifti file at all" * 20)
    refused(tmp_path / "junk.nii", "not a NIfTI volume")
    nib.save(nib.Nifti1Image(np.zeros((16, 16), np.int16), np.eye(4)), str(tmp_path / "flat.nii"))
    refused(tmp_path / "flat.nii", "2D image")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 3), np.int16), np.eye(4)), str(tmp_path / "4d.nii"))
    refused(tmp_path / "4d.nii", "more than one volume")
    ok = tmp_path / "ok.nii.gz"
    write_as(ok, canonical_ct(), "LPS")
    raw = gzip.decompress(ok.read_bytes())
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) - 500])
    refused(tmp_path / "cut.nii", "truncated or corrupt")
    refused(tmp_path / "missing.nii.gz", "no such file")


def test_cli_info_and_predict_take_a_volume_file(tmp_path):
    from tests.core.models import threshold_model
    hu = canonical_ct(z=8, y=32, x=32)
    src = tmp_path / "in"
    src.mkdir()
    arr, ras = write_as(src / "ct.nii.gz", hu, "RAS")
    lm = threshold_model(tmp_path / "liver", "liver", 60)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
    r = cli("info", str(src / "ct.nii.gz"))
    assert r.returncode == 0, r.stderr
    assert "32 x 32 x 8" in r.stdout and "RAS" in r.stdout
    r = cli("predict", str(src / "ct.nii.gz"), "--liver-model", str(lm), "--liver-only",
            "--out", str(tmp_path / "seg.nii.gz"))
    assert r.returncode == 0, r.stderr[-2000:]
    seg = nib.load(str(tmp_path / "seg.nii.gz"))
    np.testing.assert_allclose(seg.affine, ras, atol=1e-5)
    assert seg.shape == arr.shape
    assert open_volume(src / "ct.nii.gz").hu.shape == hu.shape
