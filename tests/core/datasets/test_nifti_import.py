"""Datasets beyond 3D-IRCADb-01: the Decathlon's Task03_Liver, LiTS and plain NIfTI pairs, in miniature."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.datasets.dataset import list_cases, load_case
from core.datasets.nifti_import import find_nifti_pairs, import_dataset
from core.runtime.errors import DatasetError
from tests.core.datasets.test_ircadb import tree_digest
from tests.core.io.test_volume_file import canonical_ct, write_as


def label_for(hu: np.ndarray) -> np.ndarray:
    lab = np.zeros(hu.shape, np.uint8)
    lab[1:5, 4:12, 1:10] = 1
    lab[2:4, 5:8, 2:5] = 2
    return lab


def write_pair(img: Path, lab: Path, order: str, seed: int):
    hu = canonical_ct() + np.int16(seed)
    write_as(img, hu, order)
    write_as(lab, label_for(hu).astype(np.int16), order)
    return hu



@pytest.mark.parametrize("layout", ["msd", "lits", "pairs-folders", "pairs-suffix"])
def test_each_layout_imports_with_labels_aligned(tmp_path, layout):
    src = tmp_path / "src"
    truth = {}
    orders = ["RAS", "permuted"]
    for n in range(2):
        if layout == "msd":
            (src / "imagesTr").mkdir(parents=True, exist_ok=True)
            (src / "labelsTr").mkdir(parents=True, exist_ok=True)
            (src / "dataset.json").write_text(json.dumps({"name": "Liver", "labels": {"0": "background", "1": "liver",
                                                                                       "2": "cancer"}}))
            truth[f"liver_{n}"] = write_pair(src / "imagesTr" / f"liver_{n}.nii.gz",
                                             src / "labelsTr" / f"liver_{n}.nii.gz", orders[n], n)
            (src / "imagesTr" / f"._liver_{n}.nii.gz").write_bytes(b"\x00\x05\x16\x07 mac junk")
        elif layout == "lits":
            batch = src / f"Training Batch {n + 1}"
            batch.mkdir(parents=True)
            truth[f"lits-{n}"] = write_pair(batch / f"volume-{n}.nii", batch / f"segmentation-{n}.nii", orders[n], n)
        elif layout == "pairs-folders":
            (src / "images").mkdir(parents=True, exist_ok=True)
            (src / "labels").mkdir(parents=True, exist_ok=True)
            truth[f"case{n}"] = write_pair(src / "images" / f"case{n}.nii.gz", src / "labels" / f"case{n}.nii.gz",
                                           orders[n], n)
        else:
            src.mkdir(exist_ok=True)
            truth[f"pt{n}"] = write_pair(src / f"pt{n}.nii.gz", src / f"pt{n}_seg.nii.gz", orders[n], n)
    before = tree_digest(src)
    found = find_nifti_pairs(src)
    assert found is not None and found[0] == layout.split("-")[0]
    ids = import_dataset(src, tmp_path / "ds")
    assert ids == sorted(truth) and list_cases(tmp_path / "ds") == sorted(truth)
    for cid, hu in truth.items():
        c = load_case(tmp_path / "ds", cid)
        np.testing.assert_array_equal(c.hu, hu)
        np.testing.assert_array_equal(c.label, label_for(hu))  # aligned whatever the storage order
        assert c.spacing == pytest.approx((2.5, 0.8, 0.7))
    assert tree_digest(src) == before  # sources untouched
    mtime = (tmp_path / "ds" / f"{ids[0]}.npz").stat().st_mtime_ns
    import_dataset(src, tmp_path / "ds")  # same files: skipped
    assert (tmp_path / "ds" / f"{ids[0]}.npz").stat().st_mtime_ns == mtime


def test_refusals_name_the_file(tmp_path):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir(parents=True)
    write_as(src / "images" / "a.nii.gz", canonical_ct(), "RAS")
    write_as(src / "labels" / "a.nii.gz", label_for(canonical_ct()).astype(np.int16), "LPS")  # other grid
    with pytest.raises(DatasetError, match="does not match the image") as info:
        import_dataset(src, tmp_path / "ds")
    assert "a.nii.gz" in str(info.value) and "\n" not in str(info.value)
    write_as(src / "labels" / "a.nii.gz", (label_for(canonical_ct()) * 3).astype(np.int16), "RAS")
    with pytest.raises(DatasetError, match="label values"):
        import_dataset(src, tmp_path / "ds")
    (src / "labels" / "a.nii.gz").unlink()
    with pytest.raises(DatasetError, match="without their label"):
        import_dataset(src, tmp_path / "ds")
    assert not (tmp_path / "ds").exists() or not list((tmp_path / "ds").glob("*.npz"))
