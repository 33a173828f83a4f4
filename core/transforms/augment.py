"""Geometric augmentation of training samples as nearest-neighbour index maps.

Every input channel, the target, the liver mask and the anatomy of one sample are
gathered through the same map, so each pixel is copied once and labels stay labels.

Two modes (``TrainConfig.geometry``):

* ``flips`` (the notebooks'): horizontal flip, 90-degree rotations, zoom in by 2-15 %.
  Fine for phantoms; on real CT a flip moves the liver to the patient's left, and the
  spleen, which has the liver's density (3D-IRCADb-01 patient 7: 116 vs 120 HU), is
  then told apart only by shape.
* ``anatomical``: what varies between real scans and keeps anatomy plausible: rotation
  (+-12 degrees), scale (0.85-1.2, field of view and body size), shift (+-8 %), and a
  mild anisotropic stretch; never a flip.
"""

from __future__ import annotations

import numpy as np

GEOMETRIES = ("flips", "anatomical")


def flips_map(rng: np.random.Generator, s: int):
    """(flip, rot90 count, zoom index map or None) for one sample of the ``flips`` mode."""
    flip = rng.random() < 0.5
    rot = int(rng.integers(1, 4)) if rng.random() < 0.3 else 0
    idx = None
    if rng.random() < 0.3:  # zoom in by 2-15 %: nearest-neighbour index map of a random crop
        m = int(s * rng.uniform(0.02, 0.15))
        o0, o1 = rng.integers(0, 2 * m + 1, 2)
        base = np.round(np.linspace(0, s - 1 - 2 * m, s)).astype(np.intp)
        idx = (o0 + base)[:, None], o1 + base
    return flip, rot, idx


def apply_flips(img: np.ndarray, flip: bool, rot: int, idx) -> np.ndarray:
    """Apply a :func:`flips_map` to one [S, S] image (a view where possible)."""
    if idx is not None:
        img = img[idx]
    if flip:
        img = img[:, ::-1]
    return np.rot90(img, rot) if rot else img


class AffineMap(tuple):
    """(rows, cols, inside) of :func:`affine_map`, with the flat source index and the outside mask
    kept for :func:`apply_affine` (computed once per sample, used for every channel)."""

    flat: np.ndarray
    outside: np.ndarray
    fills_nothing: bool


def affine_map(rng: np.random.Generator, s: int) -> AffineMap:
    """(rows, cols, inside) for one sample of the ``anatomical`` mode.

    ``rows``/``cols``: intp [S, S] source pixel of every output pixel (clamped into the
    image); ``inside``: bool [S, S], False where the source lies outside (filled with 0).
    """
    angle = np.deg2rad(rng.uniform(-12, 12))
    scale = rng.uniform(0.85, 1.2)
    stretch = rng.uniform(0.93, 1.07)
    sy, sx = scale * stretch, scale / stretch
    ty, tx = rng.uniform(-0.08, 0.08, 2) * s
    c = (s - 1) / 2.0
    o = np.arange(s, dtype=np.float32) - c
    cos, sin = np.cos(angle), np.sin(angle)
    # output (y, x) -> source: inverse rotation, then inverse scale, then shift
    yy, xx = o[:, None], o[None, :]
    src_y = (cos * yy - sin * xx) / sy + c - ty
    src_x = (sin * yy + cos * xx) / sx + c - tx
    rows = np.rint(src_y).astype(np.intp)
    cols = np.rint(src_x).astype(np.intp)
    inside = (rows >= 0) & (rows < s) & (cols >= 0) & (cols < s)
    np.clip(rows, 0, s - 1, out=rows)
    np.clip(cols, 0, s - 1, out=cols)
    m = AffineMap((rows, cols, inside))
    m.flat = rows * s + cols
    m.outside = ~inside
    m.fills_nothing = not m.outside.any()
    return m


def apply_affine(img: np.ndarray, m, fill: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Apply an :func:`affine_map` to one [S, S] image.

    One flat gather (``np.take``; 4-6x faster than 2-D fancy indexing at 128 px) and one masked
    fill, with the map's flat index and mask computed once per sample (same pixels either way).
    """
    rows, cols, inside = m
    flat = getattr(m, "flat", None)
    if flat is None or flat.shape != img.shape:
        flat, outside, nothing = rows * img.shape[1] + cols, ~inside, False
    else:
        outside, nothing = m.outside, m.fills_nothing
    res = np.take(img.reshape(-1), flat, out=out)
    if not nothing:
        np.copyto(res, fill, where=outside)
    return res
