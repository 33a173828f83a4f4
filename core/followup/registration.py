"""Registering a follow-up CT to the baseline CT of the same patient, and using the transform.

Why: lesions can only be matched and compared between two studies when a point of one study can be
found in the other. Patients lie differently on the table at each visit, so the follow-up is
registered to the baseline with SimpleITK (the Insight Toolkit's registration framework):

1. both CTs are cropped around their liver (a margin around the liver mask; the whole image without
   one, on the coarser :data:`WHOLE_GRID_MM`) and block-averaged to a coarse grid (about
   :data:`GRID_MM`), which makes the job take a
   fraction of a second instead of minutes and keeps the metric on the organ that matters;
2. a rigid transform (Euler3D: rotation and translation) is initialised by centring the liver masks'
   centres of mass (the images' centres of intensity without masks) and optimised with Mattes mutual
   information, regular-step gradient descent, two resolution levels;
3. an affine transform starts from the rigid one and is optimised the same way; it is kept only
   where it lowers the liver-mask mismatch: the Dice of the baseline liver against the warped
   follow-up liver does not drop and the mean surface distance between them does not grow, one of
   them strictly improving. A liver that changed shape (resection, regeneration, atrophy) thus keeps
   the rigid transform instead of an affine one that shears the patient to fit a new liver.

The result is a 4x4 matrix in LPS millimetres that maps a baseline point to the follow-up point
that matches it (ITK's fixed-to-moving convention: baseline fixed, follow-up moving).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..evaluation.metrics import assd, dice
from ..io.dicom.geometry import voxel_to_lps
from ..runtime.errors import LiverSegError
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..transforms.masks import crop_box

GRID_MM = 3.0  # the registration grid: voxels are block-averaged to about this size
WHOLE_GRID_MM = 6.0  # without liver masks the whole images are registered, on a coarser grid
CROP_MARGIN_MM = (20.0, 45.0)  # around the liver: baseline (fixed), follow-up (moving, room to move)
HU_RANGE = (-300.0, 500.0)  # intensities beyond are clipped: air and bone only distract the metric
SEED = 41  # the metric's sampling is random: seeded, so a comparison repeats exactly
Kind = Literal["rigid", "affine"]


class RegistrationError(LiverSegError):
    """The follow-up cannot be registered to the baseline."""


@dataclass(frozen=True)
class Grid:
    """Where a [Z, Y, X] array lies in the patient: spacing (z, y, x) mm, origin (LPS mm of voxel
    [0, 0, 0]) and direction (3x3, columns the LPS directions of the x, y, z index axes)."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

    @classmethod
    def of(cls, spacing, origin=(0.0, 0.0, 0.0), direction=None) -> Grid:
        d = np.eye(3) if direction is None else np.asarray(direction, float)
        sz, sy, sx = (float(s) for s in spacing)
        ox, oy, oz = (float(o) for o in origin)
        rows = tuple((float(r[0]), float(r[1]), float(r[2])) for r in d)
        return cls((sz, sy, sx), (ox, oy, oz), (rows[0], rows[1], rows[2]))

    def affine(self) -> np.ndarray:
        """4x4: (x, y, z, 1) voxel indices to LPS mm."""
        return voxel_to_lps(self.spacing, self.origin, np.asarray(self.direction))

    def to_lps(self, zyx) -> np.ndarray:
        """(N, 3) voxel positions (z, y, x) to (N, 3) LPS points (x, y, z) in mm."""
        zyx = np.atleast_2d(np.asarray(zyx, float))
        a = self.affine()
        return zyx[:, ::-1] @ a[:3, :3].T + a[:3, 3]

    def to_voxel(self, lps) -> np.ndarray:
        """(N, 3) LPS points to (N, 3) fractional voxel positions (z, y, x)."""
        lps = np.atleast_2d(np.asarray(lps, float))
        a = np.linalg.inv(self.affine())
        return (lps @ a[:3, :3].T + a[:3, 3])[:, ::-1]


@dataclass(frozen=True)
class Fit:
    """How well one transform brings the livers together (on the registration grid)."""

    stage: str  # "initial" (moments only), "rigid" or "affine"
    liver_dice: float | None  # baseline liver vs warped follow-up liver (None without masks)
    liver_msd_mm: float | None  # their mean (symmetric) surface distance
    metric: float | None  # Mattes mutual information at the end (lower is better); None for "initial"


