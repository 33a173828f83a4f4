"""core.transforms.preprocess: the liver-level shift (``liver_hu_max``), one definition for training and inference."""

from __future__ import annotations

import numpy as np
import pytest

from core.transforms.preprocess import Preprocessing, liver_level_shift, normalised_stack


def bright_case(liver_hu=200, tumour_hu=150):
    hu = np.full((6, 32, 32), -1000, np.int16)
    label = np.zeros(hu.shape, np.uint8)
    hu[1:5, 4:28, 4:28], label[1:5, 4:28, 4:28] = liver_hu, 1
    hu[2:4, 10:16, 10:16], label[2:4, 10:16, 10:16] = tumour_hu, 2
    return hu, label


def test_the_shift_brings_only_a_brighter_liver_down_to_the_limit():
    hu, label = bright_case()
    liver = label > 0
    assert liver_level_shift(hu, liver, Preprocessing(size=32)) == 0.0  # a model without the key: never
    assert liver_level_shift(hu, liver, Preprocessing(size=32, liver_hu_max=130.0)) == -70.0
    assert liver_level_shift(hu, liver, Preprocessing(size=32, liver_hu_max=250.0)) == 0.0  # darker: kept
    assert liver_level_shift(hu, np.zeros_like(liver), Preprocessing(size=32, liver_hu_max=130.0)) == 0.0
    pre = Preprocessing(size=32, liver_hu_max=130.0)
    np.testing.assert_allclose(pre.normalise(hu, -70.0), pre.normalise(hu - 70))
    np.testing.assert_allclose(normalised_stack(hu, pre, shift=-70.0), normalised_stack(hu - 70, pre))


def test_the_key_round_trips_and_old_cards_read_as_none():
    pre = Preprocessing(size=64, neighbour_mm=2.0, liver_hu_max=130.0)
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    old = {"recipe": "window25d", "window": [-100.0, 400.0], "size": 64, "channels": 3}
    assert Preprocessing.from_dict(old).liver_hu_max is None
    with pytest.raises(ValueError, match="liver_hu_max"):
        Preprocessing(liver_hu_max=float("nan"))


def test_training_shows_a_bright_real_liver_as_inference_does(tmp_path):
    from core.datasets.dataset import Case, write_case
    from core.training.loader import SlicePipeline, liver_box
    hu, label = bright_case()
    write_case(tmp_path, Case("a", hu, label, (2.0, 1.0, 1.0)))
    write_case(tmp_path, Case("b", (hu - 70).astype(np.int16), label, (2.0, 1.0, 1.0)))
    pre = Preprocessing(size=32, liver_hu_max=130.0)
    bright, darker = (SlicePipeline(tmp_path, [c], "tumor", pre) for c in "ab")
    rows = np.arange(len(bright))
    x, y = bright.batch(rows)
    assert np.array_equal(x, darker.batch(rows)[0]) and y.any()
    # the liver stage is not shifted; nor is the tumour stage of a model without the key
    plain = SlicePipeline(tmp_path, ["a"], "tumor", Preprocessing(size=32))
    assert not np.array_equal(plain.batch(rows)[0], x)
    y0, y1, x0, x1 = liver_box(label)
    box = hu[:, y0:y1, x0:x1]
    assert liver_level_shift(box, label[:, y0:y1, x0:x1] > 0, pre) == -70.0
