"""core.evaluation.metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.evaluation import metrics


def cube(shape, z0, z1, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[z0:z1, y0:y1, x0:x1] = True
    return m


def test_overlap_metrics_hand_computed():
    t = cube((4, 10, 10), 0, 2, 0, 5, 0, 5)  # 50 voxels
    p = cube((4, 10, 10), 0, 2, 0, 5, 1, 6)  # 50 voxels, 40 shared
    assert metrics.dice(p, t) == pytest.approx(80 / 100)
    assert metrics.jaccard(p, t) == pytest.approx(40 / 60)
    assert metrics.volume_overlap_error(p, t) == pytest.approx(1 - 40 / 60)
    assert metrics.relative_volume_difference(cube((4, 10, 10), 0, 2, 0, 5, 0, 6), t) == pytest.approx(0.2)
    assert metrics.precision(p, t) == pytest.approx(0.8) and metrics.recall(p, t) == pytest.approx(0.8)
    assert math.isnan(metrics.relative_volume_difference(p, np.zeros_like(t)))


def test_surface_distances_with_spacing():
    t = cube((10, 10, 10), 2, 8, 2, 8, 2, 8)
    assert metrics.assd(t, t, (1, 1, 1)) == 0.0
    p = cube((10, 10, 10), 2, 8, 2, 8, 3, 9)  # shifted one voxel along x
    # With 2.5 mm along x: faces perpendicular to x are 2.5 mm apart, others coincide or 2.5 mm away.
    assert metrics.mssd(p, t, (1.0, 1.0, 2.5)) == pytest.approx(2.5)
    a = metrics.assd(p, t, (1.0, 1.0, 2.5))
    assert 0 < a <= 2.5
    assert metrics.mssd(p, t, (1.0, 1.0, 1.0)) == pytest.approx(1.0)
    assert math.isnan(metrics.assd(p, np.zeros_like(p), (1, 1, 1)))


def test_notebook_per_slice_metrics():
    t = cube((2, 4, 4), 0, 1, 0, 2, 0, 2)  # slice 0: 4 voxels, slice 1 empty
    p = cube((2, 4, 4), 0, 1, 0, 2, 0, 1)  # slice 0: 2 voxels
    r = metrics.notebook_metrics(p, t)
    assert r["slice_dice"] == pytest.approx((4 / 6 + 1.0) / 2)
    assert r["confusion"] == {"tp": 2, "fp": 0, "fn": 2, "tn": 28}
    assert r["pixel_accuracy"] == pytest.approx(30 / 32)
    assert r["tpr"] == pytest.approx(0.5)


def test_lesions_volume_diameter_hu():
    m = np.zeros((3, 20, 20), bool)
    m[1, 2:5, 2:12] = True  # 3 x 10 pixels, one slice
    m[0:3, 15:17, 15:17] = True  # 2 x 2 x 3
    hu = np.where(m, 40, -1000).astype(np.int16)
    hu[1, 2:5, 2:12] = 70
    les = metrics.lesions(m, (2.0, 0.5, 0.5), hu)
    assert [x["voxels"] for x in les] == [30, 12] and [x["id"] for x in les] == [1, 2]
    assert les[0]["volume_ml"] == pytest.approx(30 * 0.5 / 1000)
    # corner to corner of a 3 x 10 pixel block of 0.5 mm pixels: sqrt(4.5^2 + 1^2) + 0.5
    assert les[0]["longest_axial_diameter_mm"] == pytest.approx(math.hypot(4.5, 1.0) + 0.5)
    assert les[0]["mean_hu"] == pytest.approx(70) and les[1]["mean_hu"] == pytest.approx(40)
    assert les[1]["slices"] == [0, 2]


def test_lesion_detection():
    t = np.zeros((5, 30, 30), bool)
    t[1:4, 2:8, 2:8] = True  # lesion A
    t[1:4, 20:26, 20:26] = True  # lesion B (missed)
    p = np.zeros_like(t)
    p[1:4, 3:9, 3:9] = True  # hits A
    p[1:2, 12:14, 12:14] = True  # a false positive
    r = metrics.lesion_detection(p, t, (1, 1, 1))
    assert r == {"true_lesions": 2, "predicted_lesions": 2, "hits": 1, "recall": 0.5, "false_positives": 1}
