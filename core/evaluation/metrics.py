"""Segmentation metrics in numpy: the reference implementation for the project.

Per case and in 3D: masks are boolean arrays of the same shape ([Z, Y, X] for a
case). Keras metrics in :mod:`core.model.losses` are tested against these.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ..transforms.masks import crop_box


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a).astype(bool), np.asarray(b).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return a, b


def dice(pred, truth, empty: float = 1.0) -> float:
    """Dice coefficient 2|P∩T| / (|P|+|T|); ``empty`` when both masks are empty."""
    p, t = _pair(pred, truth)
    denom = int(p.sum()) + int(t.sum())
    return empty if denom == 0 else 2.0 * int(np.logical_and(p, t).sum()) / denom


def jaccard(pred, truth, empty: float = 1.0) -> float:
    """Jaccard index (IoU) |P∩T| / |P∪T|; ``empty`` when both masks are empty."""
    p, t = _pair(pred, truth)
    union = int(np.logical_or(p, t).sum())
    return empty if union == 0 else int(np.logical_and(p, t).sum()) / union


def volume_ml(mask, spacing) -> float:
    """Volume of a mask in mL given (z, y, x) spacing in mm."""
    return float(np.count_nonzero(mask)) * float(np.prod(spacing)) / 1000.0


def volume_overlap_error(pred, truth) -> float:
    """VOE = 1 - Jaccard (0 is perfect)."""
    return 1.0 - jaccard(pred, truth)


def relative_volume_difference(pred, truth) -> float:
    """RVD = (|P| - |T|) / |T| (signed; NaN when the truth is empty)."""
    p, t = _pair(pred, truth)
    nt = int(t.sum())
    return float("nan") if nt == 0 else (int(p.sum()) - nt) / nt


def precision(pred, truth) -> float:
    p, t = _pair(pred, truth)
    n = int(p.sum())
    return float("nan") if n == 0 else int(np.logical_and(p, t).sum()) / n


def recall(pred, truth) -> float:
    p, t = _pair(pred, truth)
    n = int(t.sum())
    return float("nan") if n == 0 else int(np.logical_and(p, t).sum()) / n


def _surface(mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        return mask
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1),
                                          border_value=0)


def surface_distances(pred, truth, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of ``pred`` to ``truth``'s surface, and back.

    Computed on the masks' bounding box (plus one voxel), with the voxel spacing.
    """
    p, t = _pair(pred, truth)
    both = p | t
    if not p.any() or not t.any():
        return np.zeros(0), np.zeros(0)
    box = crop_box(both, pad=1)
    p, t = p[box], t[box]
    sp, st = _surface(p), _surface(t)
    dt_t = ndimage.distance_transform_edt(~st, sampling=spacing)
    dt_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return dt_t[sp], dt_p[st]


def _assd(a: np.ndarray, b: np.ndarray) -> float:
    return float("nan") if a.size == 0 else float((a.sum() + b.sum()) / (a.size + b.size))


def _mssd(a: np.ndarray, b: np.ndarray) -> float:
    return float("nan") if a.size == 0 else float(max(a.max(), b.max()))


def assd(pred, truth, spacing) -> float:
    """Average symmetric surface distance in mm (NaN when either mask is empty)."""
    return _assd(*surface_distances(pred, truth, spacing))


def mssd(pred, truth, spacing) -> float:
    """Maximum symmetric surface distance (Hausdorff) in mm (NaN when either mask is empty)."""
    return _mssd(*surface_distances(pred, truth, spacing))


def case_metrics(pred, truth, spacing) -> dict:
    """All 3D overlap and distance metrics of one structure in one case (the surface distances,
    the costly part, computed once for both ASSD and MSSD)."""
    a, b = surface_distances(pred, truth, spacing)
    return {
        "dice": dice(pred, truth), "jaccard": jaccard(pred, truth), "voe": volume_overlap_error(pred, truth),
        "rvd": relative_volume_difference(pred, truth), "assd_mm": _assd(a, b),
        "mssd_mm": _mssd(a, b), "precision": precision(pred, truth), "recall": recall(pred, truth),
        "volume_ml": volume_ml(pred, spacing), "true_volume_ml": volume_ml(truth, spacing),
    }


def confusion(pred, truth) -> dict:
    """Pixel confusion matrix counts."""
    p, t = _pair(pred, truth)
    tp = int(np.logical_and(p, t).sum())
    fp = int(np.logical_and(p, ~t).sum())
    fn = int(np.logical_and(~p, t).sum())
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(p.size - tp - fp - fn)}


def notebook_metrics(pred, truth) -> dict:
    """The notebooks' per-slice metrics, averaged over slices [Z, Y, X] (Dice/IoU of empty slices count 1).

    Returns mean per-slice Dice, pixel accuracy, IoU, true-positive rate, and the summed confusion matrix.
    """
    p, t = _pair(pred, truth)
    d = [dice(p[z], t[z]) for z in range(p.shape[0])]
    j = [jaccard(p[z], t[z]) for z in range(p.shape[0])]
    tpr = [r for r in (recall(p[z], t[z]) for z in range(p.shape[0])) if not np.isnan(r)]
    cm = confusion(p, t)
    return {"slice_dice": float(np.mean(d)), "pixel_accuracy": (cm["tp"] + cm["tn"]) / p.size,
            "slice_iou": float(np.mean(j)), "tpr": float(np.mean(tpr)) if tpr else float("nan"), "confusion": cm}


