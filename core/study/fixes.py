"""One-click corrections of a label volume (no Qt): add a missed lesion, grow or shrink a lesion,
remove a connected region.

Each tool only computes: it reads the CT and the label and returns a :class:`Fix` (which voxels
get which value), so the GUI computes it in a worker thread while the user may paint; applying it
(:meth:`core.study.editing.LabelEditor.apply`) is quick and one undo step. A click where the
tool cannot act (outside the volume, on background, outside the liver) raises :class:`FixError`
with one line saying why, and nothing changes.

*Add lesion* grows a region from the click on the CT itself: the HU of a small ball around the
click (``m``) and of the liver around it (``L``) set a band, ``|HU - m| < BAND * |L - m|``; the
voxels in it, connected to the click and inside the liver (dilated by 2 voxels, so a
tumour bulging at the liver's edge is kept), within ``max_radius_mm``, become tumour, after an
opening that cuts thin leaks along vessels and a per-slice hole fill (necrotic or calcified
cores). The CT is smoothed (3 x 3 x 3 median) first, so noise does not fray the outline; the one
voxel of outline the smoothing and the opening take off is given back from the raw CT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..runtime.choices import SCOPES, FixScope
from ..runtime.errors import LiverSegError
from ..runtime.labels import LIVER, TUMOUR
from ..transforms.masks import crop_box


class FixError(LiverSegError):
    """A click where the tool cannot act; the message says why (nothing was changed)."""


@dataclass
class Fix:
    """What a tool would change: the voxels at ``flat`` (flat indices into the label) become
    ``value``; ``message`` says what it is ("lesion of 2.4 mL added")."""

    flat: np.ndarray
    value: int
    message: str


def _seed(label: np.ndarray, seed) -> tuple[int, int, int]:
    z, y, x = (int(round(float(c))) for c in seed)
    if not all(0 <= c < n for c, n in zip((z, y, x), label.shape, strict=True)):
        raise FixError(f"the click ({z}, {y}, {x}) is outside the volume {label.shape}")
    return z, y, x


def _box(shape, centre, radius_vox) -> tuple[slice, ...]:
    return tuple(slice(max(0, c - r), min(n, c + r + 1)) for c, r, n in zip(centre, radius_vox, shape, strict=True))


def _flat(mask: np.ndarray, box: tuple[slice, ...], shape) -> np.ndarray:
    idx = np.nonzero(mask)
    return np.ravel_multi_index(tuple(i + b.start for i, b in zip(idx, box, strict=True)), shape)


def _ml(n: int, spacing) -> float:
    return n * float(np.prod(spacing)) / 1000.0


SMOOTH_MM = 0.0  # bench/benchmarks/add_lesion_bench.py: 0 (the median alone) outlines best


def _smooth(hu: np.ndarray, spacing) -> np.ndarray:
    """The CT median-filtered (3 x 3 x 3), then Gaussian-smoothed over ``SMOOTH_MM`` when set: noise
    does not fray the outline. One slice per call: scipy holds the GIL while it filters, and the
    GUI thread must not wait for a whole box (a 40 mm box of a 0.7 mm CT is 0.7 M voxels)."""
    h = hu.astype(np.float32)
    out = np.empty_like(h)
    nz = h.shape[0]
    for k in range(nz):
        lo, hi = max(0, k - 1), min(nz, k + 2)
        out[k] = ndimage.median_filter(h[lo:hi], size=3, mode="nearest")[k - lo]
    return ndimage.gaussian_filter(out, [SMOOTH_MM / float(s) for s in spacing]) if SMOOTH_MM else out


def component_at(mask: np.ndarray, seed, scope: FixScope = "3d") -> np.ndarray:
    """The connected component of boolean ``mask`` holding ``seed`` (26-connected in 3D, 8-connected
    on the seed's slice for ``scope="slice"``), as flat indices into ``mask``; empty when the seed
    is not in ``mask``."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: expected one of {SCOPES}")
    z, y, x = seed
    if not mask[z, y, x]:
        return np.zeros(0, np.int64)
    if scope == "slice":
        lab, _ = ndimage.label(mask[z], structure=np.ones((3, 3)))
        ys, xs = np.nonzero(lab == lab[y, x])
        return np.ravel_multi_index((np.full(len(ys), z), ys, xs), mask.shape)
    box = crop_box(mask)
    assert box is not None, "the mask holds the clicked voxel"
    lab, _ = ndimage.label(mask[box], structure=np.ones((3, 3, 3)))
    comp = lab == lab[z - box[0].start, y - box[1].start, x - box[2].start]
    return _flat(comp, box, mask.shape)


