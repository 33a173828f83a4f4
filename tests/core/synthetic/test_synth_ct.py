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


# --- contrast phases, lipiodol, kernels ----------------------------------------------------------

from core.synthetic import kernels as K  # noqa: E402
from core.synthetic import synth_ct as S  # noqa: E402


def test_the_phase_table_orders_the_liver_and_the_vessels():
    P = S.PHASES
    assert set(P) == set(S.PHASE_SHARES) and abs(sum(S.PHASE_SHARES.values()) - 1) < 1e-9
    assert S.PHASE_SHARES["portal"] == max(S.PHASE_SHARES.values())
    liver = {k: np.mean(P[k]["liver"]) for k in P}
    assert liver["unenhanced"] < liver["arterial"] < liver["portal"]  # enhancement of the parenchyma
    assert liver["arterial"] < liver["equilibrium"] < liver["portal"]
    assert P["unenhanced"]["portal"][1] <= P["unenhanced"]["liver"][0]  # blood darker than liver
    assert P["arterial"]["artery"][0] > 2 * P["arterial"]["liver"][1]  # aorta >> liver
    for phase in P:  # tumour kinds: shares sum to one
        assert abs(sum(k[0] for k in P[phase]["tumour"]) - 1) < 1e-9


def test_each_phase_draws_its_own_values():
    def tables(phase, n=150, seed=0):
        rng = np.random.default_rng(seed)
        return np.array([S._phase_table(rng, phase)[0] for _ in range(n)])
    un, art, pv, eq = (tables(p) for p in ("unenhanced", "arterial", "portal", "equilibrium"))
    L = A.LIVER
    assert np.median(un[:, L]) < np.median(art[:, L]) < np.median(pv[:, L])
    assert (un[:, A.PORTAL] < un[:, L]).mean() > 0.9  # unenhanced vessels darker than the liver
    assert (un[:, A.SPLEEN] <= un[:, L] + 1e-3).all()  # unenhanced spleen a little below the liver
    assert (art[:, A.ARTERY] - art[:, L] > 150).all()  # arterial: aorta/arteries >> liver
    assert (art[:, A.KIDNEY] >= 150).all() and (art[:, A.SPLEEN] > art[:, L]).all()
    hyper = (art[:, A.TUMOUR] - art[:, L] >= 20).mean()
    assert 0.35 < hyper < 0.65  # hypervascular (HCC-like) tumours in about half the arterial samples
    d = eq[:, [A.PORTAL, A.VENOUS, A.ARTERY]] - eq[:, [L]]
    assert (d >= -1e-3).all() and (d <= 40 + 1e-3).all()  # equilibrium: vessels close to the liver
    washout = eq[:, A.TUMOUR] - eq[:, L]
    assert ((washout <= -10) & (washout >= -40)).mean() > 0.4 and (washout < 0).mean() > 0.7
    assert (pv[:, A.PORTAL] >= 150).all() and ((pv[:, L] >= 90) & (pv[:, L] <= 130)).all()


def test_draw_table_draws_the_phases_with_their_shares():
    rng = np.random.default_rng(1)
    drawn = [S.draw_phase(rng) for _ in range(2000)]
    for phase, share in S.PHASE_SHARES.items():
        assert abs(drawn.count(phase) / 2000 - share) < 0.04
    # the arterial mode shows up in full tables: some samples with artery > 250 HU and liver < 95
    rng = np.random.default_rng(2)
    t = np.array([draw_table(rng)[0] for _ in range(400)])
    arterial = (t[:, A.ARTERY] > 250) & (t[:, A.LIVER] < 95)
    assert 0.1 < arterial.mean() < 0.3


def _tumour_disc(s=48, c=3):
    yy, xx = np.mgrid[:s, :s]
    t = ((yy - 24) ** 2 + (xx - 24) ** 2 < 10 ** 2)
    return np.repeat(t[..., None], c, -1)


def test_lipiodol_deposits_are_dense_and_only_inside_the_tumour(monkeypatch):
    monkeypatch.setattr(S, "LIPIODOL_SHARE", 1.0)
    for name in ("NECROSIS_SHARE", "RIM_SHARE", "CALC_SHARE"):
        monkeypatch.setattr(S, name, 0.0)
    t = _tumour_disc()
    covers = []
    for seed in range(20):
        x = np.full(t.shape, 100.0, np.float32)
        S._tumour_pattern(x, t, np.random.default_rng(seed), 1.0)
        assert (x[~t] == 100).all(), "lipiodol outside the tumour"
        bright = x > 300
        assert bright.any() and x.max() <= 1500 * 1.5
        covers.append(bright[t].mean())
        # one deposit for the sample: the channels share it
        assert (bright[..., 0] == bright[..., 1]).all()
    assert min(covers) > 0.1 and max(covers) > 0.8  # a blob or a good part of the tumour


