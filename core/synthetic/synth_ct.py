"""Training CT rendered from real anatomy: expert label maps in, random but plausible HU out.

3D-IRCADb-01 gives us two real CTs and the expert label maps of sixteen more patients
whose CT we do not have (:mod:`core.anatomy`). A model trained on two CTs learns two
livers; rendering CT from the sixteen label maps shows it sixteen more real livers,
with their real tumours, vessels, bones and neighbours, at their real positions. The
idea follows SynthSeg (Billot et al., Medical Image Analysis 2023): draw a new
appearance for every sample, so that the network has to learn shape and context rather
than one scanner's grey values. Unlike SynthSeg, intensities are drawn around real CT
values (Hounsfield units are calibrated, and the model's input window is fixed), with
a contrast-phase variable coupling the organs as contrast agent does:

* a contrast level ``c`` in [0, 1] (0 unenhanced, 1 strong portal-venous phase) sets
  liver (about 55 + 70 c HU), spleen (liver +- 15), vessels, kidneys and pancreas;
  3D-IRCADb-01 patient 17: liver median 103 HU, patient 7: 120 HU, portal vein 154-169;
* tumours differ from the liver around them by -90..-15 HU (three in four) or
  +15..+60 HU, with their own texture and, often, a necrotic core, an enhancing rim or
  calcifications (patient 17's two large metastases have all three); cysts are near water;
* tissue the maps leave unlabelled inside the skin (fat, muscle, bowel, stomach when it
  is not outlined) is filled with a subcutaneous fat layer and an abdominal-wall muscle
  layer of random thickness under the skin, and inside them a random mixture of fat,
  soft tissue, gas and, sometimes, oral contrast in blobs of random size;
* then texture per structure, partial-volume blur, noise and a smooth bias.

Rendering works on the model's input grid (after resizing and augmentation), for the
2.5D channels together (one appearance per sample), about 1-2 ms per 128 x 128 x 3 sample.
"""

from __future__ import annotations

import numpy as np

from ..datasets import anatomy as A

# Share of samples whose organ intensities ignore the priors entirely (SynthSeg-style),
# so that shape and context, not one grey value, identify the liver.
RANDOM_CONTRAST_SHARE = 0.1


def _smooth(rng: np.random.Generator, s: int, cells: int) -> np.ndarray:
    """Smooth random field, about N(0, 1) in value, [s, s], bilinear from a (cells + 1)^2 grid."""
    c = rng.standard_normal((cells + 1, cells + 1), dtype=np.float32)
    t = np.linspace(0, cells, s, dtype=np.float32)
    i0 = np.minimum(t.astype(np.intp), cells - 1)
    f = t - i0
    rows = c[i0] * (1 - f)[:, None] + c[i0 + 1] * f[:, None]  # [s, cells + 1]
    return rows[:, i0] * (1 - f) + rows[:, i0 + 1] * f


