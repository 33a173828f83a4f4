"""Cut neighbouring organs off the liver where the liver stage joined them to it by a thin bridge.

On CT unlike its training data the liver stage paints, beside the liver, the right kidney, the
duodenum or a bowel loop that touches it; the largest connected component keeps them, because they
are joined to the liver by a bridge a few voxels thick (HCC_006 portal-venous, held out: 245 mL of
kidney and bowel hanging on the liver's tip). An opening by reconstruction removes them:

1. open the mask with a ball of ``radius_mm`` (8 mm): bridges and parts thinner than 16 mm vanish;
2. the largest opened piece is the liver's bulk; the other opened pieces are what hung on it;
3. grow the bulk back: a voxel of the mask stays where it lies within ``reach_mm`` (17 mm) of the
   bulk and no nearer to another opened piece than to it.

The liver's own thin edges and tips lie within the reach of its bulk and stay; a kidney's far part
goes, and its near part goes where it is nearer to the kidney's own bulk.

Where the cut would remove more than ``max_cut`` of the mask, nothing is cut: a lobe joined by a
thin bridge (an atrophic segment, a thick-slice scan) would otherwise be lost, and a bridge kept
costs less than a lobe lost. On the held-out volumes measured (``bench/experiments/liver_bridges.py``)
the cut removed at most 11 % of a mask.

The cascade cuts its result (liver and tumours together): the liver stage's own mask has a hole or
a channel where a tumour is, and the liver inside a large tumour would be cut as if it hung on a
bridge. It works on a coarse grid (``grid_mm``, about 3 mm; one sample per block): about 0.1 s on an
abdomen on two cores.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..runtime.labels import LIVER, TUMOUR
from .masks import CHUNK_Z, component_sizes, crop_box
from .postprocess import largest_component

BRIDGE_RADIUS_MM = 8.0
BRIDGE_GRID_MM = 3.0
BRIDGE_REACH_MM = 17.0
BRIDGE_MAX_CUT = 0.2
CUT_TUMOUR_SHARE = 0.25


def _coarse(sub: np.ndarray, f: tuple[int, ...]) -> np.ndarray:
    """``sub`` sampled on a grid ``f`` times coarser (each coarse voxel is its block's centre voxel)."""
    idx = [np.minimum(np.arange(-(-n // k)) * k + k // 2, n - 1) for n, k in zip(sub.shape, f, strict=True)]
    return sub[np.ix_(*idx)]


def _within(mask: np.ndarray, radius_mm: float, spacing) -> np.ndarray:
    """Voxels within ``radius_mm`` of ``mask`` (a dilation by a ball, by the Euclidean distance map)."""
    return ndimage.distance_transform_edt(~mask, sampling=spacing) <= radius_mm


def _opening(mask: np.ndarray, radius_mm: float, spacing) -> np.ndarray:
    """Morphological opening by a ball of ``radius_mm`` (outside the array counts as background)."""
    pad = np.pad(mask, 1)
    inner = ndimage.distance_transform_edt(pad, sampling=spacing) > radius_mm
    return _within(inner, radius_mm, spacing)[1:-1, 1:-1, 1:-1]


def cut_bridges(mask: np.ndarray, spacing, radius_mm: float = BRIDGE_RADIUS_MM, grid_mm: float = BRIDGE_GRID_MM,
                reach_mm: float = BRIDGE_REACH_MM, max_cut: float = BRIDGE_MAX_CUT) -> np.ndarray:
    """``mask`` (one connected component, [Z, Y, X]) without what hangs on it by bridges thinner than
    ``2 * radius_mm``; ``mask`` itself (the same object) when nothing is cut or the cut would remove
    more than ``max_cut`` of it (see the module docstring)."""
    box = crop_box(mask)
    if box is None or radius_mm <= 0:
        return mask
    sub = mask[box].astype(bool, copy=False)
    f = tuple(max(1, int(round(grid_mm / float(s)))) for s in spacing)
    csp = tuple(float(s) * k for s, k in zip(spacing, f, strict=True))
    coarse = _coarse(sub, f)
    core = _opening(coarse, radius_mm, csp)
    if not core.any():
        return mask
    # grown back up to ``reach_mm``, each voxel to the nearest opened piece: a kidney's or bowel loop's own
    # bulk claims what lies nearer to it than to the liver's
    liver = largest_component(core)
    near = ndimage.distance_transform_edt(~liver, sampling=csp)
    keep = near <= reach_mm
    others = core & ~liver
    if others.any():
        keep &= near <= ndimage.distance_transform_edt(~others, sampling=csp)
    if not (coarse & ~keep).any():  # nothing to cut at the grid's scale: no full-resolution work
        return mask
    cut = np.zeros(sub.shape, bool)
    step = max(1, CHUNK_Z // f[0]) * f[0]
    for z0 in range(0, sub.shape[0], step):
        k = keep[z0 // f[0]:(z0 + step) // f[0] + 1].repeat(f[0], 0).repeat(f[1], 1).repeat(f[2], 2)
        part = sub[z0:z0 + step]
        cut[z0:z0 + step] = part & k[:part.shape[0], :part.shape[1], :part.shape[2]]
    cut = largest_component(cut)
    total = int(np.count_nonzero(sub))
    kept = int(np.count_nonzero(cut))
    if kept == total or total - kept > max_cut * total:
        return mask
    out = np.zeros(mask.shape, bool)
    out[box] = cut
    return out


def cut_label(label: np.ndarray, cut: np.ndarray, liver: np.ndarray, min_voxels: int,
              max_share: float = CUT_TUMOUR_SHARE) -> None:
    """In place: ``label`` (liver and tumours) without the voxels of ``cut``, and its tumours mended:

    * a tumour component with at least ``max_share`` of its voxels in ``cut`` is no tumour (it lies
      mostly in the organ cut off: a bowel loop's contrast, the kidney's pelvis), whole;
    * pieces of a tumour left under ``min_voxels`` by the cut go too.

    Tumour voxels that go become liver where ``liver`` is set, background elsewhere. A large tumour
    that only grazes what is cut keeps the rest of it.
    """
    tumours = label == TUMOUR
    hit = tumours & cut
    label[cut] = 0
    if not hit.any():
        return
    box = crop_box(tumours)
    assert box is not None
    lab, n = ndimage.label(tumours[box])
    total = component_sizes(lab, n)
    inside = np.bincount(lab[hit[box]], minlength=n + 1)
    bad = inside >= max_share * np.maximum(total, 1)
    bad[0] = False
    left = (label[box] == TUMOUR)
    drop = bad[lab] & left
    pieces, m = ndimage.label(left & ~drop)
    small = component_sizes(pieces, m) < min_voxels
    small[0] = False
    drop |= small[pieces]
    sub = label[box]
    sub[drop] = np.where(liver[box][drop], LIVER, 0)
