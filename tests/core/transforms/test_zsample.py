"""core.transforms.zsample and the mm-neighbour input (preprocess, loader): exact small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from core.transforms.preprocess import Preprocessing, SliceStack, normalised_stack, stack_channels
from core.transforms.zsample import channel_table, channel_weights, resample_thickness


def as_dense(idx, w, nz):
    out = np.zeros((idx.shape[0], nz))
    for c in range(idx.shape[0]):
        for i, v in zip(idx[c], w[c], strict=True):
            out[c, i] += v
    return out


def test_neighbours_at_the_slice_spacing_are_the_adjacent_slices():
    idx, w = channel_weights(5, 2.0, 2, (-2.0, 0.0, 2.0))
    assert idx.tolist() == [[1], [2], [3]] and w.tolist() == [[1.0], [1.0], [1.0]]


def test_neighbours_in_mm_are_interpolated_on_thick_slices():
    # 5 mm slices, neighbours 2 mm away: 40 % of the way to the next slice
    d = as_dense(*channel_weights(5, 5.0, 2, (-2.0, 0.0, 2.0)), 5)
    np.testing.assert_allclose(d, [[0, 0.4, 0.6, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0.6, 0.4, 0]], atol=1e-6)
    # clamped inside the volume at both ends
    d = as_dense(*channel_weights(3, 1.0, 0, (-2.0, 0.0, 2.0)), 3)
    np.testing.assert_allclose(d, [[1, 0, 0], [1, 0, 0], [0, 0, 1]], atol=1e-6)


def test_thick_slice_simulation_averages_slabs_then_interpolates():
    # 1 mm slices seen as a 3 mm scan: the centre is the mean of slices 3-5; the neighbour 2 mm
    # below is 2/3 of the thick slice at 1 mm (slices 0-2) and 1/3 of the centre's
    d = as_dense(*channel_weights(9, 1.0, 4, (-2.0, 0.0, 2.0), thickness_mm=3.0), 9)
    np.testing.assert_allclose(d[1], [0, 0, 0, 1 / 3, 1 / 3, 1 / 3, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(d[0], [2 / 9, 2 / 9, 2 / 9, 1 / 9, 1 / 9, 1 / 9, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(d[2], d[0][::-1], atol=1e-6)
    assert np.allclose(d.sum(axis=1), 1)
    # a thickness under the slice spacing simulates nothing
    a = channel_weights(9, 2.0, 4, (-2.0, 0.0, 2.0), thickness_mm=1.5)
    b = channel_weights(9, 2.0, 4, (-2.0, 0.0, 2.0))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_resample_thickness_means_slabs_and_keeps_centre_labels():
    hu = (np.arange(6, dtype=np.int16) * 10)[:, None, None].repeat(2, 1).repeat(2, 2)
    label = np.arange(6, dtype=np.uint8)[:, None, None].repeat(2, 1).repeat(2, 2)
    out, lab, dz = resample_thickness(hu, label, 1.0, 2.0)
    assert dz == 2.0 and out.dtype == np.int16 and out.shape == (3, 2, 2)
    assert out[:, 0, 0].tolist() == [3, 20, 40]  # (0 + 10 / 2) / 1.5, (5 + 20 + 15) / 2, (15 + 40 + 25) / 2
    assert lab[:, 0, 0].tolist() == [0, 2, 4]


def test_slice_stack_channels_at_mm_positions():
    pre = Preprocessing("window25d", (-100.0, 400.0), 4, 3, neighbour_mm=1.0)
    assert pre.offsets_mm == (-1.0, 0.0, 1.0)
    hu = (np.arange(4, dtype=np.int16) * 50 - 100)[:, None, None].repeat(4, 1).repeat(4, 2)  # 0.1 per slice
    st = normalised_stack(hu, pre, dz=2.0)
    assert isinstance(st, SliceStack) and st.shape == (4, 4, 4)
    x = stack_channels(st, np.array([0, 2]), pre)
    np.testing.assert_allclose(x[:, 0, 0], [[0.0, 0.0, 0.05], [0.15, 0.2, 0.25]], atol=1e-6)
    with pytest.raises(ValueError, match="slice spacing is needed"):
        normalised_stack(hu, pre)
    idx, w = channel_table(4, 2.0, (-1.0, 0.0, 1.0))
    assert idx.shape == (4, 3, 2) and np.allclose(w.sum(-1), 1)


def test_preprocessing_round_trip_and_older_models():
    pre = Preprocessing("window25d", (-100.0, 400.0), 128, 3, neighbour_mm=2.0)
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    old = Preprocessing.from_dict({"recipe": "window25d", "window": [-100, 400], "size": 128, "channels": 3})
    assert old.neighbour_mm is None and old.offsets_mm is None
    hu = np.zeros((5, 8, 8), np.int16)
    assert isinstance(normalised_stack(hu, old), np.ndarray)  # no neighbour_mm: neighbours by index
    with pytest.raises(ValueError, match="neighbour_mm"):
        Preprocessing("notebook", neighbour_mm=2.0)


def test_mm_pipeline_at_the_native_spacing_equals_the_index_pipeline(tmp_path):
    from core.datasets.dataset import Case, write_case
    from core.training.loader import SlicePipeline
    rng = np.random.default_rng(0)
    hu = rng.integers(-100, 400, (6, 32, 32)).astype(np.int16)
    label = np.zeros(hu.shape, np.uint8)
    label[:, 8:20, 8:20] = 1
    write_case(tmp_path, Case("a", hu, label, (2.0, 1.0, 1.0)))
    by_index = SlicePipeline(tmp_path, ["a"], "liver", Preprocessing(size=32))
    by_mm = SlicePipeline(tmp_path, ["a"], "liver", Preprocessing(size=32, neighbour_mm=2.0))
    rows = np.arange(len(by_index))
    a, b = by_index.batch(rows), by_mm.batch(rows)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # at 1 mm the neighbours lie half-way: the mean of the two slices (rounded to the uint8 cache)
    half = SlicePipeline(tmp_path, ["a"], "liver", Preprocessing(size=32, neighbour_mm=1.0))
    x = half.batch(rows)[0]
    np.testing.assert_allclose(x[2, ..., 0], (a[0][1, ..., 1] + a[0][2, ..., 1]) / 2, atol=1 / 255)
    # thick slices and phases only with augmentation; thick slices only with mm neighbours
    aug = SlicePipeline(tmp_path, ["a"], "liver", Preprocessing(size=32, neighbour_mm=2.0), augment=True,
                        thick_slices=1.0, phases=1.0, geometry="anatomical")
    x, y = aug.batch(rows, np.random.default_rng(1))
    assert x.shape == (6, 32, 32, 3) and np.isfinite(x).all()
    with pytest.raises(ValueError, match="neighbour_mm"):
        SlicePipeline(tmp_path, ["a"], "liver", Preprocessing(size=32), augment=True, thick_slices=0.5)