def _octaves(rng: np.random.Generator, s: int, cells: int) -> np.ndarray:
    """Smooth field with detail: two octaves (cells and 2 x cells), about N(0, 1)."""
    return (_smooth(rng, s, cells) + 0.5 * _smooth(rng, s, min(2 * cells, s // 2))) / 1.118


def distances(anat: np.ndarray, px_mm: float) -> np.ndarray:
    """Per-slice distances that place the tissue the maps leave unlabelled.

    Args:
        anat: uint8 [Z, S, S] anatomy codes on the model's grid.
        px_mm: pixel size in mm.

    Returns:
        float16 [Z, S, S, 2]: depth below the skin (mm; 1000 where a slice shows no skin, as in
        a crop inside the body) and distance to the nearest bone (mm; 1000 where it has no bone).
    """
    from scipy import ndimage
    out = np.empty(anat.shape + (2,), np.float16)
    for i, a in enumerate(anat):
        body = a != A.OUTSIDE
        if not body.any():
            out[i, ..., 0] = 0
        elif body.all():  # a crop inside the body (tumour stage): no skin in sight
            out[i, ..., 0] = 1000
        else:
            out[i, ..., 0] = ndimage.distance_transform_edt(body) * px_mm
        bone = a == A.BONE
        out[i, ..., 1] = ndimage.distance_transform_edt(~bone) * px_mm if bone.any() else 1000
    return out


def draw_table(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mean and texture HU of every anatomy code for one sample (float32 [N_CODES] each).

    BODY's entries are unused (the tissue mixture replaces it).
    """
    mu = np.zeros(A.N_CODES, np.float32)
    sd = np.zeros(A.N_CODES, np.float32)
    c = rng.uniform(0, 1) ** 0.7  # contrast level: portal-venous CT is the most common
    liver = 55 + 70 * c + rng.normal(0, 10)
    mu[A.OUTSIDE], sd[A.OUTSIDE] = -1000, 5
    mu[A.LIVER], sd[A.LIVER] = liver, rng.uniform(3, 15)
    hypo = rng.random() < 0.75
    mu[A.TUMOUR] = liver + (rng.uniform(-90, -15) if hypo else rng.uniform(15, 60))
    sd[A.TUMOUR] = rng.uniform(5, 30)
    mu[A.CYST], sd[A.CYST] = rng.uniform(-5, 25), rng.uniform(2, 8)
    mu[A.PORTAL], sd[A.PORTAL] = 40 + 150 * c + rng.normal(0, 15), rng.uniform(5, 20)
    mu[A.VENOUS], sd[A.VENOUS] = 40 + 130 * c + rng.normal(0, 20), rng.uniform(5, 25)
    mu[A.ARTERY], sd[A.ARTERY] = 40 + 150 * c + rng.uniform(0, 150), rng.uniform(5, 25)
    mu[A.BONE], sd[A.BONE] = rng.uniform(200, 650), rng.uniform(60, 200)
    mu[A.KIDNEY], sd[A.KIDNEY] = 30 + 170 * c + rng.normal(0, 20), rng.uniform(10, 35)
    mu[A.SPLEEN], sd[A.SPLEEN] = liver + rng.normal(0, 12), rng.uniform(3, 15)
    mu[A.LUNG], sd[A.LUNG] = rng.uniform(-920, -720), rng.uniform(20, 80)
    mu[A.GALLBLADDER], sd[A.GALLBLADDER] = rng.uniform(-5, 35), rng.uniform(2, 8)
    mu[A.STOMACH], sd[A.STOMACH] = rng.choice([rng.uniform(-20, 45), rng.uniform(120, 300)], p=[0.8, 0.2]), \
        rng.uniform(5, 25)
    mu[A.PANCREAS], sd[A.PANCREAS] = 40 + 70 * c + rng.normal(0, 10), rng.uniform(5, 15)
    mu[A.ADRENAL], sd[A.ADRENAL] = rng.uniform(10, 80), rng.uniform(5, 25)
    mu[A.OTHER], sd[A.OTHER] = rng.uniform(-20, 120), rng.uniform(5, 30)
    if rng.random() < RANDOM_CONTRAST_SHARE:  # organs anywhere in the window; air, lung, bone stay
        organs = [A.LIVER, A.SPLEEN, A.KIDNEY, A.PANCREAS, A.STOMACH, A.GALLBLADDER, A.ADRENAL, A.OTHER,
                  A.PORTAL, A.VENOUS, A.ARTERY, A.CYST]
        mu[organs] = rng.uniform(-60, 260, len(organs))
        mu[A.TUMOUR] = mu[A.LIVER] + rng.choice([-1, 1]) * rng.uniform(20, 90)
    return mu, sd


def _body_tissue(rng: np.random.Generator, dist: np.ndarray, s: int, px_mm: float) -> np.ndarray:
    """HU of unlabelled tissue inside the skin for one sample, [S, S] (before texture and noise).

    ``dist``: [S, S, 2] depth below the skin and distance to bone, mm (:func:`distances`).
    """
    depth, to_bone = dist[..., 0], dist[..., 1]
    fat_mm = rng.uniform(3, 35)
    wall_mm = rng.uniform(4, 18)
    fat_hu, muscle_hu, soft_hu = rng.uniform(-130, -70), rng.uniform(30, 70), rng.uniform(15, 60)
    cells = int(np.clip(s * px_mm / rng.uniform(20, 60), 2, 32))  # blobs of 20-60 mm, with detail
    f1, f2 = _octaves(rng, s, cells), _octaves(rng, s, max(2, cells * 2))
    out = np.full((s, s), soft_hu, np.float32)
    out[f1 < rng.uniform(-1.2, 0.0)] = fat_hu  # visceral fat
    out[f1 > rng.uniform(1.0, 1.8)] = muscle_hu
    out[to_bone < rng.uniform(5, 45)] = muscle_hu  # paraspinal and psoas muscles, intercostals
    out[f2 > rng.uniform(1.3, 2.3)] = rng.uniform(-1000, -500)  # bowel gas
    if rng.random() < 0.3:  # oral contrast in some bowel loops
        out[f2 < -rng.uniform(1.3, 2.3)] = rng.uniform(120, 400)
    out[depth < fat_mm + wall_mm] = muscle_hu
    out[depth < fat_mm] = fat_hu
    return out


def _tumour_pattern(x: np.ndarray, tumour: np.ndarray, rng: np.random.Generator, px_mm: float) -> None:
    """Necrotic core, enhancing rim and calcifications inside the tumour pixels, in place.

    ``x``: [S, S, C] HU; ``tumour``: bool [S, S, C].
    """
    from scipy import ndimage
    necrosis, rim, calc = rng.random() < 0.35, rng.random() < 0.3, rng.random() < 0.15
    if not (necrosis or rim or calc):
        return
    core_mm, dark, bright = rng.uniform(3, 12), rng.uniform(20, 70), rng.uniform(20, 70)
    for k in range(x.shape[-1]):
        t = tumour[..., k]
        if not t.any():
            continue
        depth = ndimage.distance_transform_edt(t) * px_mm
        if necrosis:
            x[..., k][depth > core_mm] -= dark
        if rim:
            x[..., k][t & (depth <= 2.5)] += bright
        if calc:
            spots = t & (rng.random(t.shape) < rng.uniform(0.005, 0.04))
            x[..., k][spots] = rng.uniform(200, 700)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable 3-tap Gaussian-like blur of the [S, S, C] image's two spatial axes, in place."""
    if sigma <= 0.2:
        return x
    w = float(np.exp(-0.5 / sigma ** 2))
    w = w / (1 + 2 * w)
    for axis in (0, 1):
        a = np.moveaxis(x, axis, 0)
        centre = a.copy()
        a *= 1 - 2 * w
        a[1:] += w * centre[:-1]
        a[:-1] += w * centre[1:]
        a[0] += w * centre[0]
        a[-1] += w * centre[-1]
    return x


def render(anat: np.ndarray, dist: np.ndarray, px_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render CT for a batch of anatomy samples.

    Args:
        anat: uint8 [N, S, S, C] anatomy codes of the C 2.5D channels (on the model's grid).
        dist: [N, S, S, 2] the middle channel's depth below the skin and distance to bone, mm.
        px_mm: [N] pixel size in mm on the model's grid (texture and layer sizes follow it).
        rng: the batch's generator.

    Returns:
        float32 [N, S, S, C] Hounsfield units.
    """
    n, s, _, c = anat.shape
    out = np.empty(anat.shape, np.float32)
    for b in range(n):
        mu, sd = draw_table(rng)
        pm = float(px_mm[b])
        x = mu[anat[b]]  # [S, S, C]
        body = anat[b] == A.BODY
        if body.any():
            tissue = _body_tissue(rng, np.asarray(dist[b], np.float32), s, pm)
            sd[A.BODY] = rng.uniform(5, 20)
            x[body] = np.broadcast_to(tissue[..., None], x.shape)[body]
        texture = _smooth(rng, s, int(np.clip(s * pm / rng.uniform(3, 10), 4, 96)))  # 3-10 mm grain
        x += sd[anat[b]] * texture[..., None]
        tumour = anat[b] == A.TUMOUR
        if tumour.any():
            _tumour_pattern(x, tumour, rng, pm)
        _blur(x, rng.uniform(0.3, 1.2))
        x += rng.uniform(3, 25) * rng.standard_normal(x.shape, dtype=np.float32)
        if rng.random() < 0.5:
            x += rng.uniform(0, 20) * _smooth(rng, s, 2)[..., None]
        out[b] = x
    return out
