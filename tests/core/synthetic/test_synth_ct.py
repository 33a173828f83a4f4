"""core.synthetic.synth_ct: CT rendered from anatomy, with plausible and varied Hounsfield units."""

from __future__ import annotations

import numpy as np

from core.datasets import anatomy as A
from core.synthetic.synth_ct import distances, draw_table, render


def _anatomy(s=64):
    """One 2.5D sample: air, a body with a bone, a liver holding a tumour and a vessel."""
    a = np.full((s, s), A.OUTSIDE, np.uint8)
    yy, xx = np.mgrid[:s, :s]
    a[(yy - s / 2) ** 2 / 28 ** 2 + (xx - s / 2) ** 2 / 30 ** 2 < 1] = A.BODY
    a[(yy - 28) ** 2 + (xx - 20) ** 2 < 12 ** 2] = A.LIVER
    a[(yy - 28) ** 2 + (xx - 22) ** 2 < 4 ** 2] = A.TUMOUR
    a[(yy - 22) ** 2 + (xx - 14) ** 2 < 2 ** 2] = A.PORTAL
    a[(yy - 50) ** 2 + (xx - 32) ** 2 < 4 ** 2] = A.BONE
    return np.stack([a, a, a], -1)[None]  # [1, S, S, 3]


def test_render_shapes_determinism_and_tissue_values():
    anat = _anatomy()
    dist = distances(anat[..., 1], 2.0)[:, :, :, :]
    assert dist.shape == (1, 64, 64, 2) and dist[0, 0, 0, 0] == 0 and dist[0, 32, 32, 0] > 20
    px = np.array([2.0])
    a = render(anat, dist, px, np.random.default_rng(5))
    b = render(anat, dist, px, np.random.default_rng(5))
    c = render(anat, dist, px, np.random.default_rng(6))
    assert a.shape == (1, 64, 64, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # one generator, one image
    assert np.abs(a - c).mean() > 5  # another generator, another appearance
    outside, bone = anat[0, ..., 1] == A.OUTSIDE, anat[0, ..., 1] == A.BONE
    liver, tumour = anat[0, ..., 1] == A.LIVER, anat[0, ..., 1] == A.TUMOUR
    livers, tumours, bones, airs = [], [], [], []
    for seed in range(40):
        x = render(anat, dist, px, np.random.default_rng(seed))[0, ..., 1]
        livers.append(np.median(x[liver]))
        tumours.append(np.median(x[tumour]) - np.median(x[liver]))
        bones.append(np.median(x[bone]))
        airs.append(np.median(x[outside]))
    assert max(airs) < -900 and np.median(bones) > 250 and min(bones) > 50
    assert 70 < np.median(livers) < 150 and np.std(livers) > 10  # contrast phases vary
    assert np.mean(np.abs(tumours) > 10) > 0.8  # tumours differ from their liver ...
    assert np.mean(np.array(tumours) < 0) > 0.5  # ... mostly darker


def test_the_fat_layer_under_the_skin():
    anat = _anatomy()
    dist = distances(anat[..., 1], 2.0)
    skin = (dist[0, ..., 0] > 0) & (dist[0, ..., 0] <= 2.5) & (anat[0, ..., 1] == A.BODY)
    fat = [np.median(render(anat, dist, np.array([2.0]), np.random.default_rng(s))[0, ..., 1][skin])
           for s in range(20)]
    assert np.median(fat) < -40  # subcutaneous fat, not soft tissue


def test_draw_table_couples_organs_to_the_contrast_phase():
    rng = np.random.default_rng(0)
    tables = [draw_table(rng)[0] for _ in range(300)]
    liver = np.array([t[A.LIVER] for t in tables])
    portal = np.array([t[A.PORTAL] for t in tables])
    spleen = np.array([t[A.SPLEEN] for t in tables])
    assert np.corrcoef(liver, portal)[0, 1] > 0.3  # enhancement moves them together (1 in 10 ignores it)
    assert np.median(np.abs(spleen - liver)) < 20  # the spleen looks like the liver


def test_a_crop_inside_the_body_has_no_skin():
    """Tumour-stage crops often show no air: no fat layer may appear along their edges."""
    a = np.full((1, 16, 16), A.BODY, np.uint8)
    a[0, 4:8, 4:8] = A.BONE
    d = distances(a, 1.0)
    assert (d[0, ..., 0] == 1000).all() and d[0, 5, 5, 1] == 0 and d[0, 0, 0, 1] > 4