@dataclass(frozen=True)
class Registration:
    """The transform from baseline to follow-up and the figures it rests on.

    Attributes:
        matrix: 4x4 (row-major), LPS mm: ``matrix @ (x, y, z, 1)`` of a baseline point is the
            matching follow-up point.
        kind: "rigid" or "affine" (the one kept, see the module's rule).
        fits: the initial, rigid and (when tried) affine :class:`Fit`.
        grid_mm: the spacing registered on (z, y, x).
        seconds: the wall time.
    """

    matrix: tuple[tuple[float, ...], ...]
    kind: Kind
    fits: tuple[Fit, ...] = field(default_factory=tuple)
    grid_mm: tuple[float, float, float] = (GRID_MM,) * 3
    seconds: float = 0.0

    @property
    def m(self) -> np.ndarray:
        return np.asarray(self.matrix, float)

    def fit(self, stage: str) -> Fit | None:
        return next((f for f in self.fits if f.stage == stage), None)

    def to_followup(self, lps) -> np.ndarray:
        """(N, 3) baseline LPS points to the follow-up's."""
        return _apply(self.m, lps)

    def to_baseline(self, lps) -> np.ndarray:
        """(N, 3) follow-up LPS points to the baseline's."""
        return _apply(np.linalg.inv(self.m), lps)

    def to_json(self) -> dict:
        return {"kind": self.kind, "matrix_lps_mm": [list(r) for r in self.matrix],
                "grid_mm": list(self.grid_mm), "seconds": round(self.seconds, 3),
                "fits": [{"stage": f.stage, "liver_dice": _r(f.liver_dice, 4), "liver_msd_mm": _r(f.liver_msd_mm, 2),
                          "metric": _r(f.metric, 5)} for f in self.fits]}


def _r(v: float | None, n: int) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), n)


def _apply(m: np.ndarray, lps) -> np.ndarray:
    p = np.atleast_2d(np.asarray(lps, float))
    return p @ m[:3, :3].T + m[:3, 3]


# -- the coarse, cropped images -----------------------------------------------------------------

@dataclass(frozen=True)
class _Coarse:
    image: np.ndarray  # float32 [Z, Y, X]
    mask: np.ndarray | None  # bool, or None
    grid: Grid


