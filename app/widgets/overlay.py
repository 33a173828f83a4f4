"""How labels look over the CT: colours, the overlay's lookup table, reference outlines (numpy only)."""

from __future__ import annotations

import numpy as np

from core.runtime.labels import LIVER, TUMOUR

LIVER_RGB, TUMOUR_RGB = (0, 220, 0), (255, 40, 40)
REF_LIVER_RGB, REF_TUMOUR_RGB = (120, 255, 255), (255, 220, 0)
REF_LIVER_OUTLINE, REF_TUMOUR_OUTLINE = 3, 4  # overlay values beyond the label codes


def overlay_lut(liver_alpha: int, tumour_alpha: int) -> np.ndarray:
    """256-entry RGBA table: the label codes (liver green, tumour red) and the reference outlines."""
    lut = np.zeros((256, 4), dtype=np.ubyte)
    lut[LIVER] = (*LIVER_RGB, liver_alpha)
    lut[TUMOUR] = (*TUMOUR_RGB, tumour_alpha)
    lut[REF_LIVER_OUTLINE] = (*REF_LIVER_RGB, 255 if liver_alpha else 0)
    lut[REF_TUMOUR_OUTLINE] = (*REF_TUMOUR_RGB, 255 if tumour_alpha else 0)
    return lut


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a 2D mask (4-neighbourhood)."""
    m = mask.astype(bool)
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner
