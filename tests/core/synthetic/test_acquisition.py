"""core.synthetic.acquisition: phase remapping, noise and the acquisition proxies (exact small arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets import anatomy as A
from core.synthetic.acquisition import PHASE_SHIFTS, add_noise, remap_phase


def test_remap_phase_shifts_each_structure():
    hu = np.full((1, 4, 4), 100, np.int16)
    anat = np.zeros((1, 4, 4), np.uint8)
    anat[0, 0, 0], anat[0, 1, 1], anat[0, 2, 2] = A.LIVER, A.PORTAL, A.ARTERY
    out = remap_phase(hu, anat, "arterial", blur_px=0)
    s = PHASE_SHIFTS["arterial"]
    assert out[0, 0, 0] == 100 + s[A.LIVER] and out[0, 1, 1] == 100 + s[A.PORTAL]
    assert out[0, 2, 2] == 100 + s[A.ARTERY] and out[0, 3, 3] == 100
    un = remap_phase(hu, anat, "unenhanced", blur_px=0)
    assert un[0, 1, 1] < un[0, 0, 0]  # unenhanced: vessels darker than the liver
    with pytest.raises(ValueError, match="unknown phase"):
        remap_phase(hu, anat, "delayed")


def test_add_noise_is_seeded():
    hu = np.zeros((4, 32, 32), np.int16)
    a, b = add_noise(hu, 20, seed=3), add_noise(hu, 20, seed=3)
    assert np.array_equal(a, b) and 17 < a.std() < 23 and not np.array_equal(a, add_noise(hu, 20, seed=4))


def test_acquisition_variants_of_a_case():
    from core.datasets.dataset import Case
    from core.synthetic.acquisition import VARIANTS, acquisition_variant
    hu = np.full((10, 8, 8), 100, np.int16)
    label = np.zeros(hu.shape, np.uint8)
    label[2:8] = 1  # whole slices: the smoothed shift is exact there
    anat = (label * A.LIVER).astype(np.uint8)
    case = Case("p", hu, label, (1.0, 0.8, 0.8), anatomy=anat)
    out = {v: acquisition_variant(case, v) for v in VARIANTS}
    assert np.array_equal(out["original"].hu, hu)
    assert out["5 mm"].hu.shape == (2, 8, 8) and out["5 mm"].spacing == (5.0, 0.8, 0.8)
    assert out["2.5 mm"].hu.shape == (4, 8, 8) and out["2.5 mm"].label.shape == (4, 8, 8)
    assert out["unenhanced"].hu[5, 4, 4] == 100 + PHASE_SHIFTS["unenhanced"][A.LIVER]
    assert out["unenhanced"].hu[0, 0, 0] == 100
    assert 15 < np.std(out["noise 20 HU"].hu.astype(float)) < 25
    assert out["5 mm arterial noisy"].hu.shape == (2, 8, 8) and out["5 mm arterial noisy"].meta["variant"]
    with pytest.raises(ValueError, match="structure masks"):
        acquisition_variant(Case("q", hu, label, (1.0, 1.0, 1.0)), "arterial")