def _coarse(hu: np.ndarray, mask: np.ndarray | None, grid: Grid, margin_mm: float, grid_mm: float) -> _Coarse:
    """Crop around ``mask`` (grown by ``margin_mm``) and block-average to about ``grid_mm``."""
    sp = np.asarray(grid.spacing, float)
    box = crop_box(mask, 0) if mask is not None and mask.any() else None
    if box is None:
        mask = None
        box = tuple(slice(0, n) for n in hu.shape)
    pad = np.ceil(margin_mm / sp).astype(int)
    box = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, pad, hu.shape, strict=True))
    f = np.maximum(1, np.round(grid_mm / sp)).astype(int)
    stops = [b.start + (b.stop - b.start) // k * k for b, k in zip(box, f, strict=True)]
    box = tuple(slice(b.start, max(b.start + k, s)) for b, s, k in zip(box, stops, f, strict=True))
    f = np.minimum(f, [b.stop - b.start for b in box])

    def blocks(a: np.ndarray) -> np.ndarray:
        a = a[box]
        a = a[: a.shape[0] // f[0] * f[0], : a.shape[1] // f[1] * f[1], : a.shape[2] // f[2] * f[2]]
        return a.reshape(a.shape[0] // f[0], f[0], a.shape[1] // f[1], f[1], a.shape[2] // f[2], f[2]).mean(
            axis=(1, 3, 5), dtype=np.float32)

    img = np.clip(blocks(hu), *HU_RANGE).astype(np.float32)
    m = blocks(mask.astype(np.float32)) > 0.5 if mask is not None else None
    # the centre of the first block: its corner voxel plus half a block less half a voxel
    first = np.array([b.start for b in box], float) + (f - 1) / 2.0
    origin = grid.to_lps(first)[0]
    return _Coarse(img, m, Grid.of(sp * f, origin, np.asarray(grid.direction)))


def _sitk_image(a: np.ndarray, grid: Grid):
    import SimpleITK as sitk
    img = sitk.GetImageFromArray(np.ascontiguousarray(a))
    img.SetSpacing(tuple(float(s) for s in grid.spacing[::-1]))
    img.SetOrigin(grid.origin)
    img.SetDirection(tuple(float(v) for row in grid.direction for v in row))
    return img


def _matrix(tx) -> np.ndarray:
    """4x4 of an ITK matrix-offset transform: y = A (x - c) + c + t."""
    a = np.asarray(tx.GetMatrix(), float).reshape(3, 3)
    c, t = np.asarray(tx.GetCenter(), float), np.asarray(tx.GetTranslation(), float)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = a, c + t - a @ c
    return m


def _sitk_affine(m: np.ndarray):
    import SimpleITK as sitk
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(tuple(float(v) for v in m[:3, :3].ravel()))
    tx.SetTranslation(tuple(float(v) for v in m[:3, 3]))
    return tx


def warp_label(label: np.ndarray, grid: Grid, onto_shape: Sequence[int], onto: Grid, matrix) -> np.ndarray:
    """A follow-up label volume (its ``grid``) resampled onto the baseline's ``onto`` grid (nearest
    neighbour, so label codes stay codes), with ``matrix`` (baseline LPS -> follow-up LPS)."""
    import SimpleITK as sitk
    moving = _sitk_image(np.asarray(label).astype(np.uint8), grid)
    ref = sitk.Image([int(n) for n in onto_shape[::-1]], sitk.sitkUInt8)
    ref.SetSpacing(tuple(float(s) for s in onto.spacing[::-1]))
    ref.SetOrigin(onto.origin)
    ref.SetDirection(tuple(float(v) for row in onto.direction for v in row))
    out = sitk.Resample(moving, ref, _sitk_affine(np.asarray(matrix, float)), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(out)


def _fit(stage: str, m: np.ndarray, fixed: _Coarse, moving: _Coarse, metric: float | None) -> Fit:
    if fixed.mask is None or moving.mask is None:
        return Fit(stage, None, None, metric)
    warped = warp_label(moving.mask, moving.grid, fixed.mask.shape, fixed.grid, m) > 0
    if not warped.any():
        return Fit(stage, 0.0, float("inf"), metric)
    return Fit(stage, dice(fixed.mask, warped), assd(fixed.mask, warped, fixed.grid.spacing), metric)


def _better(new: Fit, old: Fit) -> bool:
    """The rule for keeping the affine transform: no worse by either liver measure, better by one."""
    nd, nm, od, om = new.liver_dice, new.liver_msd_mm, old.liver_dice, old.liver_msd_mm
    if nd is None or nm is None or od is None or om is None:
        return False  # without masks nothing says an affine fit is right: stay rigid
    return nd >= od and nm <= om and (nd > od or nm < om)


def _centre(c: _Coarse) -> np.ndarray:
    """The centre of mass of the mask, else of the image's intensities above air (LPS mm)."""
    w = c.mask.astype(np.float32) if c.mask is not None else np.clip(c.image - HU_RANGE[0], 0, None)
    if not w.any():
        w = np.ones_like(c.image)
    idx = np.indices(w.shape).reshape(3, -1)
    zyx = (idx * w.reshape(-1)).sum(1) / w.sum()
    return c.grid.to_lps(zyx)[0]


def _method(iterations: int, step: float):
    import SimpleITK as sitk
    r = sitk.ImageRegistrationMethod()
    r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    r.SetMetricSamplingStrategy(r.RANDOM)
    r.SetMetricSamplingPercentage(0.3, SEED)
    r.SetInterpolator(sitk.sitkLinear)
    r.SetOptimizerAsRegularStepGradientDescent(learningRate=step, minStep=0.01, numberOfIterations=iterations,
                                               relaxationFactor=0.6, gradientMagnitudeTolerance=1e-6)
    r.SetOptimizerScalesFromPhysicalShift()
    r.SetShrinkFactorsPerLevel([2, 1])
    r.SetSmoothingSigmasPerLevel([1.0, 0.0])
    r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return r


def _run(method, fixed, moving, cancel: CancelToken | None) -> None:
    """Execute ``method``, aborting between iterations when ``cancel`` is set."""
    import SimpleITK as sitk
    if cancel is not None:
        method.AddCommand(sitk.sitkIterationEvent, lambda: cancel.cancelled and method.StopRegistration())
    method.Execute(fixed, moving)
    check(cancel)


def register(baseline_hu: np.ndarray, baseline_grid: Grid, followup_hu: np.ndarray, followup_grid: Grid,
             baseline_liver: np.ndarray | None = None, followup_liver: np.ndarray | None = None,
             affine: bool = True, grid_mm: float = GRID_MM, threads: int = 2,
             progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> Registration:
    """Register the follow-up CT to the baseline CT (see the module for the method).

    Args:
        baseline_hu, followup_hu: int16 [Z, Y, X] HU.
        baseline_grid, followup_grid: where they lie (:class:`Grid`).
        baseline_liver, followup_liver: liver masks (tumours included), or None: then the images'
            centres initialise, the whole images are used, and only the rigid transform is tried.
        affine: also try the affine transform (kept by the rule of the module).
        threads: ITK threads (the job shares the machine with the GUI).

    Raises:
        RegistrationError: the optimiser failed (e.g. images that do not overlap at all).
    """
    import SimpleITK as sitk
    t0 = time.perf_counter()
    report(progress, "register", 0, 3, "preparing")
    livers = all(m is not None and np.any(m) for m in (baseline_liver, followup_liver))
    if not livers:  # one without a liver: neither uses its mask, the whole images are registered
        baseline_liver = followup_liver = None
        affine = False  # nothing could say an affine fit is better (the rule of _better)
        grid_mm = max(grid_mm, WHOLE_GRID_MM)
    fixed = _coarse(baseline_hu, baseline_liver, baseline_grid, CROP_MARGIN_MM[0], grid_mm)
    moving = _coarse(followup_hu, followup_liver, followup_grid, CROP_MARGIN_MM[1], grid_mm)
    f_img, m_img = _sitk_image(fixed.image, fixed.grid), _sitk_image(moving.image, moving.grid)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(max(1, threads))
    cf, cm = _centre(fixed), _centre(moving)
    rigid = sitk.Euler3DTransform()
    rigid.SetCenter(tuple(float(v) for v in cf))
    rigid.SetTranslation(tuple(float(v) for v in cm - cf))
    fits = [_fit("initial", _matrix(rigid), fixed, moving, None)]
    check(cancel)
    report(progress, "register", 1, 3, "rigid")
    try:
        r = _method(200, 2.0)
        r.SetInitialTransform(rigid, inPlace=True)
        _run(r, f_img, m_img, cancel)
        m_rigid = _matrix(rigid)
        fits.append(_fit("rigid", m_rigid, fixed, moving, r.GetMetricValue()))
        best = m_rigid
        kind: Kind = "rigid"
        if affine:
            check(cancel)
            report(progress, "register", 2, 3, "affine")
            aff = sitk.AffineTransform(3)
            aff.SetCenter(rigid.GetCenter())
            aff.SetMatrix(rigid.GetMatrix())
            aff.SetTranslation(rigid.GetTranslation())
            r = _method(150, 1.0)
            r.SetInitialTransform(aff, inPlace=True)
            _run(r, f_img, m_img, cancel)
            fits.append(_fit("affine", _matrix(aff), fixed, moving, r.GetMetricValue()))
            if _better(fits[-1], fits[-2]):
                best, kind = _matrix(aff), "affine"
    except RuntimeError as exc:
        check(cancel)  # an abort on cancel surfaces as ITK's RuntimeError
        raise RegistrationError(f"the follow-up could not be registered to the baseline "
                                f"({str(exc).strip().splitlines()[-1][:160]})") from None
    report(progress, "register", 3, 3)
    return Registration(tuple(tuple(float(v) for v in row) for row in best), kind, tuple(fits),
                        tuple(float(s) for s in fixed.grid.spacing), time.perf_counter() - t0)  # type: ignore[arg-type]
