"""core.training.loader: patient-level splits, caching, stages, augmentation alignment."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets.dataset import Case, write_case
from core.runtime.errors import DatasetError
from core.training.loader import SlicePipeline, liver_box, split_cases
from core.transforms.preprocess import Preprocessing


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


def test_tumour_stage_crops_to_the_liver(bright_case):
    liver = SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=32))
    tumour = SlicePipeline(bright_case, ["b"], "tumor", Preprocessing(size=32))
    assert len(tumour) == 8  # slices with liver
    _, yl = liver.batch(np.arange(8))
    _, yt = tumour.batch(np.arange(8))
    assert yt.sum() > 0
    box = liver_box(np.load(bright_case / "b.npz")["label"])
    assert box[1] - box[0] < 64 and box[3] - box[2] < 64  # a real crop


def test_fraction_and_errors(bright_case):
    half = SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=32), fraction=0.5)
    assert len(half) == 4
    with pytest.raises(ValueError):
        SlicePipeline(bright_case, ["b"], "lungs", Preprocessing(size=32))


def test_anatomical_geometry_keeps_image_and_mask_aligned_and_never_flips(bright_case):
    pipe = SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=64), augment=True, seed=2,
                         geometry="anatomical")
    plain_x, plain_y = SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=64)).batch(np.arange(8))
    for i in range(4):
        x, y = pipe.batch(np.arange(8), np.random.default_rng(i))
        np.testing.assert_array_equal(y[..., 0] > 0, x[..., 1] > 0.5)
        # rotation +-12 degrees, scale 0.85-1.2, shift +-8 %: the mask's centre moves by little
        for k in range(8):
            if y[k].any() and plain_y[k].any():
                c0 = np.argwhere(plain_y[k, ..., 0] > 0).mean(axis=0)
                c1 = np.argwhere(y[k, ..., 0] > 0).mean(axis=0)
                assert np.abs(c1 - c0).max() < 20
    with pytest.raises(ValueError, match="unknown geometry"):
        SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=64), geometry="mirror")


@pytest.fixture(scope="module")
def mixed_dataset(tmp_path_factory):
    """One phantom with CT and two label maps (anatomy, no CT), as the importer writes them."""
    from core.datasets import anatomy as A
    from core.synthetic.phantom import make_phantom
    folder = tmp_path_factory.mktemp("mixed-ds")
    for i, seed in enumerate((41, 42, 43)):
        c = make_phantom(seed, 12, 64)
        body = c.hu > -500
        codes = {A.BODY: body, A.BONE: c.hu > 180, A.LIVER: c.label > 0, A.TUMOUR: c.label == 2}
        anat = A.paint(codes, c.hu.shape)
        write_case(folder, Case(f"m{i}", c.hu if i == 0 else None, c.label, c.spacing, anatomy=anat))
    return folder


def test_label_maps_are_rendered_per_sample_and_fixed_for_validation(mixed_dataset):
    pre = Preprocessing(size=32)
    train = SlicePipeline(mixed_dataset, ["m0", "m1", "m2"], "liver", pre, augment=True, seed=1,
                          geometry="anatomical")
    assert train.row_synth.sum() == 24 and (~train.row_synth).sum() == 12
    rows = np.flatnonzero(train.row_synth)[:6]
    a, ya = train.batch(rows, np.random.default_rng(0))
    b, _ = train.batch(rows, np.random.default_rng(1))
    assert a.shape == (6, 32, 32, 3) and not np.allclose(a, b)  # a new CT every time it is drawn
    assert (a[..., 1][ya[..., 0] > 0].mean() > a[..., 1][ya[..., 0] == 0].mean())  # liver above the average
    val = SlicePipeline(mixed_dataset, ["m1", "m2"], "liver", pre, augment=False, seed=3)
    v1, vy = val.batch(np.arange(8))
    v2, _ = val.batch(np.arange(8))
    np.testing.assert_array_equal(v1, v2)  # validation: the same images every epoch
    fresh, _ = SlicePipeline(mixed_dataset, ["m1", "m2"], "liver", pre, augment=False, seed=3).batch(np.arange(8))
    np.testing.assert_array_equal(v1, fresh)  # seeded per slice, not per call order
    with pytest.raises(DatasetError, match="window25d"):
        SlicePipeline(mixed_dataset, ["m1"], "liver", Preprocessing("notebook", (-100, 400), 32, 3))


def test_real_share_sets_the_mix_of_real_and_rendered_samples(mixed_dataset):
    pipe = SlicePipeline(mixed_dataset, ["m0", "m1", "m2"], "liver", Preprocessing(size=32), augment=True)
    order = pipe.epoch_order(np.random.default_rng(0), real_share=0.4, n=1000)
    assert len(order) == 1000 and abs((~pipe.row_synth[order]).mean() - 0.4) < 0.01
    plain = pipe.epoch_order(np.random.default_rng(0))
    assert sorted(plain) == list(range(len(pipe)))  # without a share: one pass, each slice once


def test_label_map_without_a_body_is_refused(tmp_path):
    from core.datasets import anatomy as A
    label = np.zeros((4, 16, 16), np.uint8)
    label[:, 4:8, 4:8] = 1
    write_case(tmp_path, Case("nobody", None, label, (1.0, 1.0, 1.0),
                              anatomy=np.where(label > 0, A.LIVER, A.OUTSIDE).astype(np.uint8)))
    with pytest.raises(DatasetError, match="nobody: label map without a body outline"):
        SlicePipeline(tmp_path, ["nobody"], "liver", Preprocessing(size=16))


def test_liver_stage_lesions_leave_the_liver_target_alone(bright_case):
    pre = Preprocessing(size=64)
    plain = SlicePipeline(bright_case, ["b"], "liver", pre, augment=True, seed=0)
    lesioned = SlicePipeline(bright_case, ["b"], "liver", pre, augment=True, seed=0, synth_lesions=1.0)
    x0, y0 = plain.batch(np.arange(8), np.random.default_rng(4))
    x1, y1 = lesioned.batch(np.arange(8), np.random.default_rng(4))
    np.testing.assert_array_equal(y0, y1)  # a lesion in the liver is still liver
    changed = np.abs(x1 - x0)[..., 1] > 1e-6
    assert changed.any() and not changed[y0[..., 0] == 0].any()  # the image changes inside the liver only
    with pytest.raises(ValueError, match="window25d recipe"):
        SlicePipeline(bright_case, ["b"], "liver", Preprocessing(size=64, recipe="notebook"), augment=True,
                      synth_lesions=0.5)


def test_silver_share_weights_the_real_samples_by_label_quality(tmp_path):
    """Real CT of two label qualities and a rendered label map: ``silver_share`` of the real samples
    come from the silver-labelled case whatever its slice count; without it, by slices."""
    from core.synthetic.phantom import make_phantom
    for cid, seed, meta in (("expert", 1, {}), ("silver", 2, {"labels": "silver"})):
        c = make_phantom(seed, 24 if cid == "silver" else 8, 64)
        write_case(tmp_path, Case(cid, c.hu, c.label, c.spacing, meta=meta))
    from core.datasets import anatomy as A
    m = make_phantom(3, 8, 64)
    anat = A.paint({A.BODY: m.hu > -500, A.BONE: m.hu > 180, A.LIVER: m.label > 0, A.TUMOUR: m.label == 2}, m.hu.shape)
    write_case(tmp_path, Case("map", None, m.label, m.spacing, anatomy=anat))
    pipe = SlicePipeline(tmp_path, ["expert", "silver", "map"], "liver", Preprocessing(size=32))
    silver_rows = pipe.row_silver & ~pipe.row_synth
    assert silver_rows.sum() > 2 * (~pipe.row_silver & ~pipe.row_synth).sum()  # three times the slices
    for share, want in ((0.25, 0.25), (0.5, 0.5), (-1.0, silver_rows.sum() / (~pipe.row_synth).sum())):
        order = pipe.epoch_order(np.random.default_rng(0), real_share=0.5, n=2000, silver_share=share)
        real = order[~pipe.row_synth[order]]
        assert len(real) == 1000
        assert pipe.row_silver[real].mean() == pytest.approx(want, abs=0.04)
