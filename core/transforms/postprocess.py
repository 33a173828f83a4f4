"""Named post-processing steps of the cascade (as MONAI's ``KeepLargestConnectedComponent``,
``FillHoles``, ``RemoveSmallObjects``), each on the mask's bounding box and in chunks of slices.

``scipy.ndimage``'s labelling and morphology release the GIL, but their temporaries scale with the
volume; working on the bounding box and in chunks bounds memory and keeps a GUI running this in a
worker thread responsive (see :mod:`core.masks`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .masks import CHUNK_Z, component_sizes, crop_box


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 3D connected component (6-connectivity) of a boolean mask."""
    box = crop_box(mask)
    out = np.zeros(mask.shape, bool)
    if box is None:
        return out
    lab, n = ndimage.label(mask[box])
    if n <= 1:
        out[box] = lab > 0
        return out
    sizes = component_sizes(lab, n)
    sizes[0] = 0
    out[box] = lab == int(np.argmax(sizes))
    return out


# In-plane connectivity only: each axial slice's holes are filled, which includes every 3D
# cavity (a cavity enclosed in 3D is enclosed in each of its slices) and holes open along z.
_SLICE_STRUCTURE = np.zeros((3, 3, 3), bool)
_SLICE_STRUCTURE[1] = ndimage.generate_binary_structure(2, 1)
FILL_CHUNK_Z = 32


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a [Z, Y, X] mask in every axial slice (bounding box, chunks of slices).

    As ``ndimage.binary_fill_holes`` slice by slice (4-connected background), but by labelling:
    the background's in-plane components that do not touch the box's in-plane border are holes.
    One labelling pass instead of scipy's iterated erosions (~10x faster on a liver).
    """
    out = mask.astype(bool)
    box = crop_box(out)
    if box is None:
        return out
    sub = out[box]
    for z0 in range(0, sub.shape[0], FILL_CHUNK_Z):
        part = sub[z0:z0 + FILL_CHUNK_Z]
        lab, n = ndimage.label(~part, structure=_SLICE_STRUCTURE)
        outside = np.zeros(n + 1, bool)
        outside[0] = True  # the mask itself
        for edge in (lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]):
            outside[edge] = True
        part |= ~outside[lab]
    return out


def dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """3D binary dilation (6-connectivity), on the bounding box, in chunks of slices with a halo."""
    out = np.zeros(mask.shape, bool)
    box = crop_box(mask, pad=iterations)
    if box is None:
        return out
    src = mask[box]
    dst = out[box]
    h = iterations
    for z0 in range(0, src.shape[0], CHUNK_Z):
        lo, hi = max(0, z0 - h), min(src.shape[0], z0 + CHUNK_Z + h)
        d = ndimage.binary_dilation(src[lo:hi], iterations=iterations)
        dst[z0:z0 + CHUNK_Z] = d[z0 - lo:z0 - lo + min(CHUNK_Z, src.shape[0] - z0)]
    return out


def remove_small(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """Drop 3D connected components smaller than ``min_voxels``."""
    if min_voxels <= 1:
        return mask
    box = crop_box(mask)
    if box is None:
        return mask
    lab, n = ndimage.label(mask[box])
    keep = component_sizes(lab, n) >= min_voxels
    keep[0] = False
    out = np.zeros(mask.shape, bool)
    out[box] = keep[lab]
    return out


_Z_STRUCTURE = np.zeros((3, 3, 3), bool)
_Z_STRUCTURE[:, 1, 1] = True


def keep_inside(tumour: np.ndarray, liver: np.ndarray, dilation: int = 2, inplane: int = 0,
                along_z: int = 0) -> np.ndarray:
    """Tumour voxels inside the liver dilated by ``dilation`` voxels (3D, 6-connected), or within a
    cylinder-like margin of it: ``inplane`` 4-connected steps in the slice, then ``along_z`` slices
    (the rim of a lesion on the liver's edge that the liver stage left out).

    Exactly ``tumour & (dilate(liver, dilation) | dilate_z(dilate_inplane(liver, inplane), along_z))``,
    but the liver is dilated only around the tumour voxels that lie outside it (usually few): a liver
    voxel farther than the margin from that box cannot reach into it.
    """
    out = tumour & liver
    outside = tumour & ~liver
    pad = max(dilation, inplane, along_z)
    box = crop_box(outside, pad=pad)
    if box is None:
        return out
    allowed = dilate(liver[box], iterations=dilation)
    if inplane or along_z:
        wide = liver[box]
        if inplane:
            wide = ndimage.binary_dilation(wide, _SLICE_STRUCTURE, iterations=inplane)
        if along_z:
            wide = ndimage.binary_dilation(wide, _Z_STRUCTURE, iterations=along_z)
        allowed |= wide
    out[box] |= outside[box] & allowed
    return out


def clean_liver(liver: np.ndarray) -> np.ndarray:
    """The liver step: largest component, then holes filled (tumours inside become liver first)."""
    return fill_holes(largest_component(liver)) if liver.any() else liver


def clean_tumour(tumour: np.ndarray, liver: np.ndarray, min_voxels: int, margin: tuple[int, int] = (0, 0)
                 ) -> np.ndarray:
    """The tumour step: inside the (dilated) liver (:func:`keep_inside`; ``margin``: its ``inplane`` and
    ``along_z`` steps), components of at least ``min_voxels``."""
    return remove_small(keep_inside(tumour, liver, inplane=margin[0], along_z=margin[1]), min_voxels)


def drop_dark(mask: np.ndarray, hu: np.ndarray, min_mean_hu: float) -> np.ndarray:
    """Drop 3D components of ``mask`` whose mean HU (in ``hu``, same shape) is below ``min_mean_hu``:
    fat or air taken for tumour (liver tumours, necrotic ones included, average above 0 HU)."""
    box = crop_box(mask)
    if box is None:
        return mask
    lab, n = ndimage.label(mask[box])
    if n == 0:
        return mask
    means = np.asarray(ndimage.mean(hu[box].astype(np.float32), lab, np.arange(1, n + 1)))
    keep = np.concatenate([[False], means >= min_mean_hu])
    out = np.zeros(mask.shape, bool)
    out[box] = keep[lab]
    return out


def drop_outside(mask: np.ndarray, liver: np.ndarray, min_inside: float) -> np.ndarray:
    """Drop 3D components (26-connected) of ``mask`` with less than ``min_inside`` of their voxels in
    ``liver`` (same shape: the liver stage's own mask): rims along the liver's edge, mostly in the
    margin that :func:`keep_inside` allows for lesions on the rim. On thick slices these reach deeper
    than :func:`drop_shallow`'s threshold (docs/BENCHMARKS.md)."""
    if min_inside <= 0:
        return mask
    box = crop_box(mask)
    if box is None:
        return mask
    lab, n = ndimage.label(mask[box], structure=np.ones((3, 3, 3), bool))
    share = np.asarray(ndimage.mean(liver[box].astype(np.float32), lab, np.arange(1, n + 1)))
    keep = np.concatenate([[False], share >= min_inside])
    out = np.zeros(mask.shape, bool)
    out[box] = keep[lab]
    return out


def drop_shallow(mask: np.ndarray, liver: np.ndarray, spacing, min_depth_mm: float,
                 origin: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Drop 3D components (26-connected) of ``mask`` lying wholly within ``min_depth_mm`` of the
    liver's surface: thin rims of fat or partial volume along the liver's edge, not lesions.

    Depth is measured in the liver with its tumours (``liver | mask``), from a voxel's centre to the
    tissue's boundary, placed halfway between the last tissue voxel and the first outside one: the
    distance (mm, ``spacing``) to the nearest outside voxel, less half a voxel along that direction
    (:func:`surface_depth`). On 5 mm slices a voxel under an outside one lies 2.5 mm deep, not 5 mm;
    in-plane the half voxel is 0.3-0.4 mm. A component is kept when its deepest voxel lies at least
    ``min_depth_mm`` deep. ``mask`` may be a box of ``liver``'s grid starting at voxel ``origin``.
    Each component's depth is computed on its own box grown by ``min_depth_mm`` and a voxel: the
    decision is that of the whole volume (a voxel whose nearest outside voxel lies beyond the box is
    deeper than ``min_depth_mm`` both ways). Measured (docs/BENCHMARKS.md, ``bench/experiments/lesion_filter.py``).
    """
    if min_depth_mm <= 0:
        return mask
    box = crop_box(mask)  # label the components' box, not the whole (tumour) box
    if box is None:
        return mask
    if any(b.stop - b.start < n for b, n in zip(box, mask.shape, strict=True)):
        out = np.zeros(mask.shape, bool)
        out[box] = drop_shallow(mask[box], liver, spacing, min_depth_mm,
                                tuple(o + b.start for o, b in zip(origin, box, strict=True)))
        return out
    lab, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    grow = [int(np.ceil((min_depth_mm + max(spacing)) / float(s))) + 1 for s in spacing]
    out = mask.copy()
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        full = tuple(slice(max(0, s.start + o - g), min(n, s.stop + o + g))
                     for s, o, g, n in zip(sl, origin, grow, liver.shape, strict=True))
        src = tuple(slice(max(0, f.start - o), min(m, f.stop - o))
                    for f, o, m in zip(full, origin, mask.shape, strict=True))
        dst = tuple(slice(s.start + o - f.start, s.stop + o - f.start)
                    for s, o, f in zip(src, origin, full, strict=True))
        tissue = liver[full].astype(bool)
        tissue[dst] |= mask[src]
        if tissue.all():  # no outside voxel within reach: deep
            continue
        voxels = tuple(p + d.start for p, d in zip(np.nonzero(lab[src] == k), dst, strict=True))
        if surface_depth(tissue, spacing, voxels).max() < min_depth_mm:
            out[sl][lab[sl] == k] = False
    return out


def surface_depth(tissue: np.ndarray, spacing, voxels: tuple) -> np.ndarray:
    """Depth (mm) of ``voxels`` (index arrays) of boolean ``tissue`` below its boundary: the distance
    to the nearest voxel outside, less half a voxel along that direction (the boundary lies halfway
    between a tissue voxel and an outside one). ``tissue`` must hold an outside voxel."""
    sp = np.asarray(spacing, float)[:, None]
    _, idx = ndimage.distance_transform_edt(tissue, sampling=spacing, return_indices=True)
    d = (np.stack([i[voxels] for i in idx]) - np.stack(voxels)) * sp
    n = np.sqrt((d ** 2).sum(0))
    return n - 0.5 * (np.abs(d) * sp).sum(0) / np.maximum(n, 1e-12)
