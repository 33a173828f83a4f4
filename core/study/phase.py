"""The contrast phase of a CT volume, read from the images: the aorta's HU against the liver's
vessels and parenchyma.

Scanners seldom record the phase (the contrast tags are often blank, the series description is the
protocol's), and a multi-phase series may hold several phases under one UID. What the images show
(typical values: Bae, Radiology 2010; Foley & Jacobs, AJR 2000):

* unenhanced: blood ~40-60 HU, so the aorta is no brighter than muscle; liver vessels darker than
  the liver;
* arterial: the aorta 200-400 HU, far brighter than the portal vein (which is only starting to
  fill) and the liver;
* portal-venous: aorta and portal vein both enhanced to within ~60 HU of each other, the liver at
  its brightest (~100-130 HU);
* delayed (equilibrium): everything washing out together, the aorta under ~150 HU.

The aorta is found anatomically (no segmentation needed): the round, brightest 5 mm disk in front
of the vertebral body and to the patient's left of it, on slices through the liver. The liver's
vessels are the bright tail (98th percentile) of the eroded liver mask; the parenchyma its
median. Without a liver mask only the aorta speaks: unenhanced, arterial (> 250 HU) or "enhanced".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

Phase = Literal["unenhanced", "arterial", "portal-venous", "delayed", "enhanced", "unknown"]

UNENHANCED_AORTA = 90.0  # HU: blood without contrast is 40-60 HU
ARTERIAL_GAP = 60.0  # HU the aorta must exceed the liver's vessels by in the arterial phase
ARTERIAL_AORTA = 150.0
ARTERIAL_AORTA_ALONE = 250.0  # without a liver mask
DELAYED_AORTA = 150.0
UNENHANCED_LIVER = 70.0  # HU: unenhanced parenchyma is 50-65; enhanced phases bring it to 80-130
UNENHANCED_VESSEL_GAP = 40.0  # HU: without contrast the liver's vessels are no brighter than it
DISK_MM = 5.0
BONE_HU = 150.0
DENSE_HU = 300.0  # above: lipiodol after chemo-embolisation, calcification; neither vessel nor parenchyma


@dataclass(frozen=True)
class PhaseEstimate:
    """The phase and the measurements it rests on (HU; None where not measured)."""

    phase: Phase
    aorta_hu: float | None
    vessels_hu: float | None
    liver_hu: float | None
    reason: str

    def to_json(self) -> dict:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _spine_front(body: np.ndarray, bone: np.ndarray, px: float) -> tuple[int, int] | None:
    """(row of the vertebral body's front edge, its column) on one slice, or None."""
    cols = np.flatnonzero(body.any(axis=0))
    rows = np.flatnonzero(body.any(axis=1))
    if len(cols) < 10 or len(rows) < 10:
        return None
    cx, cy = (cols[0] + cols[-1]) / 2, (rows[0] + rows[-1]) / 2
    lab, n = ndimage.label(bone)
    best, best_d = None, np.inf
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        comp = lab[sl] == i
        if comp.sum() * px * px < 300:  # mm2: a vertebral body is 900-1500; ribs and calcifications smaller
            continue
        yy, xx = np.nonzero(comp)
        my, mx = yy.mean() + sl[0].start, xx.mean() + sl[1].start
        if my < cy:  # the spine lies in the body's back half
            continue
        d = abs(mx - cx)
        if d < best_d:
            best, best_d = (i, sl, int(round(mx))), d
    if best is None or best_d * px > 40:
        return None
    i, sl, mx = best
    band = lab[:, max(0, mx - int(10 / px)):mx + int(10 / px) + 1] == i
    front = np.flatnonzero(band.any(axis=1))
    return (int(front[0]), mx) if len(front) else None


def aorta_hu(hu2d: np.ndarray, px: float, left_is_plus_x: bool = True) -> float | None:
    """The median HU of the brightest 5 mm disk in front of the spine and left of it, or None."""
    body = ndimage.binary_fill_holes(hu2d > -400)
    # cancellous bone of an unenhanced vertebra is 150-250 HU: the cortex ring, filled
    bone = ndimage.binary_fill_holes(ndimage.binary_opening(hu2d > BONE_HU, iterations=1) & body)
    spine = _spine_front(body, bone, px)
    if spine is None:
        return None
    front, mx = spine
    y0, y1 = max(0, front - int(50 / px)), max(0, front - int(2 / px))
    side = (mx - int(15 / px), mx + int(45 / px)) if left_is_plus_x else (mx - int(45 / px), mx + int(15 / px))
    x0, x1 = max(0, side[0]), min(hu2d.shape[1], side[1])
    if y1 - y0 < 5 or x1 - x0 < 5:
        return None
    roi = np.clip(hu2d[y0:y1, x0:x1].astype(np.float32), -200, 500)
    r = max(1, int(round(DISK_MM / px)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (yy * yy + xx * xx) <= r * r
    med = ndimage.median_filter(roi, footprint=disk, mode="nearest")
    return float(med.max())


def detect_phase(hu: np.ndarray, spacing, label: np.ndarray | None = None,
                 direction: np.ndarray | None = None) -> PhaseEstimate:
    """The contrast phase of ``hu`` (int16 [Z, Y, X]); ``label`` (0/1/2) gives the liver to measure
    and the slices to look at (else the middle third of the volume)."""
    px = float(np.mean(spacing[1:]))
    left_plus = direction is None or float(np.asarray(direction)[0, 0]) >= 0  # DICOM x runs to the patient's left
    liver = label > 0 if label is not None else None
    if liver is not None and liver.any():
        zs = np.flatnonzero(liver.any(axis=(1, 2)))
        lo, hi = zs[0] + len(zs) // 4, zs[-1] - len(zs) // 4
    else:
        liver = None
        lo, hi = hu.shape[0] // 3, max(hu.shape[0] // 3, 2 * hu.shape[0] // 3 - 1)
    picks = np.unique(np.linspace(lo, hi, min(7, hi - lo + 1)).round().astype(int))
    found = [a for a in (aorta_hu(hu[z], px, left_plus) for z in picks) if a is not None]
    aorta = float(np.median(found)) if found else None
    vessels = parenchyma = None
    if liver is not None and label is not None:
        # the liver on the same slices, eroded in plane (slice by slice, on its box: a few ms each, so
        # a worker computing this never holds the interpreter long enough to stall the GUI)
        step = max(1, int(round(3 / px)))
        parts = []
        for z in picks:
            box = _box(liver[z], step + 1)
            if box is None:
                continue
            core = ndimage.binary_erosion(liver[z][box], iterations=step) & (label[z][box] == 1)
            parts.append(hu[z][box][core])  # tumours are neither vessels nor parenchyma
        vals = np.concatenate(parts) if parts else np.zeros(0, hu.dtype)
        vals = vals[vals < DENSE_HU]
        if vals.size > 100:
            vessels, parenchyma = float(np.percentile(vals, 98)), float(np.median(vals))
    return _classify(aorta, vessels, parenchyma)


def _box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(ys):
        return None
    return (slice(max(0, ys[0] - margin), ys[-1] + margin + 1), slice(max(0, xs[0] - margin), xs[-1] + margin + 1))


def _classify(aorta: float | None, vessels: float | None, liver: float | None) -> PhaseEstimate:
    if aorta is None:
        return PhaseEstimate("unknown", None, vessels, liver, "the aorta was not found in front of the spine")
    if aorta < UNENHANCED_AORTA:
        return PhaseEstimate("unenhanced", aorta, vessels, liver, f"aorta {aorta:.0f} HU: no contrast in the blood")
    if (liver is not None and vessels is not None and aorta < ARTERIAL_AORTA_ALONE - 50
            and liver < UNENHANCED_LIVER and vessels - liver < UNENHANCED_VESSEL_GAP):
        # a calcified aortic wall or bone at a thick slice's edge can read bright: the liver says more
        return PhaseEstimate("unenhanced", aorta, vessels, liver,
                             f"liver {liver:.0f} HU and its vessels only {vessels - liver:.0f} HU brighter: "
                             f"no contrast (the {aorta:.0f} HU before the spine is not contrast-filled blood)")
    if vessels is None:
        if aorta > ARTERIAL_AORTA_ALONE:
            return PhaseEstimate("arterial", aorta, None, liver, f"aorta {aorta:.0f} HU (no liver mask to compare)")
        return PhaseEstimate("enhanced", aorta, None, liver, f"aorta {aorta:.0f} HU (no liver mask to compare)")
    gap = aorta - vessels
    if gap >= ARTERIAL_GAP and aorta >= ARTERIAL_AORTA:
        return PhaseEstimate("arterial", aorta, vessels, liver,
                             f"aorta {aorta:.0f} HU, {gap:.0f} HU above the liver's vessels ({vessels:.0f})")
    if aorta >= DELAYED_AORTA:
        return PhaseEstimate("portal-venous", aorta, vessels, liver,
                             f"aorta {aorta:.0f} HU and the liver's vessels {vessels:.0f} HU enhanced together")
    return PhaseEstimate("delayed", aorta, vessels, liver,
                         f"aorta {aorta:.0f} HU, washing out with the liver's vessels ({vessels:.0f})")
