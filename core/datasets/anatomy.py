"""Anatomy label maps: every structure an expert outlined, one code per voxel.

3D-IRCADb-01 ships, per patient, one mask series per structure (``MASKS_DICOM/<name>/``):
liver, liver tumours, cysts, vessels, bone, skin and, for some patients, kidneys,
spleen, lungs, gallbladder, stomach, pancreas, adrenals. The training label (0
background, 1 liver, 2 tumour; :mod:`core.datasets.dataset`) keeps only liver and tumour. The
anatomy map keeps them all, so that training CT can be rendered from a patient's
real anatomy when its CT is not available (:mod:`core.synthetic.synth_ct`), with real livers
next to their real neighbours.

Codes (``uint8``), painted in this order, later codes over earlier ones:

======  ===========  ==========================================================
code    name         IRCADb folder names
======  ===========  ==========================================================
0       OUTSIDE      (outside the skin mask, or unknown when there is none)
1       BODY         skin (the whole body inside the skin surface)
2       LIVER        liver
3       TUMOUR       livertumor, livertumor1, livertumor01, livertumors
4       CYST         liverkyst, livercyst, liverkyste
5       PORTAL       portalvein, portalvein1
6       VENOUS       venacava, venoussystem
7       ARTERY       artery
8       BONE         bone
9       KIDNEY       kidneys, leftkidney, rightkidney
10      SPLEEN       spleen
11      LUNG         lungs, leftlung, rightlung
12      GALLBLADDER  gallbladder
13      STOMACH      stomach
14      PANCREAS     pancreas
15      ADRENAL      left/right surrenalgland, surretumor; patient 7's ``tumor``
16      OTHER        anything else (biliary system, stones, metal, resection site)
======  ===========  ==========================================================

Vessels are painted over the liver (intrahepatic portal and hepatic veins look like
vessels, not parenchyma), but the training label's liver is the liver mask itself.
"""

from __future__ import annotations

import re

import numpy as np

OUTSIDE, BODY, LIVER, TUMOUR, CYST, PORTAL, VENOUS, ARTERY, BONE = range(9)
KIDNEY, SPLEEN, LUNG, GALLBLADDER, STOMACH, PANCREAS, ADRENAL, OTHER = range(9, 17)
N_CODES = 17
NAMES = ("outside", "body", "liver", "tumour", "cyst", "portal vein", "venous system", "artery", "bone",
         "kidney", "spleen", "lung", "gallbladder", "stomach", "pancreas", "adrenal", "other")

# Later entries are painted over earlier ones.
PAINT_ORDER = (BODY, LUNG, BONE, KIDNEY, SPLEEN, STOMACH, PANCREAS, GALLBLADDER, ADRENAL, OTHER, LIVER,
               VENOUS, ARTERY, PORTAL, CYST, TUMOUR)

_TUMOUR_RE = re.compile(r"^livertumou?rs?[\W_]*\d*([\W_]+\d+)*$", re.IGNORECASE)
_BY_NAME = {
    "skin": BODY, "liver": LIVER,
    "liverkyst": CYST, "livercyst": CYST, "liverkyste": CYST, "liverkysts": CYST, "livercysts": CYST,
    "portalvein": PORTAL, "portalvein1": PORTAL, "venacava": VENOUS, "venoussystem": VENOUS,
    "artery": ARTERY, "bone": BONE,
    "kidneys": KIDNEY, "leftkidney": KIDNEY, "rightkidney": KIDNEY, "spleen": SPLEEN,
    "lungs": LUNG, "leftlung": LUNG, "rightlung": LUNG, "gallbladder": GALLBLADDER, "stomach": STOMACH,
    "pancreas": PANCREAS, "leftsurrenalgland": ADRENAL, "rightsurrenalgland": ADRENAL,
    "leftsurretumor": ADRENAL, "rightsurretumor": ADRENAL, "surrenalgland": ADRENAL,
    # 3Dircadb1.7's "tumor" is an adrenal mass outside the liver (the dataset's README).
    "tumor": ADRENAL,
}


def structure_code(name: str) -> int:
    """The anatomy code of an IRCADb mask folder name (unknown names: ``OTHER``)."""
    n = name.strip().lower()
    if _TUMOUR_RE.match(n):
        return TUMOUR
    return _BY_NAME.get(n, OTHER)


def paint(masks: dict[int, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """One anatomy map from per-code boolean masks, painted in :data:`PAINT_ORDER`.

    Args:
        masks: code -> bool array of ``shape`` (several folders of one code already merged).
        shape: the volume's shape, [Z, Y, X].

    Returns:
        uint8 array of ``shape``; voxels in no mask are ``OUTSIDE`` (0).
    """
    out = np.zeros(shape, np.uint8)
    for code in PAINT_ORDER:
        m = masks.get(code)
        if m is not None:
            out[m] = code
    return out


def has_body(anatomy: np.ndarray) -> bool:
    """True when the map outlines the body (a skin mask): only then can CT be rendered from it."""
    return bool(np.any(anatomy == BODY))


def structures_present(anatomy: np.ndarray) -> list[str]:
    """Names of the codes present in a map (OUTSIDE excluded)."""
    counts = np.bincount(anatomy.ravel(), minlength=N_CODES)
    return [NAMES[c] for c in range(1, N_CODES) if counts[c]]
