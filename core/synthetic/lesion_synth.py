"""Synthetic liver lesions pasted into training slices of the tumour stage, on the fly.

A tumour model learns from the lesions it is shown, and a lab's own dataset has few:
3D-IRCADb-01 has 20 patients, some without tumours, and six phantom training
patients hold about a dozen lesions. With only those, the model memorises them and
finds nothing in new patients (bench/benchmarks/train_quality.py: validation Dice near 0 for
20 epochs). Following the synthetic-tumour approach (Hu et al., "Label-Free Liver
Tumor Segmentation", CVPR 2023), each chosen sample gets one to three extra lesions
inside its liver, with their own labels:

* shape: an ellipse of random size (radius 1.5-16 px at the model input, log-uniform, so
  that radii of 1.5-4 px stay common), axes and angle, its outline perturbed by smooth
  noise; across the 2.5D channels (the slices above and below) it shrinks like an
  ellipsoid of random depth;
* large heterogeneous lesions (:data:`LARGE_SHARE` of them): radius 12-30 px (at most 0.8 of
  the liver's equivalent radius), a lobulated outline (angular harmonics of the radius),
  internal heterogeneity and, mostly, an irregular darker necrotic core;
* intensity (:data:`KINDS`): darker or brighter than the liver around it by 15-80 HU
  (3D-IRCADb-01 patient 17: liver median 103 HU, tumour median 68 HU, tumour p5-p95
  12-146 HU), with blurred or sharp margins, a textured core and sometimes an enhancing
  rim; arterial hyper-enhancement (+20..+80 HU, mosaic); occasionally lipiodol after
  chemo-embolisation (+250..+1400 HU deposits over a blob or most of a hypodense lesion);
  tissue contrast stays within +-150 HU of the liver;
* the image's own noise and texture stay underneath (the change is added, not painted).

Only for recipes that map HU linearly to the input (``window25d``), so that a HU
difference is a known input difference. Works in place on the uint8 batch before
it is converted to float, about 0.1 ms per lesion.
"""

from __future__ import annotations

import numpy as np

from .synth_ct import LOW_CONTRAST_HU

MIN_RADIUS_PX, MAX_RADIUS_PX = 1.5, 16.0
MAX_LESIONS = 3
# A share of the lesions is large and heterogeneous (radius 12-30 px, at most 0.8 of the liver's
# equivalent radius in the slice): lobulated outline, internal heterogeneity and, mostly, a
# darker necrotic core (3D-IRCADb-01 patient 17: an 84 mL tumour outlined at a third of its size).
LARGE_SHARE = 0.15
LARGE_RADIUS_PX = (12.0, 30.0)
LARGE_NECROSIS_SHARE = 0.75
# Kinds of lesions and their shares: hypodense, hyperdense, with an enhancing rim, arterial
# hyper-enhancement (hypervascular HCC, +20..+80 HU, mosaic) and lipiodol deposits after
# chemo-embolisation (+250..+1400 HU over a hypodense, treated tumour; core.synthetic.synth_ct.LIPIODOL_HU).
KINDS = {"hypo": 0.52, "hyper": 0.14, "rim": 0.16, "arterial": 0.14, "lipiodol": 0.04}
LIPIODOL_DELTA_HU = (250.0, 1400.0)
# Low-contrast lesions (``low_contrast``): as far from the liver as the rendered tumours'
# (:data:`core.synthetic.synth_ct.LOW_CONTRAST_HU`), their texture scaled to at most this many HU.
LOW_CONTRAST_TEXTURE = 6.0
MAX_DELTA_HU = 150.0  # tumour tissue and necrosis stay within +-150 HU of the liver (lipiodol aside)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, coarse: int = 4) -> np.ndarray:
    """A smooth random field in about [-1, 1] of shape [h, w] (bilinear from a coarse grid)."""
    c = rng.standard_normal((coarse + 1, coarse + 1)).astype(np.float32)
    yi = np.linspace(0, coarse, h, dtype=np.float32)
    xi = np.linspace(0, coarse, w, dtype=np.float32)
    y0 = np.minimum(yi.astype(int), coarse - 1)
    x0 = np.minimum(xi.astype(int), coarse - 1)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    a = c[y0][:, x0] * (1 - fx) + c[y0][:, x0 + 1] * fx
    b = c[y0 + 1][:, x0] * (1 - fx) + c[y0 + 1][:, x0 + 1] * fx
    return np.clip((a * (1 - fy) + b * fy) / 1.5, -1, 1)


