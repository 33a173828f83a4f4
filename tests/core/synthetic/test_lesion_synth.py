"""core.synthetic.lesion_synth and core.training.threshold: synthetic lesions for the tumour stage, calibrated
thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets.dataset import Case, write_case
from core.synthetic import lesion_synth as ls
from core.synthetic.lesion_synth import add_lesions
from core.training.loader import SlicePipeline
from core.training.threshold import choose_threshold
from core.transforms.preprocess import Preprocessing

UNITS = 255.0 / 500.0  # window [-100, 400]


def _batch(n=16, s=64, c=3, seed=0):
    """Flat 'liver' at 100 HU (in window units) in a disc, nothing outside."""
    yy, xx = np.mgrid[:s, :s]
    liver = ((yy - s / 2) ** 2 + (xx - s / 2) ** 2 < (s * 0.35) ** 2).astype(np.uint8)
    x8 = np.where(liver[..., None] > 0, np.uint8(round(200 * UNITS)), np.uint8(20))
    x8 = np.repeat(np.broadcast_to(x8, (s, s, c))[None], n, axis=0).copy()
    return x8, np.zeros((n, s, s), np.uint8), np.repeat(liver[None], n, axis=0)


def test_lesions_are_labelled_inside_the_liver_and_change_the_image_there(monkeypatch):
    # the contrast bound below is for tumour tissue; lipiodol deposits (far brighter) are tested apart
    monkeypatch.setitem(ls.KINDS, "lipiodol", 0.0)
    x8, y8, liver8 = _batch()
    before = x8.copy()
    added = add_lesions(x8, y8, liver8, np.random.default_rng(1), UNITS, 1.0)
    assert added >= 16  # every sample got at least one labelled lesion
    assert y8.any(axis=(1, 2)).all()
    assert not (y8 & (1 - liver8)).any(), "a label outside the liver"
    changed = (x8 != before).any(axis=-1)
    assert not (changed & (liver8 == 0)).any(), "the image changed outside the liver"
    # labelled pixels of the middle channel differ from the liver by at least a few HU, mostly
    mid = x8[..., 1].astype(int) - before[..., 1].astype(int)
    assert (np.abs(mid[y8 > 0]) >= 5 * UNITS).mean() > 0.7
    # both darker and brighter lesions occur, within the contrast range
    assert (mid < 0).any() and (mid > 0).any()
    assert np.abs(mid).max() <= (80 + 15 + 70) * UNITS + 1


def test_lesions_are_reproducible_and_optional():
    a, ya, la = _batch()
    b, yb, lb = _batch()
    add_lesions(a, ya, la, np.random.default_rng(7), UNITS, 0.5)
    add_lesions(b, yb, lb, np.random.default_rng(7), UNITS, 0.5)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    c, yc, lc = _batch()
    assert add_lesions(c, yc, lc, np.random.default_rng(7), UNITS, 0.0) == 0
    assert not yc.any() and np.array_equal(c, _batch()[0])
    # about half the samples get lesions at probability 0.5
    assert 3 <= ya.any(axis=(1, 2)).sum() <= 13


def test_lesions_span_neighbouring_slices_like_an_ellipsoid():
    x8, y8, liver8 = _batch(n=64, seed=3)
    before = x8.copy()
    add_lesions(x8, y8, liver8, np.random.default_rng(3), UNITS, 1.0)
    diff = (x8 != before)
    mid_area, side_area = diff[..., 1].sum(), diff[..., 0].sum() + diff[..., 2].sum()
    assert 0 < side_area < 2 * mid_area  # neighbours show smaller (or no) cross-sections


def _big_batch(n=24, s=128):
    """128-px tumour-stage crops: a large flat liver at 100 HU."""
    yy, xx = np.mgrid[:s, :s]
    liver = ((yy - 60) ** 2 / 50 ** 2 + (xx - 64) ** 2 / 56 ** 2 < 1).astype(np.uint8)
    x8 = np.where(liver[..., None] > 0, np.uint8(round(200 * UNITS)), np.uint8(20))
    x8 = np.repeat(np.broadcast_to(x8, (s, s, 3))[None], n, axis=0).copy()
    return x8, np.zeros((n, s, s), np.uint8), np.repeat(liver[None], n, axis=0)


def _inside_the_liver(x8, before, y8, liver8):
    assert not (y8 & (1 - liver8)).any(), "a label outside the liver"
    assert not ((x8 != before).any(axis=-1) & (liver8 == 0)).any(), "the image changed outside the liver"


def test_large_and_small_lesions_both_occur_inside_the_liver():
    from scipy import ndimage
    x8, y8, liver8 = _big_batch(n=48)
    before = x8.copy()
    add_lesions(x8, y8, liver8, np.random.default_rng(11), UNITS, 1.0)
    _inside_the_liver(x8, before, y8, liver8)
    radii = []
    for b in range(len(y8)):
        lab, n = ndimage.label(y8[b])
        radii += list(np.sqrt(np.bincount(lab.ravel())[1:] / np.pi))
    radii = np.array(radii)
    assert (radii > 12).sum() >= 3  # large lesions (LARGE_SHARE of them, radius 12-30 px)
    assert radii.max() <= ls.LARGE_RADIUS_PX[1] * 1.5
    assert (radii <= 4.5).mean() > 0.25  # small ones stay common


def _one_kind(monkeypatch, kind, large, necrosis=0.0):
    monkeypatch.setattr(ls, "KINDS", {kind: 1.0})
    monkeypatch.setattr(ls, "LARGE_SHARE", 1.0 if large else 0.0)
    monkeypatch.setattr(ls, "LARGE_NECROSIS_SHARE", necrosis)
    monkeypatch.setattr(ls, "MAX_LESIONS", 1)


def _centre_minus_ring(seed):
    """HU change at the lesions' centres minus their outer ring, per sample (middle channel)."""
    from scipy import ndimage
    x8, y8, liver8 = _big_batch(n=12)
    before = x8.copy()
    add_lesions(x8, y8, liver8, np.random.default_rng(seed), UNITS, 1.0)
    _inside_the_liver(x8, before, y8, liver8)
    diff = (x8[..., 1].astype(float) - before[..., 1]) / UNITS
    out, spread = [], []
    for b in range(len(y8)):
        d = ndimage.distance_transform_edt(y8[b])
        if d.max() < 8:
            continue
        out.append(diff[b][d > 0.6 * d.max()].mean() - diff[b][(d > 2) & (d <= 5)].mean())
        spread.append(diff[b][d > 3].std())
    return np.array(out), np.array(spread)


def test_large_lesions_have_a_darker_necrotic_core_and_heterogeneity(monkeypatch):
    _one_kind(monkeypatch, "hypo", large=True, necrosis=0.0)
    plain, spread = _centre_minus_ring(5)
    _one_kind(monkeypatch, "hypo", large=True, necrosis=1.0)
    necrotic, _ = _centre_minus_ring(5)
    assert len(plain) >= 6 and len(necrotic) >= 6
    assert np.median(necrotic) < np.median(plain) - 15  # the core is darker than the rim
    assert np.median(spread) > 5  # internal heterogeneity, HU


def _solidity(m):
    """Area over the convex hull's area of a pixel mask (pixel squares): ~0.97 for a digital ellipse."""
    from scipy.spatial import ConvexHull
    p = np.argwhere(m).astype(float)
    corners = np.concatenate([p + d for d in ([-.5, -.5], [-.5, .5], [.5, -.5], [.5, .5])])
    return m.sum() / ConvexHull(corners).volume


def test_large_lesions_have_an_irregular_lobulated_outline(monkeypatch):
    yy, xx = np.mgrid[:128, :128]
    ellipse = _solidity((yy - 60) ** 2 / 20 ** 2 + (xx - 64) ** 2 / 14 ** 2 < 1)
    _one_kind(monkeypatch, "hypo", large=True)
    x8, y8, liver8 = _big_batch(n=12)
    add_lesions(x8, y8, liver8, np.random.default_rng(2), UNITS, 1.0)
    sol = [_solidity(y8[b] > 0) for b in range(len(y8)) if (y8[b] > 0).sum() >= 400]
    assert len(sol) >= 6 and max(sol) < ellipse and np.median(sol) < ellipse - 0.02


def _pasted(monkeypatch, kind: str, seed: int):
    """16 samples with small lesions of one kind pasted in, checked to stay inside the liver."""
    _one_kind(monkeypatch, kind, large=False)
    x8, y8, liver8 = _big_batch(n=16)
    before = x8.copy()
    add_lesions(x8, y8, liver8, np.random.default_rng(seed), UNITS, 1.0)
    _inside_the_liver(x8, before, y8, liver8)
    return x8, y8, liver8, before


def test_arterial_hyper_enhancing_lesions(monkeypatch):
    x8, y8, liver8, before = _pasted(monkeypatch, "arterial", seed=4)
    diff = (x8[..., 1].astype(float) - before[..., 1]) / UNITS
    assert np.median(diff[y8 > 0]) > 15 and diff.max() <= 80 + 30 + 15 + 2


