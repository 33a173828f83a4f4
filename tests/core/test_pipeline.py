"""core.pipeline: patient-level splits, caching, stages, augmentation alignment."""

from __future__ import annotations

import numpy as np
import pytest

from core.dataset import Case, write_case
from core.errors import DatasetError
from core.pipeline import SlicePipeline, liver_box, split_cases
from core.preprocess import Preprocessing


def test_split_by_patient_seeded():
    ids = [f"p{i}" for i in range(10)]
    a = split_cases(ids, 0.2, 0.1, seed=3)
    assert a == split_cases(ids, 0.2, 0.1, seed=3)
    assert a != split_cases(ids, 0.2, 0.1, seed=4)
    assert len(a.val) == 2 and len(a.test) == 1 and len(a.train) == 7
    assert set(a.train) | set(a.val) | set(a.test) == set(ids)
    assert not (set(a.train) & set(a.val)) and not (set(a.val) & set(a.test))
    with pytest.raises(DatasetError, match="at least 2 patients"):
        split_cases(["only"])


@pytest.fixture(scope="module")
def bright_case(tmp_path_factory):
    """A case whose label is exactly where HU is high: lets us check alignment after augmentation."""
    folder = tmp_path_factory.mktemp("bright")
    rng = np.random.default_rng(0)
    hu = np.full((8, 64, 64), -100, np.int16)
    label = np.zeros(hu.shape, np.uint8)
    for z in range(8):
        y, x, r = rng.integers(12, 40), rng.integers(12, 40), rng.integers(4, 10)
        hu[z, y:y + r, x:x + r + 3] = 400
        label[z, y:y + r, x:x + r + 3] = 1
    label[3:5, 20:24, 20:24] = 2
    hu[3:5, 20:24, 20:24] = 400
    write_case(folder, Case("b", hu, label, (2.0, 1.0, 1.0)))
    return folder


def test_liver_stage_batches(bright_case):
    pipe = SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=64))
    assert len(pipe) == 8
    x, y = pipe.batch(np.arange(4))
    assert x.shape == (4, 64, 64, 3) and y.shape == (4, 64, 64, 1)
    assert x.dtype == np.float32 and set(np.unique(y)) <= {0.0, 1.0}
    np.testing.assert_array_equal(y[..., 0] > 0, x[..., 1] > 0.5)  # middle channel is the slice itself


def test_augmentation_keeps_image_and_mask_aligned(bright_case):
    pipe = SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=64), augment=True, seed=5)
    changed = 0
    for i in range(6):
        x, y = pipe.batch(np.arange(8), np.random.default_rng(i))
        plain, _ = SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=64)).batch(np.arange(8))
        changed += int(not np.allclose(x, plain))
        # intensity changes are at most x1.1 and +-0.05, so the bright/dark split survives
        np.testing.assert_array_equal(y[..., 0] > 0, x[..., 1] > 0.5)
    assert changed >= 5


def test_tumor_stage_crops_to_the_liver(bright_case):
    liver = SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=32))
    tumor = SlicePipeline(bright_case, ["b"], "tumor", Preprocessing(size=32))
    assert len(tumor) == 8  # slices with liver
    _, yl = liver.batch(np.arange(8))
    _, yt = tumor.batch(np.arange(8))
    assert yt.sum() > 0
    box = liver_box(np.load(bright_case / "b.npz")["label"])
    assert box[1] - box[0] < 64 and box[3] - box[2] < 64  # a real crop


def test_fraction_and_errors(bright_case):
    half = SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=32), fraction=0.5)
    assert len(half) == 4
    with pytest.raises(ValueError):
        SlicePipeline(bright_case, ["b"], "lungs", Preprocessing(size=32))