def add_lesions(x8: np.ndarray, y8: np.ndarray, liver8: np.ndarray, rng: np.random.Generator,
                units_per_hu: float, probability: float, label: bool = True, low_contrast: float = 0.0) -> int:
    """Paste synthetic lesions into a batch, in place.

    Args:
        x8: uint8 [B, S, S, C] inputs (C 2.5D channels, the middle one is the target's slice).
        y8: uint8 [B, S, S] tumour targets (0/1); lesion pixels inside the liver become 1.
        liver8: uint8 [B, S, S] liver masks of the target slices (lesions stay inside).
        rng: the batch's generator (reproducible batches).
        units_per_hu: input units per HU (255 / window width for ``window25d``).
        probability: share of the samples that get lesions.
        label: mark lesion pixels in ``y8`` (tumour stage); False leaves the targets alone
            (liver stage: a lesion inside the liver is still liver, which a liver model
            trained on tumour-free livers does not know).
        low_contrast: share of the hypo- and hyperdense lesions drawn 8-25 HU from the liver with a
            quiet texture (:data:`core.synthetic.synth_ct.LOW_CONTRAST_HU`); 0 draws nothing more.

    Returns:
        The number of lesions added.
    """
    n, s, _, c = x8.shape
    mid = c // 2
    added = 0
    for b in np.flatnonzero(rng.random(n) < probability):
        ys, xs = np.nonzero(liver8[b])
        if len(ys) < 20:
            continue
        for _ in range(int(rng.integers(1, MAX_LESIONS + 1))):
            added += _one_lesion(x8[b], y8[b] if label else None, liver8[b] > 0, ys, xs, rng, units_per_hu, mid,
                                 low_contrast)
    return added


def _pick(rng: np.random.Generator, shares) -> int:
    c = np.cumsum(np.asarray(shares, np.float64))
    return min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), len(c) - 1)


