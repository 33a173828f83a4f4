"""core.io.dicom: loading odd-but-valid series, and the real patient 17."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless

from core.io.dicom import Volume, load_series, scan
from core.io.dicom.write import SeriesIds, ct_slice, make_uid
from tests.core.factory import hu_volume, write_series


def test_plain_series_roundtrip(tmp_path):
    hu = hu_volume(6, 32)
    write_series(tmp_path, hu)
    v = load_series(tmp_path)
    assert isinstance(v, Volume)
    assert v.hu.dtype == np.int16 and v.hu.shape == (6, 32, 32)
    np.testing.assert_array_equal(v.hu, hu)
    assert v.spacing == pytest.approx((2.5, 0.7, 0.7))
    assert v.warnings == ()
    assert len(v.meta.sop_instance_uids) == 6 and v.meta.modality == "CT"
    np.testing.assert_allclose(v.affine()[:3, 3], (0, 0, 0))
    np.testing.assert_allclose(np.diag(v.affine())[:3], (0.7, 0.7, 2.5))


@pytest.mark.parametrize("ts", [ImplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless, JPEG2000Lossless,
                                JPEGLSLossless], ids=["implicit", "big-endian", "rle", "jpeg2000", "jpeg-ls"])
def test_transfer_syntaxes_lossless(tmp_path, ts):
    hu = hu_volume(4, 32, seed=3)
    write_series(tmp_path, hu, transfer_syntax=ts)
    assert pydicom.dcmread(next(tmp_path.iterdir())).file_meta.TransferSyntaxUID == ts
    np.testing.assert_array_equal(load_series(tmp_path).hu, hu)


def test_jpeg_baseline_8bit(tmp_path):
    """JPEG baseline (lossy, 8-bit), encoded here with Pillow, decoded by pylibjpeg."""
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate
    ids = SeriesIds(make_uid("j1"), make_uid("j2"), make_uid("j3"))
    img = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    for k in range(3):
        ds = ct_slice(img, ids, k, (0, 0, k * 2.0), (1, 1), 2.0, intercept=-100)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
        ds.save_as(tmp_path / f"j{k}", enforce_file_format=True)
    v = load_series(tmp_path)
    assert np.abs(v.hu.astype(int) - (img.astype(int) - 100)).max() <= 4


def test_unsigned_with_intercept_and_float_slope(tmp_path):
    hu = hu_volume(5, 16, seed=4)
    write_series(tmp_path / "u", hu, unsigned=True)
    np.testing.assert_array_equal(load_series(tmp_path / "u").hu, hu)
    hu2 = (hu // 2) * 2
    write_series(tmp_path / "s", hu2, slope=2.0)
    np.testing.assert_array_equal(load_series(tmp_path / "s").hu, hu2)


def test_bits_stored_12_masks_high_bits(tmp_path):
    hu = np.clip(hu_volume(3, 16, seed=5), -1024, 3071)
    paths = write_series(tmp_path, hu, unsigned=True)
    for p in paths:  # put garbage in the 4 unused high bits, as some scanners do
        ds = pydicom.dcmread(p)
        ds.BitsStored, ds.HighBit = 12, 11
        arr = np.frombuffer(ds.PixelData, dtype="<u2") | 0xF000
        ds.PixelData = arr.astype("<u2").tobytes()
        ds.save_as(p)
    np.testing.assert_array_equal(load_series(tmp_path).hu, hu)


def test_decreasing_z_and_order_by_position_not_number(tmp_path):
    hu = hu_volume(5, 16, seed=6)
    # Instance 1 is the top slice: positions decrease with the instance number.
    write_series(tmp_path, hu[::-1].copy(), z_step=-3.0, z0=12.0)
    v = load_series(tmp_path)
    np.testing.assert_array_equal(v.hu, hu)  # ascending position along the normal
    assert v.origin[2] == pytest.approx(0.0)
    assert v.spacing[0] == pytest.approx(3.0)


def test_missing_instance_numbers_and_extensions(tmp_path):
    hu = hu_volume(4, 16, seed=7)
    write_series(tmp_path, hu, instance_numbers=False, ext=".dcm")
    np.testing.assert_array_equal(load_series(tmp_path).hu, hu)


def test_mixed_series_junk_and_nested_folders(tmp_path):
    big, small = hu_volume(7, 16, seed=8), hu_volume(3, 16, seed=9)
    write_series(tmp_path / "a" / "deep" / "er", big, uid_key="big")
    write_series(tmp_path / "b", small, uid_key="small")
    write_series(tmp_path / "mr", hu_volume(9, 16), uid_key="mr", modality="MR")
    (tmp_path / "notes.txt").write_text("not dicom")
    (tmp_path / "a" / "random.bin").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "empty").write_bytes(b"")
    sr = pydicom.Dataset()  # a structured report: not an image
    sr.SOPClassUID = pydicom.uid.BasicTextSRStorage
    sr.SOPInstanceUID = make_uid("sr")
    sr.Modality = "SR"
    sr.file_meta = pydicom.dataset.FileMetaDataset()
    sr.file_meta.MediaStorageSOPClassUID = sr.SOPClassUID
    sr.file_meta.MediaStorageSOPInstanceUID = sr.SOPInstanceUID
    sr.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    sr.save_as(tmp_path / "report", enforce_file_format=True)
    dicomdir = pydicom.Dataset()
    dicomdir.file_meta = pydicom.dataset.FileMetaDataset()
    dicomdir.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dicomdir.file_meta.MediaStorageSOPInstanceUID = make_uid("dd")
    dicomdir.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dicomdir.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)

    result = scan(tmp_path)
    assert [s.n_slices for s in result] == [9, 7, 3]
    reasons = dict((p.split("/")[-1], r) for p, r in result.skipped)
    assert "not a DICOM file" in reasons["notes.txt"] and "not a DICOM file" in reasons["random.bin"]
    assert "DICOMDIR" in reasons["DICOMDIR"] and "not an image" in reasons["report"]
    v = load_series(tmp_path)  # the CT with most slices, not the bigger MR
    np.testing.assert_array_equal(v.hu, big)
    small_uid = next(s.series_uid for s in result if s.n_slices == 3)
    np.testing.assert_array_equal(load_series(tmp_path, series_uid=small_uid).hu, small)


def test_warnings_uneven_missing_tilt(tmp_path):
    hu = hu_volume(6, 16)
    write_series(tmp_path / "uneven", hu, positions=[(0, 0, z) for z in (0, 2.5, 5, 7.6, 10.4, 12.5)])
    assert any("uneven" in w for w in load_series(tmp_path / "uneven").warnings)
    write_series(tmp_path / "missing", hu, positions=[(0, 0, z) for z in (0, 2.5, 5, 10, 12.5, 15)])
    assert any("missing slices" in w for w in load_series(tmp_path / "missing").warnings)
    write_series(tmp_path / "tilt", hu, positions=[(0, 0.5 * k, 2.5 * k) for k in range(6)], tilt=11.3)
    v = load_series(tmp_path / "tilt")
    assert any("gantry tilt" in w for w in v.warnings)
    assert v.hu.shape == (6, 16, 16)


def test_duplicate_files_are_dropped(tmp_path):
    hu = hu_volume(4, 16)
    paths = write_series(tmp_path, hu)
    shutil.copy(paths[1], tmp_path / "copy_of_one")
    v = load_series(tmp_path)
    np.testing.assert_array_equal(v.hu, hu)
    assert any("share a position" in w for w in v.warnings)


def test_progress_and_cancel(tmp_path):
    from core.runtime.errors import Cancelled
    from core.runtime.jobs import CancelToken
    write_series(tmp_path, hu_volume(6, 16))
    events = []
    load_series(tmp_path, progress=events.append)
    assert {e.stage for e in events} == {"scan", "read"} and events[-1].done == events[-1].total == 6
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(Cancelled):
        load_series(tmp_path, cancel=tok)


def test_patient17_matches_simpleitk(p17_extracted):
    import SimpleITK as sitk
    folder = p17_extracted / "PATIENT_DICOM"
    v = load_series(folder)
    assert v.hu.shape == (119, 512, 512) and v.hu.dtype == np.int16
    assert v.spacing == pytest.approx((1.6, 0.743, 0.743), abs=1e-3)
    assert v.warnings == ()
    assert v.hu.min() == -1024
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    np.testing.assert_array_equal(v.hu, sitk.GetArrayFromImage(reader.Execute()))


def test_patient17_folder_with_masks_picks_the_ct(p17_extracted):
    """Masks are also 119-slice 'CT' series in IRCADb: the 16-bit CT wins the tie."""
    result = scan(p17_extracted)
    assert len(result) == 5 and all(s.n_slices == 119 for s in result)
    v = load_series(p17_extracted)
    assert all("PATIENT_DICOM" in f for f in v.meta.files)


def test_two_acquisitions_in_one_series_open_as_two_volumes(tmp_path):
    """Two contrast phases stored under one series UID at the same table positions (as two of the
    HCC-TACE-Seg series are): each acquisition is its own volume, never an interleaved mix."""
    from core.io.dicom import select_series
    from core.runtime.errors import DicomError
    art, pv = hu_volume(5, 16), hu_volume(5, 16) + 100
    write_series(tmp_path, art, name="a", acquisition=2)
    write_series(tmp_path, pv, name="p", acquisition=3)
    result = scan(tmp_path)
    assert [(s.acquisition, s.n_slices) for s in result] == [(2, 5), (3, 5)]
    assert len({s.key for s in result}) == 2 and all(s.key.endswith(f"#acq{s.acquisition}") for s in result)
    assert "AcquisitionNumber 2: 5 slices, 3: 5 slices" in result[0].warnings[0]
    np.testing.assert_array_equal(load_series(tmp_path, acquisition=3).hu, pv)
    v = load_series(tmp_path)  # default: most slices, then the lowest number
    np.testing.assert_array_equal(v.hu, art)
    assert v.meta.acquisition == 2 and "this is acquisition 2" in v.warnings[0]
    assert select_series(result, result[0].series_uid, "x").acquisition == 2
    with pytest.raises(DicomError, match="no acquisition 7; the series holds acquisitions 2, 3"):
        load_series(tmp_path, acquisition=7)


def test_acquisitions_at_other_positions_stay_one_stack(tmp_path):
    """A scan numbering each rotation as its own acquisition (no position repeated) is one volume."""
    hu = hu_volume(6, 16)
    paths = write_series(tmp_path, hu, shuffle_names=False)
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        ds.AcquisitionNumber = k // 2 + 1
        ds.save_as(p)
    result = scan(tmp_path)
    assert len(result) == 1 and result[0].acquisition is None
    np.testing.assert_array_equal(load_series(tmp_path).hu, hu)
