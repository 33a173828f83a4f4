"""A whole CT volume rendered from a label map: one patient, one scan, for scoring.

Training renders each 2.5D sample with its own appearance (:func:`core.synthetic.synth_ct.render`):
that is what teaches shape over grey values, but a volume made of such slices would change
scanner at every slice, and anything judged in 3D (a lesion's extent across slices, its mean HU,
a filter on components) would be judged on CT no scanner makes. :func:`render_volume` draws
**one** appearance for the whole volume, as one acquisition gives:

* one contrast phase and one HU table (:data:`core.synthetic.synth_ct.PHASES`; no random-contrast
  draw: this is CT as a lab would have it);
* smooth fields in 3D, in mm (:func:`smooth_field`): the texture of each structure, the fat,
  soft-tissue, gas and oral-contrast blobs of the unlabelled tissue inside the skin, and a bias;
  the subcutaneous fat and wall muscle layers follow each slice's skin;
* per tumour (each 3D component of the tumour code): its own necrotic core, enhancing rim,
  calcifications or lipiodol, with the shares of training, the depth measured in 3D, in mm;
* one reconstruction kernel and noise level for the volume (:func:`core.synthetic.kernels.reconstruct`),
  the noise drawn per voxel.

Uses: the validation label maps (never trained on) as whole patients for lesion-level choices
(``bench/experiments/lesion_filter.py``). About 5-10 s for a 512 x 512 x 120 map on one core.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..datasets import anatomy as A
from ..runtime.errors import LiverSegError
from .kernels import reconstruct
from .synth_ct import (
    CALC_SHARE,
    LIPIODOL_HU,
    LIPIODOL_SHARE,
    NECROSIS_SHARE,
    PHASES,
    RIM_SHARE,
    _body_tissue,
    _phase_table,
    distances,
    draw_phase,
)


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], spacing, cell_mm: float) -> np.ndarray:
    """A smooth random field of ``shape`` (float32, mean about 0, sd 1): multilinear from a grid of
    normal values with a node about every ``cell_mm`` along each axis (``spacing``: mm per index)."""
    cells = [max(1, int(np.ceil(n * float(sp) / cell_mm))) for n, sp in zip(shape, spacing, strict=True)]
    out = rng.standard_normal([k + 1 for k in cells], dtype=np.float32)
    for axis, (n, k) in enumerate(zip(shape, cells, strict=True)):
        t = np.linspace(0, k, n, dtype=np.float32)
        i0 = np.minimum(t.astype(np.intp), k - 1)
        f = (t - i0).astype(np.float32).reshape([n if a == axis else 1 for a in range(len(shape))])
        out = np.take(out, i0, axis=axis) * (1 - f) + np.take(out, i0 + 1, axis=axis) * f
    sd = float(out.std())
    out -= out.mean()
    if sd > 0:
        out /= sd
    return out


def _depth3d(t: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm, in 3D) of each voxel of mask ``t`` to the nearest voxel outside it, 0 outside."""
    return ndimage.distance_transform_edt(np.pad(t, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]


def tumour_patterns(x: np.ndarray, tumour: np.ndarray, spacing, rng: np.random.Generator) -> int:
    """Necrotic core, enhancing rim, calcifications and lipiodol per 3D tumour component, in place.

    Each component draws its patterns with the shares of training (:data:`NECROSIS_SHARE`,
    :data:`RIM_SHARE`, :data:`CALC_SHARE`, :data:`LIPIODOL_SHARE`); depths are 3D distances in mm.
    Returns the number of components.
    """
    lab, n = ndimage.label(tumour)
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        necrosis, rim, calc = rng.random() < NECROSIS_SHARE, rng.random() < RIM_SHARE, rng.random() < CALC_SHARE
        lipiodol = rng.random() < LIPIODOL_SHARE
        core_mm, dark, bright = rng.uniform(3, 12), rng.uniform(20, 70), rng.uniform(20, 70)
        if not (necrosis or rim or calc or lipiodol):
            continue
        t = lab[sl] == k
        sub = x[sl]
        if necrosis or rim:
            depth = _depth3d(t, spacing)
            if necrosis:
                sub[depth > core_mm] -= dark
            if rim:
                sub[t & (depth <= 2.5)] += bright
        if calc:
            spots = t & (rng.random(t.shape) < rng.uniform(0.005, 0.04))
            sub[spots] = rng.uniform(200, 700)
        if lipiodol:
            field = smooth_field(rng, t.shape, spacing, rng.uniform(4, 15))
            cover = rng.uniform(0.2, 1.0)
            thr = np.quantile(field[t], 1 - cover) if cover < 0.98 else -np.inf
            lo, hi = LIPIODOL_HU
            oil = np.exp(rng.uniform(np.log(lo), np.log(hi)))
            dep = t & (field >= thr)
            sub[dep] = np.maximum(lo, oil + rng.uniform(0.03, 0.15) * oil * field[dep])
    return n


def render_volume(anatomy: np.ndarray, spacing, rng: np.random.Generator,
                  phase: str | None = None) -> tuple[np.ndarray, dict]:
    """Render one CT volume from an anatomy map, one appearance for the whole volume.

    Args:
        anatomy: uint8 [Z, Y, X] anatomy codes (:mod:`core.datasets.anatomy`) with a body outline.
        spacing: (z, y, x) mm.
        rng: the volume's generator (same seed, same volume).
        phase: a contrast phase of :data:`core.synthetic.synth_ct.PHASES`; default: drawn with
            the training shares.

    Returns:
        (int16 [Z, Y, X] Hounsfield units, facts: phase, kernel, tumours).
    """
    anatomy = np.asarray(anatomy)
    if anatomy.ndim != 3:
        raise LiverSegError(f"render_volume: expected a [Z, Y, X] anatomy map, got shape {anatomy.shape}")
    if not A.has_body(anatomy):
        raise LiverSegError("render_volume: the anatomy map has no body outline (skin mask): cannot render CT")
    phase = phase or draw_phase(rng)
    if phase not in PHASES:
        raise LiverSegError(f"render_volume: unknown phase {phase!r} (use one of {tuple(PHASES)})")
    spacing = tuple(float(s) for s in spacing)
    mu, sd = _phase_table(rng, phase)
    x = mu[anatomy]  # float32 [Z, Y, X]
    body = anatomy == A.BODY
    if body.any():
        # in-plane distances per slice, as a scan's layers follow each slice's skin
        dist = distances(anatomy, spacing[1]).astype(np.float32)
        tissue = _body_tissue(rng, dist, anatomy.shape[1], spacing[1],
                              fields=lambda g, mm: smooth_field(g, anatomy.shape, spacing, mm))
        del dist
        sd[A.BODY] = rng.uniform(5, 20)
        np.copyto(x, tissue, where=body)
        del tissue
    x += sd[anatomy] * smooth_field(rng, anatomy.shape, spacing, rng.uniform(3, 10))  # 3-10 mm grain
    tumour = anatomy == A.TUMOUR
    n_tumours = tumour_patterns(x, tumour, spacing, rng) if tumour.any() else 0
    kernel = reconstruct(x.transpose(1, 2, 0), rng)  # in-plane kernel; [Y, X, Z] view, in place
    if rng.random() < 0.5:
        x += rng.uniform(0, 20) * smooth_field(rng, anatomy.shape, spacing, 150.0)
    hu = np.clip(np.rint(x), -1024, 3071).astype(np.int16)
    return hu, {"phase": phase, "kernel": kernel, "tumours": int(n_tumours)}
