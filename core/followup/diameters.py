"""Each lesion's RECIST measurements: volume, longest axial diameter, the perpendicular diameter,
and the viable (arterially enhancing) diameter of mRECIST.

Why here and not in :mod:`core.evaluation.metrics`: response criteria need more than the lesion
table does: the long axis itself (its slice and ends, for the key images), the longest diameter
perpendicular to it on that slice, and the enhancing part of the lesion.

Conventions (the same as :func:`core.evaluation.metrics.lesion_components`, so the lesion ids and
long diameters agree with the lesion table):

* lesions are the 26-connected tumour components, largest (voxels) first, numbered from 1;
* the longest axial diameter is the largest distance between two pixels of the lesion in one axial
  slice, pixel centre to centre plus one pixel (a pixel's edges, not its centre, bound the lesion);
  RECIST 1.1 measures the longest diameter in the plane of measurement (axial for CT);
* the perpendicular diameter is, on that slice, the longest chord of the lesion perpendicular to the
  long axis (the pixels grouped in one-pixel strips across the axis; the strip's extent plus a pixel);
* the viable diameter (mRECIST; Lencioni & Llovet, Semin Liver Dis 2010) is measured only on an
  arterial-phase series: see :func:`viable_mask` for the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..evaluation.metrics import lesion_components
from ..runtime.labels import LIVER, TUMOUR

ENHANCE_HU = 25.0  # an enhancing voxel is this much brighter than the surrounding liver parenchyma
LIPIODOL_HU = 300.0  # above: lipiodol (after chemo-embolisation) or calcification, not viable tumour
RING_MM = (3.0, 15.0)  # the surrounding parenchyma: liver voxels this far from the lesion
MIN_VIABLE_MM2 = 10.0  # enhancing islands smaller than this on a slice are noise, not viable tumour


@dataclass(frozen=True)
class LesionMeasure:
    """One lesion at one time point.

    Attributes:
        id: its number (largest first, as in the lesion table).
        voxels, volume_ml: its size.
        centroid: (z, y, x) voxels.
        centroid_lps: (x, y, z) mm in the patient.
        slices: (first, last) axial slice.
        longest_mm: the longest axial diameter.
        perpendicular_mm: the longest diameter perpendicular to it on the same slice.
        axis_slice: the slice of the long axis; axis_ends: its two ends ((y, x), (y, x)) in voxels.
        mean_hu: its mean HU.
        viable_mm: the longest axial diameter of its enhancing part (mRECIST); None when not measured
            (not an arterial-phase series); 0.0 when nothing enhances.
    """

    id: int
    voxels: int
    volume_ml: float
    centroid: tuple[float, float, float]
    centroid_lps: tuple[float, float, float]
    slices: tuple[int, int]
    longest_mm: float
    perpendicular_mm: float
    axis_slice: int
    axis_ends: tuple[tuple[int, int], tuple[int, int]]
    mean_hu: float
    viable_mm: float | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "voxels": self.voxels, "volume_ml": round(self.volume_ml, 4),
                "centroid_voxel_zyx": [round(c, 2) for c in self.centroid],
                "centroid_lps_mm": [round(c, 2) for c in self.centroid_lps], "slices": list(self.slices),
                "longest_diameter_mm": round(self.longest_mm, 2),
                "perpendicular_diameter_mm": round(self.perpendicular_mm, 2), "axis_slice": self.axis_slice,
                "axis_ends_yx": [list(e) for e in self.axis_ends], "mean_hu": round(self.mean_hu, 1),
                "viable_diameter_mm": None if self.viable_mm is None else round(self.viable_mm, 2)}


def _hull_candidates(yx: np.ndarray) -> np.ndarray:
    """Indices of each row's leftmost and rightmost pixel: the farthest pair is among them."""
    order = np.lexsort((yx[:, 1], yx[:, 0]))
    y = yx[order, 0]
    first = np.flatnonzero(np.r_[True, y[1:] != y[:-1]])
    last = np.r_[first[1:] - 1, len(y) - 1]
    return order[np.unique(np.r_[first, last])]


def axial_diameters(yx, spacing_yx) -> tuple[float, float, tuple[tuple[int, int], tuple[int, int]]]:
    """(longest, perpendicular, ends of the long axis) of the pixels ``yx`` (N, 2) of one slice."""
    yx = np.asarray(yx, int).reshape(-1, 2)
    sp = np.asarray(spacing_yx, float)
    px = float(sp.min())
    if len(yx) == 0:
        return 0.0, 0.0, ((0, 0), (0, 0))
    if len(yx) == 1:
        e = (int(yx[0, 0]), int(yx[0, 1]))
        return px, px, (e, e)
    cand = _hull_candidates(yx)
    pts = yx[cand] * sp
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    longest = float(np.sqrt(d2[i, j]))
    u = (pts[j] - pts[i]) / longest
    v = np.array([-u[1], u[0]])
    mm = yx * sp
    s, t = mm @ u, mm @ v
    strip = np.round(s / px).astype(np.int64)
    order = np.argsort(strip, kind="stable")
    strip, t = strip[order], t[order]
    starts = np.flatnonzero(np.r_[True, strip[1:] != strip[:-1]])
    extent = np.maximum.reduceat(t, starts) - np.minimum.reduceat(t, starts)
    ends = ((int(yx[cand[i], 0]), int(yx[cand[i], 1])), (int(yx[cand[j], 0]), int(yx[cand[j], 1])))
    return longest + px, float(extent.max()) + px, ends