def _one_lesion(x: np.ndarray, y: np.ndarray | None, liver: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                rng: np.random.Generator, units_per_hu: float, mid: int, low_contrast: float = 0.0) -> int:
    s, c = x.shape[0], x.shape[-1]
    k = int(rng.integers(len(ys)))
    cy, cx = float(ys[k]), float(xs[k])
    large = rng.random() < LARGE_SHARE
    if large:
        r = float(np.exp(rng.uniform(np.log(LARGE_RADIUS_PX[0]), np.log(LARGE_RADIUS_PX[1]))))
        r = max(MIN_RADIUS_PX, min(r, 0.8 * np.sqrt(len(ys) / np.pi)))  # leave some liver around it
    else:
        r = float(np.exp(rng.uniform(np.log(MIN_RADIUS_PX), np.log(MAX_RADIUS_PX))))
    ra, rb = r * rng.uniform(0.75, 1.25), r * rng.uniform(0.75, 1.25)
    depth = max(1.0, r * rng.uniform(0.25, 1.0))  # half-depth in slices (2.5D neighbours)
    ext = int(np.ceil(max(ra, rb) * (1.6 if large else 1.4))) + 2
    y0, y1 = max(0, int(cy) - ext), min(s, int(cy) + ext + 1)
    x0, x1 = max(0, int(cx) - ext), min(s, int(cx) + ext + 1)
    h, w = y1 - y0, x1 - x0
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    t = rng.uniform(0, np.pi)
    u, v = xx * np.cos(t) + yy * np.sin(t), -xx * np.sin(t) + yy * np.cos(t)
    d2 = (u / ra) ** 2 + (v / rb) ** 2
    wobble = 0.3 * _smooth_noise(rng, h, w)
    if large:  # lobulated: a few angular harmonics of the radius, and finer wobble
        theta = np.arctan2(v, u)
        lob = np.zeros_like(theta)
        for harmonic in (2, 3, 4, 5):
            lob += rng.uniform(0, 0.12) * np.cos(harmonic * theta + rng.uniform(0, 2 * np.pi))
        d2 = d2 / (1 + lob) ** 2
        wobble = wobble + 0.15 * _smooth_noise(rng, h, w, coarse=8)
    kind = list(KINDS)[_pick(rng, list(KINDS.values()))]
    contrast = {"hypo": rng.uniform(-80, -15), "hyper": rng.uniform(15, 60), "rim": rng.uniform(-70, -20),
                "arterial": rng.uniform(20, 80), "lipiodol": rng.uniform(-60, -5)}[kind]
    margin = rng.uniform(0.03, 0.2) if large else rng.uniform(0.05, 0.4)
    texture = rng.uniform(0, 15) * _smooth_noise(rng, h, w, coarse=3)
    if large or kind == "arterial":  # internal heterogeneity (mosaic)
        texture = texture + rng.uniform(10, 30) * _smooth_noise(rng, h, w, coarse=6)
    if low_contrast and kind in ("hypo", "hyper") and rng.random() < low_contrast:
        contrast = (-1.0 if kind == "hypo" else 1.0) * rng.uniform(*LOW_CONTRAST_HU)
        texture = texture * (LOW_CONTRAST_TEXTURE / max(float(np.abs(texture).max()), LOW_CONTRAST_TEXTURE))
    necrosis = None
    if large and rng.random() < LARGE_NECROSIS_SHARE:  # irregular darker core
        core = rng.uniform(0.35, 0.65) - 0.25 * _smooth_noise(rng, h, w, coarse=5)
        necrosis = (rng.uniform(20, 60), core)
    oil = None
    if kind == "lipiodol":  # a blob or most of the lesion, one field for all the channels
        field = _smooth_noise(rng, h, w, coarse=int(rng.integers(2, 6)))
        oil = (rng.uniform(*LIPIODOL_DELTA_HU), field, rng.uniform(0.3, 1.0))
    rim = rng.uniform(30, 70) if kind == "rim" else 0.0
    box_liver = liver[y0:y1, x0:x1]
    labelled = 0
    for ch in range(c):
        dz = (ch - mid) / depth
        scale2 = 1.0 - dz * dz  # the ellipsoid's cross-section at this neighbour
        if scale2 <= 0.05:
            continue
        f = 1.0 - d2 / scale2 + wobble  # > 0 inside
        inside = (f > 0) & box_liver
        if not inside.any():
            continue
        wgt = np.clip(f / margin, 0, 1)
        delta = contrast + texture
        if necrosis is not None:
            delta = delta - necrosis[0] * np.clip((f - necrosis[1]) / 0.15, 0, 1)
        if rim:
            delta = delta + rim * ((f > 0) & (f < 0.3))
        delta = np.clip(delta, -MAX_DELTA_HU, MAX_DELTA_HU) * wgt
        if oil is not None:
            fi = oil[1][inside]
            thr = np.quantile(fi, 1 - oil[2]) if oil[2] < 0.98 else -np.inf
            delta = delta + oil[0] * (inside & (oil[1] >= thr)) * wgt
        patch = x[y0:y1, x0:x1, ch].astype(np.float32)
        patch[inside] += delta[inside] * units_per_hu
        x[y0:y1, x0:x1, ch] = np.clip(np.rint(patch), 0, 255).astype(np.uint8)
        if ch == mid:
            if y is not None:
                y[y0:y1, x0:x1][inside] = 1
            labelled = 1
    return labelled
