"""Segmentation metrics in numpy: the reference implementation for the project.

Per case and in 3D: masks are boolean arrays of the same shape ([Z, Y, X] for a
case). Keras metrics in :mod:`core.model.losses` are tested against these.
"""

from __future__ import annotations

import numpy as np


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
