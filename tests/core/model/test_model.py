"""core.model: the ResUNet, losses and metrics against the numpy reference; preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from core.evaluation import metrics
from core.transforms.preprocess import Preprocessing, resize_bilinear

keras = pytest.importorskip("keras")


def test_resunet_shapes_and_filters():
    from core.model.resunet import ResUNetConfig, build_resunet
    m = build_resunet(ResUNetConfig(input_size=64, channels=3, base_filters=8, depth=3))
    assert m.input_shape == (None, 64, 64, 3) and m.output_shape == (None, 64, 64, 1)
    y = np.asarray(m.predict(np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32), verbose=0))
    assert y.shape == (2, 64, 64, 1) and (y >= 0).all() and (y <= 1).all()
    full = build_resunet(ResUNetConfig())
    convs = {layer.filters for layer in full.layers if isinstance(layer, keras.layers.Conv2D)}
    assert convs == {1, 16, 32, 64, 128, 256}
    with pytest.raises(ValueError, match="divisible"):
        ResUNetConfig(input_size=100, depth=4)


def test_losses_match_numpy():
    from core.model.losses import bce_dice_loss, soft_dice_loss
    rng = np.random.default_rng(1)
    t = (rng.random((3, 8, 8, 1)) > 0.6).astype(np.float32)
    p = rng.random((3, 8, 8, 1)).astype(np.float32)
    got = np.asarray(keras.ops.convert_to_numpy(soft_dice_loss(t, p)))
    want = 1 - (2 * (t * p).sum() + 1) / (t.sum() + p.sum() + 1)  # over the whole batch
    np.testing.assert_allclose(got, want, rtol=1e-5)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bce_dice_loss(t, p)), bce + want, rtol=1e-4)
    assert float(keras.ops.convert_to_numpy(soft_dice_loss(t, t))) < 1e-6
    # an empty slice in the batch does not pull the loss to 0 when the tumour is missed
    empty_pred = np.zeros_like(p)
    assert float(keras.ops.convert_to_numpy(soft_dice_loss(t, empty_pred))) > 0.9


def test_keras_metrics_match_numpy_reference_per_case():
    from core.model.losses import dice_metric, iou_metric
    rng = np.random.default_rng(2)
    truth = rng.random((6, 16, 16)) > 0.7  # one "case" of 6 slices
    prob = np.clip(truth * 0.7 + rng.random(truth.shape) * 0.5, 0, 1).astype(np.float32)
    d, j = dice_metric(), iou_metric()
    for k in range(0, 6, 2):  # batches of 2 slices accumulate into one 3D result
        d.update_state(truth[k:k + 2, ..., None], prob[k:k + 2, ..., None])
        j.update_state(truth[k:k + 2, ..., None], prob[k:k + 2, ..., None])
    assert float(d.result()) == pytest.approx(metrics.dice(prob > 0.5, truth), abs=1e-6)
    assert float(j.result()) == pytest.approx(metrics.jaccard(prob > 0.5, truth), abs=1e-6)


def test_numpy_metrics_hand_computed():
    a = np.zeros((2, 4, 4), bool)
    b = np.zeros((2, 4, 4), bool)
    a[0, :2, :2] = True  # 4 voxels
    b[0, :2, :3] = True  # 6 voxels, 4 shared
    assert metrics.dice(a, b) == pytest.approx(8 / 10)
    assert metrics.jaccard(a, b) == pytest.approx(4 / 6)
    assert metrics.dice(np.zeros(3), np.zeros(3)) == 1.0
    assert metrics.volume_ml(b, (2.0, 0.5, 0.5)) == pytest.approx(6 * 0.5 / 1000)


def test_preprocessing_recipes():
    hu = np.full((5, 40, 40), -1024, np.int16)
    hu[:, 10:30, 10:30] = np.arange(5)[:, None, None] * 100
    hu[2, 0, 0] = 2000
    pre = Preprocessing("window25d", size=32)
    x = pre.slices(hu, [0, 2, 4])
    assert x.shape == (3, 32, 32, 3) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    mid = x[1, 16, 16]  # channels: slices 1, 2, 3 at 100, 200, 300 HU
    np.testing.assert_allclose(mid, [(100 + 100) / 500, (200 + 100) / 500, (300 + 100) / 500], atol=1e-5)
    nb = Preprocessing("notebook", size=32).slices(hu, [2])
    assert nb.shape == (1, 32, 32, 3) and np.allclose(nb[..., 0], nb[..., 2])
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    with pytest.raises(ValueError):
        Preprocessing("magic")


def test_resize_bilinear_matches_linear_ramp():
    ramp = np.tile(np.arange(8, dtype=np.float32), (8, 1))
    up = resize_bilinear(ramp[None], 16, 16)[0]
    assert up.shape == (16, 16) and up[0, 0] == 0 and up[0, -1] == 7
    assert np.all(np.diff(up[0]) >= 0)
