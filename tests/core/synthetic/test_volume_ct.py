"""Whole CT volumes rendered from a label map: one appearance per volume (core.synthetic.volume_ct)."""

import numpy as np
import pytest

from core.datasets import anatomy as A
from core.runtime.errors import LiverSegError
from core.synthetic import volume_ct as V
from core.synthetic.synth_ct import PHASES


def test_smooth_field_is_multilinear_between_nodes_and_standardised():
    # one cell along a 3-voxel axis: nodes a, b at both ends, (a + b) / 2 between; standardised,
    # that is exactly -sqrt(1.5), 0, +sqrt(1.5) in the order of a and b, whatever they are
    f = V.smooth_field(np.random.default_rng(4), (3,), (1.0,), cell_mm=10.0)
    a, b = np.random.default_rng(4).standard_normal(2, dtype=np.float32)
    s = np.sign(b - a)
    np.testing.assert_allclose(f, s * np.array([-1, 0, 1]) * np.sqrt(1.5), atol=1e-6)
    # 3D: shape, dtype, mean 0, sd 1, same seed same field, and smoother along the coarser axis
    g = V.smooth_field(np.random.default_rng(1), (20, 30, 40), (5.0, 1.0, 1.0), cell_mm=8.0)
    assert g.shape == (20, 30, 40) and g.dtype == np.float32
    assert abs(float(g.mean())) < 1e-5 and abs(float(g.std()) - 1) < 1e-4
    np.testing.assert_array_equal(g, V.smooth_field(np.random.default_rng(1), (20, 30, 40), (5.0, 1.0, 1.0), 8.0))
    step_z = np.abs(np.diff(g, axis=0)).mean()  # 5 mm per step along z, 1 mm in-plane
    step_x = np.abs(np.diff(g, axis=2)).mean()
    assert step_z > 3 * step_x


def test_tumour_patterns_necrosis_follows_the_3d_depth_in_mm(monkeypatch):
    monkeypatch.setattr(V, "NECROSIS_SHARE", 1.0)
    for name in ("RIM_SHARE", "CALC_SHARE", "LIPIODOL_SHARE"):
        monkeypatch.setattr(V, name, 0.0)
    t = np.zeros((11, 11, 11), bool)
    t[1:10, 1:10, 1:10] = True  # a 9-voxel cube, 2 mm voxels: depth 2, 4, ..., 10 mm to its centre
    x = np.full(t.shape, 100.0, np.float32)
    assert V.tumour_patterns(x, t, (2.0, 2.0, 2.0), np.random.default_rng(7)) == 1
    g = np.random.default_rng(7)  # replay the draws: four pattern draws, then core, dark, bright
    g.random(4)
    core_mm, dark = g.uniform(3, 12), g.uniform(20, 70)
    i = np.arange(11)
    d1 = np.where((i >= 1) & (i <= 9), np.minimum(i, 10 - i) * 2.0, 0.0)  # depth along one axis
    depth = np.minimum(np.minimum(d1[:, None, None], d1[None, :, None]), d1[None, None, :])
    expect = np.where(t & (depth > core_mm), np.float32(100 - dark), 100.0).astype(np.float32)
    np.testing.assert_allclose(x, expect, atol=1e-4)
    assert (x < 100).sum() > 0  # core_mm <= 12 < 10 is false only for the deepest shells: some darken


def _anatomy():
    a = np.zeros((12, 48, 48), np.uint8)
    yy, xx = np.mgrid[:48, :48]
    a[:, (yy - 24) ** 2 + (xx - 24) ** 2 < 22 ** 2] = A.BODY
    a[:, 10:30, 8:30] = A.LIVER
    a[4:8, 16:22, 14:20] = A.TUMOUR
    a[:, 36:42, 22:27] = A.BONE
    return a


def test_render_volume_one_appearance_for_the_whole_volume():
    a = _anatomy()
    hu, facts = V.render_volume(a, (2.0, 1.5, 1.5), np.random.default_rng(3), "portal")
    assert hu.shape == a.shape and hu.dtype == np.int16
    assert facts["phase"] == "portal" and facts["tumours"] == 1 and facts["kernel"] in ("soft", "standard", "sharp")
    again, _ = V.render_volume(a, (2.0, 1.5, 1.5), np.random.default_rng(3), "portal")
    np.testing.assert_array_equal(hu, again)
    lo, hi = PHASES["portal"]["liver"]
    per_slice = np.array([np.median(hu[z][a[z] == A.LIVER]) for z in range(a.shape[0])])
    assert lo - 40 < np.median(per_slice) < hi + 40
    # the same scanner on every slice: the liver's level moves by a few HU, not by a new draw
    assert per_slice.std() < 8
    assert np.median(hu[a == A.OUTSIDE]) < -900
    assert np.median(hu[a == A.BONE]) > 150


def test_render_volume_refuses_bad_input():
    a = _anatomy()
    with pytest.raises(LiverSegError, match="no body outline"):
        V.render_volume(np.where(a == A.BODY, A.OUTSIDE, a).astype(np.uint8), (2, 1, 1), np.random.default_rng(0))
    with pytest.raises(LiverSegError, match=r"\[Z, Y, X\]"):
        V.render_volume(a[0], (1, 1), np.random.default_rng(0))
    with pytest.raises(LiverSegError, match="unknown phase"):
        V.render_volume(a, (2, 1, 1), np.random.default_rng(0), "delayed")