def viable_mask(hu: np.ndarray, lesion: np.ndarray, parenchyma_hu: float) -> np.ndarray:
    """The enhancing (viable) part of one lesion on an arterial-phase series (the mRECIST rule here).

    A lesion voxel is viable when its HU, median-filtered over 3 x 3 pixels in its slice (CT noise
    would otherwise speckle the mask), is at least :data:`ENHANCE_HU` above ``parenchyma_hu`` (the
    median of the liver parenchyma around the lesion) and its own HU is at most :data:`LIPIODOL_HU`
    (lipiodol and calcification are dense, not enhancing). Necrosis does not enhance and so is never
    viable. Enhancing islands under :data:`MIN_VIABLE_MM2` on a slice are dropped as noise.
    ``hu`` and ``lesion`` are a box [Z, Y, X] around the lesion.
    """
    smooth = ndimage.median_filter(hu.astype(np.float32), size=(1, 3, 3), mode="nearest")
    return lesion & (smooth >= parenchyma_hu + ENHANCE_HU) & (hu <= LIPIODOL_HU)


def viable_diameter(hu: np.ndarray, lesion: np.ndarray, parenchyma_hu: float, spacing) -> float:
    """The longest axial diameter of a viable island (2D, 8-connected, on any slice) of the lesion:
    mRECIST's viable diameter leaves out necrosis between enhancing parts, so each island is
    measured on its own. 0.0 when nothing enhances."""
    m = viable_mask(hu, lesion, parenchyma_hu)
    min_px = MIN_VIABLE_MM2 / (spacing[1] * spacing[2])
    best = 0.0
    for z in np.flatnonzero(m.any(axis=(1, 2))):
        lab, n = ndimage.label(m[z], structure=np.ones((3, 3)))
        for k in range(1, n + 1):
            yx = np.argwhere(lab == k)
            if len(yx) >= min_px:
                best = max(best, axial_diameters(yx, spacing[1:])[0])
    return best


def _parenchyma(hu_box, liver_box, lesion_box, spacing, fallback: float) -> float:
    """The median HU of liver parenchyma (no tumour, nothing dense) in a ring around the lesion."""
    dist = ndimage.distance_transform_edt(~lesion_box, sampling=spacing)
    ring = liver_box & (dist >= RING_MM[0]) & (dist <= RING_MM[1]) & (hu_box < LIPIODOL_HU)
    return float(np.median(hu_box[ring])) if ring.sum() >= 20 else fallback


def measure_lesions(hu: np.ndarray, label: np.ndarray, spacing, grid=None, viable: bool = False
                    ) -> tuple[list[LesionMeasure], np.ndarray]:
    """The lesions of ``label`` (tumour code) with their measurements, and the component label
    image (component k is lesion ``id`` k). ``grid`` (:class:`core.followup.registration.Grid`) gives
    the LPS centroids (voxel units scaled by the spacing without one). ``viable``: also measure the
    viable diameters (an arterial-phase series)."""
    recs, comp = lesion_components(label == TUMOUR, spacing, hu)
    liver = label == LIVER
    fallback = float(np.median(hu[liver])) if liver.any() else 0.0
    ring_px = [int(np.ceil(RING_MM[1] / s)) + 1 for s in spacing]
    out = []
    for r in recs:
        k = r["_label"]
        box = _box(comp, r, ring_px)
        lesion_box = comp[box] == k
        zz, yy, xx = np.nonzero(lesion_box)
        zz, yy, xx = zz + box[0].start, yy + box[1].start, xx + box[2].start
        best = (-1.0, 0.0, 0, ((0, 0), (0, 0)))
        for z in np.unique(zz):
            sel = zz == z
            lg, pp, ends = axial_diameters(np.stack([yy[sel], xx[sel]], 1), spacing[1:])
            if lg > best[0]:
                best = (lg, pp, int(z), ends)
        vmm = None
        if viable:
            par = _parenchyma(hu[box], liver[box], lesion_box, spacing, fallback)
            vmm = viable_diameter(hu[box], lesion_box, par, spacing)
        cz, cy, cx = (float(v) for v in r["centroid"])
        c = (cz, cy, cx)
        at = grid.to_lps(c)[0] if grid is not None else np.asarray(c)[::-1] * spacing[::-1]
        lx, ly, lz = (float(v) for v in at)
        lps = (lx, ly, lz)
        out.append(LesionMeasure(r["id"], r["voxels"], r["volume_ml"], c, lps, tuple(r["slices"]), best[0], best[1],
                                 best[2], best[3], float(r.get("mean_hu", float("nan"))), vmm))
    ids = np.zeros(max([r["_label"] for r in recs], default=0) + 1, np.int32)
    for r in recs:
        ids[r["_label"]] = r["id"]
    return out, ids[comp]


def _box(comp: np.ndarray, rec: dict, pad) -> tuple[slice, slice, slice]:
    """The lesion's bounding box grown by ``pad`` voxels (z, y, x) in-plane and one slice in z."""
    z0, z1 = rec["slices"]
    zs = slice(max(0, z0 - 1), min(comp.shape[0], z1 + 2))
    m = (comp[z0:z1 + 1] == rec["_label"]).any(axis=0)
    ys, xs = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    return (zs, slice(max(0, ys[0] - pad[1]), min(comp.shape[1], ys[-1] + 1 + pad[1])),
            slice(max(0, xs[0] - pad[2]), min(comp.shape[2], xs[-1] + 1 + pad[2])))