# -- lesions ----------------------------------------------------------------------------------

def _longest_axial_diameter(coords_yx: np.ndarray, spacing_yx) -> float:
    """Largest in-plane distance (mm) between two pixels of one slice of a lesion."""
    if len(coords_yx) < 2:
        return float(max(spacing_yx)) if len(coords_yx) else 0.0
    # The farthest pair are convex-hull vertices, and each of those is the leftmost or rightmost
    # pixel of its row: keep those (at most 2 per row), exact and without scipy.spatial.
    yx = np.asarray(coords_yx)
    order = np.lexsort((yx[:, 1], yx[:, 0]))
    y = yx[order, 0]
    first = np.flatnonzero(np.r_[True, y[1:] != y[:-1]])
    last = np.r_[first[1:] - 1, len(y) - 1]
    pts = yx[order[np.unique(np.r_[first, last])]] * np.asarray(spacing_yx, float)
    d2 = (pts ** 2).sum(1)
    d = np.sqrt(np.maximum(d2[:, None] + d2[None, :] - 2 * pts @ pts.T, 0))
    return float(d.max() + min(spacing_yx))  # pixel centres to pixel edges


def lesion_components(mask, spacing, hu: np.ndarray | None = None) -> tuple[list[dict], np.ndarray]:
    """Connected tumour components (26-connectivity), largest first, and the component label image.

    Each: id, voxels, volume_ml, slices (first, last), centroid (z, y, x voxels), anchor (the lesion's
    voxel nearest its centroid: a point inside it, which names the lesion across edits),
    longest_axial_diameter_mm, mean_hu (when ``hu`` is given).
    """
    m = np.asarray(mask).astype(bool)
    lab = np.zeros(m.shape, np.int32)
    box = crop_box(m)  # label and search the bounding box only: much faster on a whole CT
    objects = []
    if box is not None:
        sub, _ = ndimage.label(m[box], structure=np.ones((3, 3, 3)))
        lab[box] = sub
        objects = ndimage.find_objects(sub)
    out: list[dict[str, Any]] = []
    for k, sl in enumerate(objects, start=1):
        if sl is None or box is None:  # objects are found inside the box only
            continue
        comp = sub[sl] == k
        zz, yy, xx = np.nonzero(comp)
        zz, yy, xx = (zz + sl[0].start + box[0].start, yy + sl[1].start + box[1].start,
                      xx + sl[2].start + box[2].start)
        diam = 0.0
        for z in np.unique(zz):
            sel = zz == z
            diam = max(diam, _longest_axial_diameter(np.stack([yy[sel], xx[sel]], 1), spacing[1:]))
        c = (float(zz.mean()), float(yy.mean()), float(xx.mean()))
        near = int(np.argmin((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2))
        rec = {"voxels": int(len(zz)), "volume_ml": len(zz) * float(np.prod(spacing)) / 1000.0,
               "slices": [int(zz.min()), int(zz.max())], "centroid": list(c),
               "anchor": [int(zz[near]), int(yy[near]), int(xx[near])],
               "longest_axial_diameter_mm": diam}
        if hu is not None:
            rec["mean_hu"] = float(np.asarray(hu)[zz, yy, xx].mean())
        rec["_label"] = k
        out.append(rec)
    out.sort(key=lambda r: -r["voxels"])
    for i, r in enumerate(out, start=1):
        r["id"] = i
    return out, lab


def lesion_detection(pred, truth, spacing, min_dice: float = 0.2) -> dict:
    """Lesion-wise detection: a true lesion is hit when a predicted component overlaps it
    with Dice >= ``min_dice`` or has its centroid inside it.

    Returns true/predicted lesion counts, hits, recall, false positives (predicted
    components matching no true lesion).
    """
    tl, tlab = lesion_components(truth, spacing)
    pl, plab = lesion_components(pred, spacing)
    matched_pred = set()
    hits = 0
    for t in tl:
        tmask = tlab == t["_label"]
        hit = False
        for p in pl:
            pmask = plab == p["_label"]
            inter = int(np.logical_and(tmask, pmask).sum())
            if inter == 0:
                c = np.round(p["centroid"]).astype(int)
                if not tmask[tuple(c)]:
                    continue
            d = 2 * inter / (t["voxels"] + p["voxels"])
            c = np.round(p["centroid"]).astype(int)
            if d >= min_dice or tmask[tuple(c)]:
                hit = True
                matched_pred.add(p["_label"])
        hits += hit
    fp = sum(1 for p in pl if p["_label"] not in matched_pred)
    return {"true_lesions": len(tl), "predicted_lesions": len(pl), "hits": hits,
            "recall": hits / len(tl) if tl else float("nan"), "false_positives": fp}


def lesions(mask, spacing, hu: np.ndarray | None = None) -> list[dict]:
    """Connected tumour components (26-connectivity), largest first.

    Each: id, voxels, volume_ml, slices [first, last], centroid (z, y, x voxels), anchor (a voxel
    inside, nearest the centroid), longest_axial_diameter_mm, and mean_hu when ``hu`` is given.
    """
    recs, _ = lesion_components(mask, spacing, hu)
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in recs]
