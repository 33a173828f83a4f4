"""Synthetic baseline / follow-up pairs with known truth, from the phantom.

The phantom's anatomy (its own tumours removed) is the baseline; the follow-up is the same anatomy
moved by a known rigid transform (a shift and a rotation about z). Lesions are then drawn into each
study as axis-aligned ellipsoids of known semi-axes, so every diameter, every match and the
transform are known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from core.followup.registration import Grid, _sitk_affine, _sitk_image
from core.followup.timepoint import TimePoint
from core.synthetic.phantom import make_phantom


@dataclass(frozen=True)
class Lesion:
    """One lesion's truth: semi-axes (x, y, z) mm at each time point (None: absent then)."""

    name: str
    base: tuple[float, float, float] | None
    follow: tuple[float, float, float] | None
    contrast: float = -45.0

    def diameters(self, when: str) -> tuple[float, float]:
        """(long, perpendicular) axial diameter in mm."""
        ax = self.base if when == "base" else self.follow
        return (2 * max(ax[:2]), 2 * min(ax[:2])) if ax else (0.0, 0.0)


@dataclass
class Pair:
    baseline: TimePoint
    followup: TimePoint
    matrix: np.ndarray  # true baseline LPS -> follow-up LPS
    lesions: list[Lesion]
    centres: dict = field(default_factory=dict)  # name -> baseline LPS centre


def rotation_z(deg: float, shift_mm=(7.0, 0.0, 0.0), about=(0.0, 0.0, 0.0)) -> np.ndarray:
    a = np.deg2rad(deg)
    r = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    m = np.eye(4)
    c = np.asarray(about, float)
    m[:3, :3], m[:3, 3] = r, c - r @ c + np.asarray(shift_mm, float)
    return m


def _anatomy(seed: int, slices: int, size: int):
    c = make_phantom(seed, slices, size)
    hu, label = c.hu.copy(), c.label.copy()
    liver_hu = float(np.median(hu[label == 1]))
    hu[label == 2] = np.int16(liver_hu)
    label[label == 2] = 1
    return hu, label, Grid.of(c.spacing, c.origin)


def _warp(a: np.ndarray, grid: Grid, m: np.ndarray, nearest: bool) -> np.ndarray:
    """The image as it lies after the patient moved by ``m`` (baseline -> follow-up), on the same grid."""
    import SimpleITK as sitk
    img = _sitk_image(a, grid)
    out = sitk.Resample(img, img, _sitk_affine(np.linalg.inv(m)),
                        sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear, -1000 if not nearest else 0)
    return sitk.GetArrayFromImage(out)


def _draw(hu: np.ndarray, label: np.ndarray, grid: Grid, centre_lps, semi, contrast: float) -> None:
    zyx = np.round(grid.to_voxel(centre_lps)[0]).astype(int)  # on a voxel centre: the true widest slice
    c = grid.to_lps(zyx)[0]
    sp = grid.spacing
    ext = [int(np.ceil(s / d)) + 1 for s, d in zip(semi[::-1], sp, strict=True)]
    box = tuple(slice(max(0, k - e), k + e + 1) for k, e in zip(zyx, ext, strict=True))
    zz, yy, xx = np.meshgrid(*[np.arange(b.start, b.stop) for b in box], indexing="ij")
    p = grid.to_lps(np.stack([zz.ravel(), yy.ravel(), xx.ravel()], 1))
    inside = (((p - c) / np.asarray(semi)) ** 2).sum(1) <= 1.0
    inside = inside.reshape(zz.shape)
    sub_hu, sub_lab = hu[box], label[box]
    ref = float(np.median(hu[label == 1]))
    sub_hu[inside] = np.int16(ref + contrast)
    sub_lab[inside] = 2


def centres_in_liver(label: np.ndarray, grid: Grid, n: int, apart_mm: float = 45.0, depth_mm: float = 14.0,
                     seed: int = 0) -> list[np.ndarray]:
    """``n`` LPS points deep in the liver, far apart (farthest-point choice, seeded)."""
    deep = ndimage.distance_transform_edt(label > 0, sampling=grid.spacing) > depth_mm
    pts = grid.to_lps(np.argwhere(deep))
    rng = np.random.default_rng(seed)
    chosen = [pts[rng.integers(len(pts))]]
    while len(chosen) < n:
        d = np.min([np.linalg.norm(pts - c, axis=1) for c in chosen], axis=0)
        k = int(np.argmax(d))
        assert d[k] >= apart_mm, "the liver is too small for that many lesions"
        chosen.append(pts[k])
    return chosen


def make_pair(lesions: list[Lesion], seed: int = 3, slices: int = 48, size: int = 128, deg: float = 4.0,
              shift_mm=(7.0, -3.0, 2.0), patient=("P1", "P1"), followup_name: str = "follow-up") -> Pair:
    hu, label, grid = _anatomy(seed, slices, size)
    liver_centre = grid.to_lps(np.argwhere(label > 0).mean(0))[0]
    m = rotation_z(deg, shift_mm, about=liver_centre)
    fu_hu = _warp(hu, grid, m, nearest=False).astype(np.int16)
    fu_label = _warp(label, grid, m, nearest=True).astype(np.uint8)
    b_hu, b_label = hu.copy(), label.copy()
    centres = centres_in_liver(label, grid, len(lesions), seed=seed)
    named = {}
    for les, c in zip(lesions, centres, strict=True):
        named[les.name] = c
        if les.base:
            _draw(b_hu, b_label, grid, c, les.base, les.contrast)
        if les.follow:
            _draw(fu_hu, fu_label, grid, m[:3, :3] @ c + m[:3, 3], les.follow, les.contrast)
    base = TimePoint(b_hu, b_label, grid.spacing, grid.origin, None, name="baseline", patient_id=patient[0])
    follow = TimePoint(fu_hu, fu_label, grid.spacing, grid.origin, None, name=followup_name, patient_id=patient[1])
    return Pair(base, follow, m, lesions, named)