FAT_HU = -40.0  # below: fat or air next to the liver, never tumour tissue (necrosis stays above ~0 HU)
# |HU - lesion| < BAND * |liver - lesion|; None: one-sided (all on the lesion's side of the midpoint,
# above FAT_HU). bench/benchmarks/add_lesion_bench.py: 0.5 outlines best (mean Dice 0.854 against 0.837).
BAND: float | None = 0.5


def _lesion_side(h: np.ndarray, m: float, L: float) -> np.ndarray:
    """Voxels nearer the lesion's HU ``m`` than the liver's ``L`` and not past the lesion either
    (fat, air); or, with ``BAND`` None, all on the lesion's side of the midpoint above ``FAT_HU``."""
    cut = (m + L) / 2
    if BAND is not None:
        return np.abs(h - m) < BAND * abs(L - m)
    return ((h < cut) & (h > FAT_HU)) if m < L else (h > cut)


def add_lesion(hu: np.ndarray, label: np.ndarray, seed, spacing, max_radius_mm: float = 40.0,
               seed_radius_mm: float = 3.0) -> Fix:
    """A missed lesion grown in 3D from a click inside it (see the module docstring)."""
    z, y, x = _seed(label, seed)
    if label[z, y, x] == TUMOUR:
        raise FixError("there is a lesion here already: use Grow to extend it")
    if label[z, y, x] != LIVER:
        raise FixError(f"the click ({z}, {y}, {x}) is outside the liver: click inside a missed tumour in the liver")
    sp = np.asarray(spacing, float)
    box = _box(label.shape, (z, y, x), np.maximum(1, np.round(max_radius_mm / sp)).astype(int))
    lab = label[box]
    h = _smooth(hu[box], sp)
    c = (z - box[0].start, y - box[1].start, x - box[2].start)
    grid = np.ogrid[tuple(slice(0, n) for n in lab.shape)]
    d2 = sum(((g - ci) * s) ** 2 for g, ci, s in zip(grid, c, sp, strict=True))
    liver = lab == LIVER
    ball = (d2 <= max(seed_radius_mm, float(sp.max())) ** 2) & liver
    rest = liver & (d2 > (2 * seed_radius_mm) ** 2)
    if rest.sum() < 50:
        raise FixError("too little liver around the click to tell the lesion from it")
    m, L = float(np.median(h[ball])), float(np.median(h[rest]))
    if abs(m - L) < 10:
        raise FixError(f"the clicked tissue ({m:.0f} HU) looks like the liver around it ({L:.0f} HU): "
                       "click inside the lesion, or paint it with the tumour brush")
    inside = _lesion_side(h, m, L)
    allowed = ndimage.binary_dilation(lab > 0, iterations=2)
    region = inside & allowed & (d2 <= max_radius_mm ** 2)
    region = ndimage.binary_opening(region, structure=ndimage.generate_binary_structure(3, 1))
    raw = hu[box].astype(np.float32)
    rim = ndimage.binary_dilation(region) & allowed & _lesion_side(raw, m, L)
    region |= rim  # the voxel the smoothing and the opening took off the outline, from the raw CT
    region[c] = region[c] or inside[c]
    comp = component_at(region, c)
    if not len(comp):
        raise FixError("nothing like the clicked tissue around the click")
    mask: np.ndarray = np.zeros(lab.shape, bool)
    mask.reshape(-1)[comp] = True
    for k in range(mask.shape[0]):  # necrotic or calcified cores: fill each slice's holes
        if mask[k].any():
            mask[k] = ndimage.binary_fill_holes(mask[k])
    mask &= lab != TUMOUR
    flat = _flat(mask, box, label.shape)
    return Fix(flat, TUMOUR, f"lesion of {_ml(len(flat), spacing):.2f} mL added")


