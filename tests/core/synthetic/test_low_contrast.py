"""Low-contrast tumours in training (``low_contrast``): rendered tumours and synthetic lesions 8-25 HU
from the liver, and the option's plumbing through the training pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets import anatomy as A
from core.synthetic import lesion_synth as ls
from core.synthetic.lesion_synth import add_lesions
from core.synthetic.synth_ct import LOW_CONTRAST_HU, LOW_CONTRAST_SD, draw_table
from core.training.loader import SlicePipeline
from core.training.trainer import TrainConfig
from core.transforms.preprocess import Preprocessing

UNITS = 255.0 / 500.0  # window [-100, 400]


def test_draw_table_puts_every_tumour_near_the_liver_at_share_one():
    lo, hi = LOW_CONTRAST_HU
    gap, sd = [], []
    for seed in range(200):
        mu, s = draw_table(np.random.default_rng(seed), low_contrast=1.0)
        gap.append(mu[A.TUMOUR] - mu[A.LIVER])
        sd.append(s[A.TUMOUR])
    gap, sd = np.array(gap), np.array(sd)
    assert np.all((np.abs(gap) >= lo - 1e-3) & (np.abs(gap) <= hi + 1e-3))
    assert np.all((sd >= LOW_CONTRAST_SD[0]) & (sd <= LOW_CONTRAST_SD[1]))
    assert 0.7 < (gap < 0).mean() < 0.9  # darker in 4 of 5


def test_draw_table_is_unchanged_at_share_zero():
    for seed in range(20):
        a = draw_table(np.random.default_rng(seed))
        b = draw_table(np.random.default_rng(seed), low_contrast=0.0)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # the table's own tumours are mostly further from the liver than 25 HU
    far = [abs(float(np.subtract(*draw_table(np.random.default_rng(s))[0][[A.TUMOUR, A.LIVER]]))) > 25
           for s in range(200)]
    assert np.mean(far) > 0.5


def _flat_liver(n=24, s=64, c=3):
    yy, xx = np.mgrid[:s, :s]
    liver = ((yy - s / 2) ** 2 + (xx - s / 2) ** 2 < (s * 0.35) ** 2).astype(np.uint8)
    x8 = np.where(liver[..., None] > 0, np.uint8(round(200 * UNITS)), np.uint8(20))
    x8 = np.repeat(np.broadcast_to(x8, (s, s, c))[None], n, axis=0).copy()
    return x8, np.zeros((n, s, s), np.uint8), np.repeat(liver[None], n, axis=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_low_contrast_lesions_stay_within_the_band(monkeypatch, seed):
    # one hypodense lesion a sample (overlapping ones add up), none large (a necrotic core adds its own)
    monkeypatch.setattr(ls, "KINDS", {"hypo": 1.0})
    monkeypatch.setattr(ls, "LARGE_SHARE", 0.0)
    monkeypatch.setattr(ls, "MAX_LESIONS", 1)
    x8, y8, liver8 = _flat_liver()
    before = x8.astype(int)
    add_lesions(x8, y8, liver8, np.random.default_rng(seed), UNITS, 1.0, low_contrast=1.0)
    delta = (x8.astype(int) - before) / UNITS  # HU
    assert y8.any(axis=(1, 2)).all()
    worst = LOW_CONTRAST_HU[1] + ls.LOW_CONTRAST_TEXTURE + 1 / UNITS  # plus one quantisation step
    assert delta.min() >= -worst and delta.max() <= 1 / UNITS
    mid = delta[..., 1][y8 > 0]
    assert np.median(mid) <= -4  # still darker than the liver
    # the same draws without the option: hypodense lesions down to -80 HU
    x0, y0, l0 = _flat_liver()
    add_lesions(x0, y0, l0, np.random.default_rng(seed), UNITS, 1.0)
    assert ((x0.astype(int) - before) / UNITS).min() < -worst


def test_the_option_is_checked_and_reaches_training_batches_only(tmp_path, tiny_dataset):
    with pytest.raises(Exception, match="low_contrast"):
        TrainConfig(dataset=str(tmp_path), out=str(tmp_path / "run"), stage="tumor", low_contrast=1.5)
    pre = Preprocessing(size=32)
    ids = ["p0", "p1"]
    with pytest.raises(ValueError, match="low_contrast"):
        SlicePipeline(tiny_dataset, ids, "tumor", pre, augment=True, low_contrast=-0.1)
    assert SlicePipeline(tiny_dataset, ids, "tumor", pre, augment=False, low_contrast=0.4).low_contrast == 0.0

    def batch(**kw):
        p = SlicePipeline(tiny_dataset, ids, "tumor", pre, augment=True, synth_lesions=1.0, **kw)
        return p.batch(np.arange(8), np.random.default_rng(4))

    plain, zero, low = batch(), batch(low_contrast=0.0), batch(low_contrast=1.0)
    assert all(np.array_equal(a, b) for a, b in zip(plain, zero, strict=True))  # 0: the same batches as without it
    assert not np.array_equal(plain[0], low[0])