def test_lipiodol_deposits_are_bright_and_only_inside_the_lesion(monkeypatch):
    x8, y8, liver8, before = _pasted(monkeypatch, "lipiodol", seed=6)
    over300 = x8 >= np.floor((300 + 100) * UNITS)  # window [-100, 400]: 300 HU and above
    assert over300[..., 1].any(axis=(1, 2)).mean() > 0.8  # nearly every sample shows a deposit
    assert not (over300[..., 1] & (y8 == 0)).any(), "a bright deposit outside the labelled lesion"
    assert not (over300.any(-1) & (liver8 == 0)).any()
    # with the default shares, deposits are occasional
    monkeypatch.undo()
    x8, y8, liver8 = _big_batch(n=64)
    add_lesions(x8, y8, liver8, np.random.default_rng(6), UNITS, 1.0)
    bright = (x8[..., 1] >= np.floor((300 + 100) * UNITS)).any(axis=(1, 2)).mean()
    assert 0 < bright < 0.3


@pytest.fixture(scope="module")
def liver_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    hu = np.full((6, 64, 64), -50, np.int16)
    label = np.zeros(hu.shape, np.uint8)
    hu[:, 12:52, 10:50] = 100
    label[:, 12:52, 10:50] = 1
    label[2:4, 20:26, 20:26] = 2
    hu[2:4, 20:26, 20:26] = 50
    write_case(folder, Case("s", hu, label, (2.0, 1.0, 1.0)))
    return folder


def test_pipeline_adds_lesions_only_when_asked(liver_dataset):
    pre = Preprocessing("window25d", (-100, 400), 32, 3)
    plain = SlicePipeline(liver_dataset, ["s"], "tumor", pre, augment=True, seed=0)
    synth = SlicePipeline(liver_dataset, ["s"], "tumor", pre, augment=True, seed=0, synth_lesions=1.0)
    rows = np.arange(len(plain))
    _, y0 = plain.batch(rows, np.random.default_rng(0))
    x1, y1 = synth.batch(rows, np.random.default_rng(0))
    assert y1.sum() > y0.sum()
    # validation pipelines (no augmentation) never get synthetic lesions
    val = SlicePipeline(liver_dataset, ["s"], "tumor", pre, augment=False, synth_lesions=1.0)
    assert val.liver is None
    # the liver stage takes lesions too (one share per stage): learnt as liver, never as tumour
    liver = SlicePipeline(liver_dataset, ["s"], "liver", pre, augment=True, seed=0, synth_lesions=1.0)
    _, yl = liver.batch(np.arange(len(liver)), np.random.default_rng(0))
    assert set(np.unique(yl)) <= {0, 1} and yl.sum() > 0
    with pytest.raises(ValueError, match="window25d"):
        SlicePipeline(liver_dataset, ["s"], "tumor", Preprocessing("notebook", (-100, 400), 32, 3),
                      augment=True, synth_lesions=0.5)


def test_choose_threshold_per_case():
    rng = np.random.default_rng(0)
    g = np.zeros((4, 16, 16), np.uint8)
    g[0, 4:8, 4:8] = 1
    g[2, 2:6, 2:6] = 1
    # an under-confident model: 0.35 on the lesions, noise below 0.25 elsewhere
    p = rng.uniform(0, 0.25, g.shape).astype(np.float32)
    p[g > 0] = 0.35
    res = choose_threshold(p, g, np.array([0, 0, 1, 1]))
    assert res["threshold"] == 0.25 or res["threshold"] == 0.3
    assert max(res["val_dice"]) == pytest.approx(1.0)
    assert res["cases"] == 2
    # a confident model keeps the default (ties go to the value nearest 0.5)
    p2 = np.where(g > 0, 0.99, 0.01).astype(np.float32)
    assert choose_threshold(p2, g, np.array([0, 0, 1, 1]))["threshold"] == 0.5
    # a gain below MIN_GAIN (0.01) keeps the default
    g3 = np.zeros_like(g)
    g3[0, 4:12, 4:12] = 1
    g3[2, 4:12, 4:12] = 1
    p3 = np.where(g3 > 0, 0.6, 0.0).astype(np.float32)
    p3[0, 0, 0] = 0.52  # one false-positive pixel above 0.5 only: 0.55 is better by 0.004
    res3 = choose_threshold(p3, g3, np.array([0, 0, 1, 1]))
    assert max(res3["val_dice"]) > res3["val_dice"][res3["grid"].index(0.5)] and res3["threshold"] == 0.5
    assert choose_threshold(p3, g3, np.array([0, 0, 1, 1]), min_gain=0.0)["threshold"] == 0.55
    # nothing to calibrate on
    none = choose_threshold(p, np.zeros_like(g), np.array([0, 0, 1, 1]))
    assert none["threshold"] == 0.5 and none["cases"] == 0 and "reason" in none