def _lesion(label: np.ndarray, seed) -> np.ndarray:
    z, y, x = _seed(label, seed)
    if label[z, y, x] != TUMOUR:
        raise FixError(f"no lesion at ({z}, {y}, {x}): click inside a lesion")
    return component_at(label == TUMOUR, (z, y, x))


def grow_lesion(hu: np.ndarray, label: np.ndarray, seed, spacing, step_mm: float = 3.0) -> Fix:
    """Extend the lesion under the click by up to ``step_mm`` into the liver around it, where the CT
    is closer to the lesion's HU than to the liver's (each click grows it further)."""
    comp = _lesion(label, seed)
    idx = np.unravel_index(comp, label.shape)
    sp = np.asarray(spacing, float)
    pad = np.maximum(1, np.ceil(step_mm / sp)).astype(int) + 2
    box = tuple(slice(max(0, int(i.min()) - p), min(n, int(i.max()) + p + 1))
                for i, p, n in zip(idx, pad, label.shape, strict=True))
    lab = label[box]
    cur = np.zeros(lab.shape, bool)
    cur[tuple(i - b.start for i, b in zip(idx, box, strict=True))] = True
    h = _smooth(hu[box], sp)
    dist = ndimage.distance_transform_edt(~cur, sampling=sp)
    ring = (dist > 0) & (dist <= step_mm) & (lab == LIVER)
    liver = (lab == LIVER) & ~ring
    if not liver.any():
        liver = lab == LIVER
    m, L = float(np.median(h[cur])), float(np.median(h[liver])) if liver.any() else float("nan")
    take = ring & (np.abs(h - m) < np.abs(h - L)) if np.isfinite(L) else ring
    joined, _ = ndimage.label(cur | take, structure=np.ones((3, 3, 3)))
    take &= np.isin(joined, np.unique(joined[cur]))  # only what touches the lesion
    flat = _flat(take, box, label.shape)
    if not len(flat):
        raise FixError("nothing around the lesion looks like it: it was not grown")
    return Fix(flat, TUMOUR, f"lesion grown by {_ml(len(flat), spacing):.2f} mL")


def shrink_lesion(label: np.ndarray, seed, spacing, step_mm: float | None = None) -> Fix:
    """Peel ``step_mm`` (default: one in-plane voxel) off the lesion under the click; the peeled
    voxels become liver. A lesion thinner than that goes altogether."""
    comp = _lesion(label, seed)
    sp = np.asarray(spacing, float)
    step = float(step_mm) if step_mm else float(max(sp[1:]))
    idx = np.unravel_index(comp, label.shape)
    box = tuple(slice(max(0, int(i.min()) - 1), min(n, int(i.max()) + 2))
                for i, n in zip(idx, label.shape, strict=True))
    cur = np.zeros(label[box].shape, bool)
    cur[tuple(i - b.start for i, b in zip(idx, box, strict=True))] = True
    depth = ndimage.distance_transform_edt(cur, sampling=sp)
    flat = _flat(cur & (depth <= step), box, label.shape)
    return Fix(flat, LIVER, f"lesion shrunk by {_ml(len(flat), spacing):.2f} mL")


def remove_region(label: np.ndarray, seed, spacing, scope: FixScope = "3d") -> Fix:
    """Remove the connected region under the click: a lesion becomes liver; a liver region (with the
    lesions in it) becomes background, on the click's slice or in 3D. In 3D the main liver (the
    largest region) is refused: that is the eraser's job."""
    z, y, x = _seed(label, seed)
    v = int(label[z, y, x])
    if v == 0:
        raise FixError(f"nothing to remove at ({z}, {y}, {x}): click on a liver or tumour region")
    if v == TUMOUR:
        flat = component_at(label == TUMOUR, (z, y, x), scope)
        return Fix(flat, LIVER, f"lesion region of {_ml(len(flat), spacing):.2f} mL removed")
    flat = component_at(label > 0, (z, y, x), scope)
    if scope == "3d":
        fg = label > 0
        lab, _ = ndimage.label(fg[crop_box(fg)], structure=np.ones((3, 3, 3)))
        if len(flat) >= int(np.bincount(lab.reshape(-1))[1:].max()):
            raise FixError("this is the main liver: remove it slice by slice (the slice scope) or with the eraser")
    return Fix(flat, 0, f"region of {_ml(len(flat), spacing):.2f} mL removed ({scope})")
