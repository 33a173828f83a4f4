"""core.io.dicom: every refusal is one DicomError line naming the folder or file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless

from core.io.dicom import DicomError, load_series, scan
from core.io.dicom.write import SeriesIds, ct_slice, make_uid
from core.runtime.errors import LiverSegError
from tests.core.factory import hu_volume, write_series


def refused(folder, match: str, **kw) -> str:
    with pytest.raises(DicomError) as info:
        load_series(folder, **kw)
    msg = str(info.value)
    assert isinstance(info.value, LiverSegError)
    assert "\n" not in msg and match in msg, msg
    return msg


def test_missing_and_empty_folder(tmp_path):
    assert str(tmp_path / "nope") in refused(tmp_path / "nope", "no such file or folder")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "empty folder")


def test_no_image_series(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.bin").write_bytes(b"\x00" * 300)
    refused(tmp_path, "no image series among 2 file(s)")


def test_single_slice(tmp_path):
    write_series(tmp_path, hu_volume(1, 16))
    refused(tmp_path, "only one slice")


def test_truncated_native_pixels(tmp_path):
    paths = write_series(tmp_path, hu_volume(4, 32))
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) - 700])
    msg = refused(tmp_path, "truncated pixel data")
    assert paths[2].name in msg


def test_corrupt_compressed_pixels(tmp_path):
    paths = write_series(tmp_path, hu_volume(3, 32, seed=2), transfer_syntax=JPEG2000Lossless)
    ds = pydicom.dcmread(paths[1])
    frag = bytearray(ds.PixelData)
    frag[40:200] = b"\xff" * 160  # inside the J2K codestream
    ds.PixelData = bytes(frag)
    ds.save_as(paths[1])
    msg = refused(tmp_path, "pixel data")
    assert paths[1].name in msg


def test_missing_pixel_data(tmp_path):
    paths = write_series(tmp_path, hu_volume(3, 16))
    ds = pydicom.dcmread(paths[0])
    del ds.PixelData
    ds.save_as(paths[0])
    assert paths[0].name in refused(tmp_path, "missing pixel data")


def test_rgb_refused(tmp_path):
    ids = SeriesIds(make_uid("r1"), make_uid("r2"), make_uid("r3"))
    for k in range(3):
        ds = ct_slice(np.zeros((8, 8), np.uint8), ids, k, (0, 0, k), (1, 1), 1)
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.PixelData = np.zeros((8, 8, 3), np.uint8).tobytes()
        ds.save_as(tmp_path / f"rgb{k}", enforce_file_format=True)
    refused(tmp_path, "colour image")


def test_non_ct_refused(tmp_path):
    write_series(tmp_path, hu_volume(4, 16), modality="MR")
    refused(tmp_path, "no CT series (found MR (4 slices))")
    uid = scan(tmp_path)[0].series_uid
    refused(tmp_path, "is MR, not CT", series_uid=uid)


def test_mixed_sizes_in_one_series_load_the_largest_stack(tmp_path):
    write_series(tmp_path / "x", hu_volume(4, 16), uid_key="same")
    write_series(tmp_path / "y", hu_volume(2, 32), uid_key="same", z0=100)
    result = scan(tmp_path)
    assert len(result) == 2 and all(s.split for s in result)
    v = load_series(tmp_path)
    assert v.shape == (4, 16, 16)
    assert any("another size or orientation" in w and "skipped" in w for w in v.warnings)
    assert load_series(tmp_path, series_uid=result[0].series_uid).shape == (4, 16, 16)
    assert load_series(tmp_path, series_uid=result[1].key).shape == (2, 32, 32)  # by key: that stack


def test_localizer_sharing_the_series_uid_is_skipped(tmp_path):
    """A scout (one coronal slice of another size) saved with the axial stack, same UID."""
    hu = hu_volume(6, 16)
    write_series(tmp_path, hu, uid_key="ct")
    scout = np.full((1, 24, 24), -500, np.int16)
    write_series(tmp_path / "scout", scout, uid_key="ct", name="loc", orientation=(1, 0, 0, 0, 0, -1))
    v = load_series(tmp_path)
    assert v.shape == (6, 16, 16)
    np.testing.assert_array_equal(v.hu, hu)
    assert any("1 slice(s) of another size or orientation" in w for w in v.warnings)


def test_equal_stacks_in_one_series_refused(tmp_path):
    write_series(tmp_path / "x", hu_volume(3, 16), uid_key="same")
    write_series(tmp_path / "y", hu_volume(3, 32), uid_key="same", z0=100)
    msg = refused(tmp_path, "mixed slice sizes")
    assert "16x16 (3 files)" in msg and "32x32 (3 files)" in msg


def test_absurd_dimensions_never_allocated(tmp_path):
    paths = write_series(tmp_path, hu_volume(3, 16))
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.Rows = ds.Columns = 65535
        ds.save_as(p)
    refused(tmp_path, "absurd dimensions")


def test_too_big_for_memory_refused(tmp_path, monkeypatch):
    write_series(tmp_path, hu_volume(3, 32))
    monkeypatch.setattr("core.io.dicom.load.memory_budget", lambda: 1000)
    refused(tmp_path, "more than the")


def test_unknown_series_uid(tmp_path):
    write_series(tmp_path, hu_volume(3, 16))
    refused(tmp_path, "no series with UID 1.2.3", series_uid="1.2.3")


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_cli_info_lists_series(tmp_path):
    write_series(tmp_path / "ct", hu_volume(5, 16), uid_key="k1")
    (tmp_path / "junk.txt").write_text("x")
    r = _cli("info", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert make_uid("series", "k1") in r.stdout
    assert "modality CT  slices 5  size 16 x 16" in r.stdout
    assert "junk.txt: not a DICOM file" in r.stdout


def test_cli_info_refusal_is_one_line_exit_2(tmp_path):
    (tmp_path / "e").mkdir()
    r = _cli("info", str(tmp_path / "e"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "empty folder" in r.stderr
    assert "Traceback" not in r.stderr
