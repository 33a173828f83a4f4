"""core.datasets.hcc_tace: the collection's archives unpacked at run time and imported with labels."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

import core.datasets.hcc_tace as H
from core.datasets.dataset import load_case, read_manifest
from core.io.dicom import load_series
from core.io.export import write_nifti
from core.runtime.errors import DatasetError
from tests.core.factory import hu_volume, write_series

FAKE = (H.HccSeries("HCC_900_20000101_s4_acq2", "HCC_900", "4.000000-Recon 2 AP-1", 2, "arterial", 2.5),
        H.HccSeries("HCC_900_20000101_s4_acq3", "HCC_900", "4.000000-Recon 2 AP-1", 3, "portal-venous", 2.5))


@pytest.fixture
def archive(tmp_path, monkeypatch):
    """A patient archive in TCIA's layout whose one series holds two acquisitions, and a label per volume."""
    tree = tmp_path / "tree" / "HCC-TACE-Seg" / "HCC_900" / "01-01-2000-NA-CT-1" / "4.000000-Recon 2 AP-1"
    art, pv = hu_volume(5, 16), hu_volume(5, 16) + 100
    write_series(tree, art, name="a", acquisition=2)
    write_series(tree, pv, name="p", acquisition=3)
    src = tmp_path / "src"
    src.mkdir()
    with tarfile.open(src / "HCC_900.tar.xz", "w:xz") as tar:
        tar.add(tmp_path / "tree" / "HCC-TACE-Seg", arcname="HCC-TACE-Seg")
    labels = tmp_path / "labels"
    labels.mkdir()
    for s in FAKE:
        vol = load_series(tree, acquisition=s.acquisition)
        lab = np.zeros(vol.shape, np.uint8)
        lab[1:4, 4:12, 4:12] = 1
        lab[2, 6:9, 6:9] = 2 if s.acquisition == 2 else 1
        write_nifti(labels / f"{s.name}.nii.gz", lab, vol)
    monkeypatch.setattr(H, "SERIES", FAKE)
    return src, labels, art, pv


def test_import_writes_one_case_per_acquisition_with_its_labels(archive, tmp_path):
    src, labels, art, pv = archive
    out, scratch = tmp_path / "ds", tmp_path / "scratch"
    ids = H.import_hcc_tace(src, labels, out, scratch)
    assert ids == [s.name for s in FAKE]
    a, p = load_case(out, FAKE[0].name), load_case(out, FAKE[1].name)
    np.testing.assert_array_equal(a.hu, art)
    np.testing.assert_array_equal(p.hu, pv)
    assert (a.label == 2).sum() == 9 and (p.label == 2).sum() == 0 and (p.label == 1).sum() == 3 * 8 * 8
    entry = read_manifest(out)["cases"][FAKE[0].name]
    assert entry["kind"] == "ct" and "HCC-TACE-Seg" in entry["source"]
    assert a.meta["labels"] == "silver" and a.meta["licence"] == "CC BY 4.0" and a.meta["phase"] == "arterial"
    # a second run finds both cases and unpacks nothing again
    (scratch / f"HCC_900{H.UNPACKED_MARK}").unlink()
    assert H.import_hcc_tace(src, labels, out, scratch) == ids
    assert not (scratch / f"HCC_900{H.UNPACKED_MARK}").exists()


def test_missing_archive_and_missing_labels_are_named(archive, tmp_path):
    src, labels, _, _ = archive
    with pytest.raises(DatasetError, match="no HCC-TACE-Seg label files"):
        H.import_hcc_tace(src, tmp_path, tmp_path / "ds", tmp_path / "s")
    (src / "HCC_900.tar.xz").unlink()
    with pytest.raises(DatasetError, match=r"HCC_900\.tar\.xz: missing"):
        H.import_hcc_tace(src, labels, tmp_path / "ds", tmp_path / "s")


def test_an_archive_member_pointing_outside_is_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with tarfile.open(src / "HCC_901.tar.xz", "w:xz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(DatasetError, match="HCC_901.tar.xz"):
        H.unpack(src, tmp_path / "out", ("HCC_901",))
    assert not (tmp_path / "evil.txt").exists()


def test_the_table_names_every_series_once_with_its_phase():
    names = [s.name for s in H.SERIES]
    assert len(names) == len(set(names)) == 11
    assert {s.phase for s in H.SERIES} == {"arterial", "portal-venous", "unenhanced"}
    assert H.series_named("HCC_015_19981101_s4").acquisition is None
    assert [s.name for s in H.SERIES if H.liver_only(s.name)] == [s.name for s in H.SERIES if s.phase == "unenhanced"]
    with pytest.raises(DatasetError, match="not an HCC-TACE-Seg volume"):
        H.series_named("HCC_000")


LABELS = Path(__file__).resolve().parents[3] / "resources" / "training-labels" / "hcc-tace-seg"


@pytest.mark.shared
def test_the_committed_silver_labels_fit_their_series_and_the_phases_read_from_the_images(hcc_unpacked):
    """Every committed label lies on its volume's grid (one acquisition of a two-acquisition series
    included), holds liver (and tumour only where the series' labels outline tumours), and the
    contrast phase read from the images is the one the table records."""
    from core.io.label_file import read_nifti_label
    from core.study.phase import detect_phase
    done = [s for s in H.SERIES if (LABELS / f"{s.name}.nii.gz").exists()]
    assert len(done) == len(H.SERIES) == 11
    for s in done:
        vol = H.load_volume(hcc_unpacked, s)
        assert vol.meta.acquisition == s.acquisition
        label = read_nifti_label(LABELS / f"{s.name}.nii.gz", vol)
        liver_ml = float((label > 0).sum()) * float(np.prod(vol.spacing)) / 1000
        assert 900 < liver_ml < 2600, (s.name, liver_ml)
        assert (label == 2).any() == (s.tumours and s.name != "HCC_006_19990806_s103"), s.name
        assert detect_phase(vol.hu, vol.spacing, label, vol.direction).phase == s.phase, s.name