def test_lipiodol_is_occasional_and_calcifications_stay_spots():
    t = _tumour_disc()
    lipiodol = 0
    for seed in range(300):
        x = np.full(t.shape, 100.0, np.float32)
        S._tumour_pattern(x, t, np.random.default_rng(seed), 1.0)
        assert (x[~t] == 100).all()
        lipiodol += (x[t] > 250).mean() > 0.1  # calcification spots cover at most 4 %
    assert 0.03 < lipiodol / 300 < 0.15  # LIPIODOL_SHARE = 0.08


def _high_freq(x):
    """Mean squared 4-neighbour Laplacian of each channel."""
    lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return float(np.mean(lap ** 2))


def test_a_sharp_kernel_raises_edges_and_noise_over_a_soft_one(monkeypatch):
    step = np.zeros((32, 32, 3), np.float32)
    step[:, 16:] = 100.0
    energy = {}
    for kind in ("soft", "sharp"):
        monkeypatch.setattr(K, "KERNELS", {kind: 1.0})
        monkeypatch.setattr(K, "KERNEL_NOISE", {kind: (1e-3, 1e-3)})  # edges alone first
        x = step.copy()
        assert K.reconstruct(x, np.random.default_rng(0)) == kind
        energy[kind] = _high_freq(x)
        if kind == "sharp":
            assert x.max() > 105 and x.min() < -5  # overshoot at the edge
        else:
            assert x.max() <= 100.05 and x.min() >= -0.05
    assert energy["sharp"] > 3 * energy["soft"]
    # with the rendered noise
    monkeypatch.undo()
    anat = _anatomy()
    dist = distances(anat[..., 1], 2.0)
    hf = {}
    for kind in ("soft", "sharp"):
        monkeypatch.setattr(K, "KERNELS", {kind: 1.0})
        hf[kind] = np.median([_high_freq(render(anat, dist, np.array([2.0]), np.random.default_rng(s))[0])
                              for s in range(8)])
    assert hf["sharp"] > 5 * hf["soft"]


def test_noise_covers_smooth_thick_slices_and_sharp_thin_ones():
    """Flat liver: the channels share table, texture and bias, so their difference is the noise."""
    anat = np.full((1, 48, 48, 3), A.LIVER, np.uint8)
    dist = np.full((1, 48, 48, 2), 1000, np.float32)
    sds = []
    for seed in range(80):
        x = render(anat, dist, np.array([1.5]), np.random.default_rng(seed))[0]
        sds.append(np.std(x[4:-4, 4:-4, 0] - x[4:-4, 4:-4, 1]) / np.sqrt(2))
    assert 2 < min(sds) < 5 and 30 < max(sds) < 48


def test_render_works_for_any_number_of_channels():
    base = _anatomy()[..., :1]  # [1, S, S, 1]
    dist = distances(base[..., 0], 2.0)
    for c in (1, 3, 5, 7):
        anat = np.repeat(base, c, -1)
        x = render(anat, dist, np.array([2.0]), np.random.default_rng(3))
        assert x.shape == (1, 64, 64, c) and np.isfinite(x).all()
        liver = anat[0, ..., 0] == A.LIVER
        med = [np.median(x[0, ..., k][liver]) for k in range(c)]
        assert np.ptp(med) < 10  # one appearance for all the channels


def test_blur_equals_the_three_tap_filter_along_each_axis():
    """_blur runs in place on the array's own layout; the result is, bit for bit, that of the
    straightforward 3-tap filter [w, 1 - 2w, w] (edge pixel repeated) along rows, then columns."""
    x = np.arange(5 * 4 * 2, dtype=np.float32).reshape(5, 4, 2) ** 1.5
    sigma = 0.7
    w = float(np.exp(-0.5 / sigma ** 2))
    w = w / (1 + 2 * w)
    want = x.copy()
    for axis in (0, 1):
        a = np.moveaxis(want, axis, 0)
        centre = a.copy()
        a *= 1 - 2 * w
        a[1:] += w * centre[:-1]
        a[:-1] += w * centre[1:]
        a[0] += w * centre[0]
        a[-1] += w * centre[-1]
    got = K.blur(x.copy(), sigma)
    assert got.tobytes() == want.tobytes()
    k = 1 - 2 * w  # one pixel by hand: the corner, rows then columns
    r0 = (x[0] * k + w * x[1]) + w * x[0]
    assert np.allclose(got[0, 0], (r0[0] * k + w * r0[1]) + w * r0[0], rtol=1e-6)
    assert K.blur(x.copy(), 0.2).tobytes() == x.tobytes()  # below 0.2 px: no blur


def test_depth_on_the_tumour_box_equals_the_whole_image_transform():
    from scipy import ndimage
    t = np.zeros((12, 10), bool)
    t[3:8, 2:5] = True
    t[6, 5:9] = True
    edge = np.zeros((6, 6), bool)
    edge[0:4, 0:3] = True  # touching the image border: no margin there, as in the whole image
    for mask in (t, edge):
        assert S._depth(mask, 0.8).tobytes() == (ndimage.distance_transform_edt(mask) * 0.8).tobytes()
