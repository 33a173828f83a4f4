"""Mask geometry shared by training, inference and metrics: one bounding box, component sizes.

Everything here is careful about the GUI: a worker thread runs it beside the Qt event loop, so no
single numpy/scipy call may hold the GIL for long on a 500 x 512 x 512 study (``np.bincount``
does, for ~50 ms per 45 M voxels; it is counted in chunks of slices here).
"""

from __future__ import annotations

import numpy as np

# Slices per chunk where a whole-volume call would hold the GIL or allocate a large temporary.
CHUNK_Z = 8


def crop_box(mask: np.ndarray, pad: int = 0) -> tuple[slice, ...] | None:
    """Slices of a mask's bounding box (any number of dimensions) grown by ``pad`` voxels and
    clipped to the array; None when the mask is empty."""
    idx = [np.flatnonzero(mask.any(axis=tuple(j for j in range(mask.ndim) if j != i))) for i in range(mask.ndim)]
    if not len(idx[0]):
        return None
    return tuple(slice(max(0, ix[0] - pad), min(n, ix[-1] + 1 + pad)) for ix, n in zip(idx, mask.shape, strict=True))


def inplane_box(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of a [Z, Y, X] mask over all its slices, grown by ``margin`` pixels in-plane
    and clipped to the image; None when the mask is empty."""
    box = crop_box(mask)
    if box is None:
        return None
    h, w = mask.shape[1:]
    ys, xs = box[1], box[2]
    return (max(0, ys.start - margin), min(h, ys.stop + margin), max(0, xs.start - margin), min(w, xs.stop + margin))


def component_sizes(lab: np.ndarray, n: int, chunk_voxels: int = 1 << 21) -> np.ndarray:
    """Voxel count of each label 0..n in an integer label image, in chunks (``np.bincount``
    holds the GIL for the whole array)."""
    flat = lab.reshape(-1)
    sizes = np.zeros(n + 1, np.int64)
    for i in range(0, flat.size, chunk_voxels):
        sizes += np.bincount(flat[i:i + chunk_voxels], minlength=n + 1)
    return sizes
