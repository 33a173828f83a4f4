"""Acquisition: other contrast phases, noise and kernels of real CT, and the acquisition proxies.

The rendered label maps draw their own phases (:mod:`core.synthetic.synth_ct`); this module
changes the **real** CTs, with their expert masks:

* :func:`remap_phase`: HU shifted per structure to an arterial-like or an unenhanced-like phase
  (:data:`PHASE_SHIFTS`; :func:`shift_structures`: any shifts per structure); :func:`add_noise`: Gaussian noise;
* :func:`random_phase_table`, :func:`scanner_noise`: the same, randomised, for training samples
  (:mod:`core.training.loader`);
* :func:`acquisition_variant`: a held-out patient as other scanners would show it
  (:data:`VARIANTS`, for ``bench/benchmarks/real_quality.py``), with the thick slices of
  :func:`core.transforms.zsample.resample_thickness`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from scipy import ndimage

from ..datasets import anatomy as A
from ..transforms.zsample import resample_thickness

# HU shifts per structure that turn the portal-venous CT of 3D-IRCADb-01 into another phase.
# Targets (typical values; e.g. Bae, Radiology 2010, "Intravenous contrast medium administration
# and scan timing at CT"; Foley & Jacobs, AJR 2000, for phase timings):
#   unenhanced: liver 55 HU, vessels 40 (darker than the liver), spleen 45, kidney 30;
#   late arterial: liver ~75 (hepatic artery share), portal vein ~130, arteries 300, kidney
#   cortex 180, spleen heterogeneous ~110; hypodense metastases follow the liver.
# 3D-IRCADb-01 patient 17 (portal-venous): liver median 103 HU, portal vein 154-169.
# A shift, not a target: texture and partial volume at edges stay those of the real scan.
PHASE_SHIFTS = {
    "unenhanced": {A.LIVER: -50, A.TUMOUR: -35, A.PORTAL: -120, A.VENOUS: -110, A.ARTERY: -120,
                   A.SPLEEN: -70, A.KIDNEY: -130, A.PANCREAS: -45},
    "arterial": {A.LIVER: -30, A.TUMOUR: -25, A.PORTAL: -30, A.VENOUS: -60, A.ARTERY: 150,
                 A.SPLEEN: -5, A.KIDNEY: 20, A.PANCREAS: 10},
}
PHASES = tuple(PHASE_SHIFTS)


def remap_phase(hu: np.ndarray, anatomy: np.ndarray, phase: str, blur_px: float = 1.0) -> np.ndarray:
    """HU remapped to another contrast phase with the structure masks (:data:`PHASE_SHIFTS`).

    Args:
        hu: int16 [Z, Y, X] portal-venous CT.
        anatomy: uint8 [Z, Y, X] anatomy codes (:mod:`core.anatomy`) of the same volume.
        phase: one of :data:`PHASES`.
        blur_px: in-plane Gaussian sigma of the shift map (no step at mask edges).

    Returns:
        int16 [Z, Y, X]: ``hu`` plus the (smoothed) shift of each voxel's structure.
    """
    if phase not in PHASE_SHIFTS:
        raise ValueError(f"unknown phase {phase!r} (use one of {PHASES})")
    return shift_structures(hu, anatomy, PHASE_SHIFTS[phase], blur_px)


def shift_structures(hu: np.ndarray, codes: np.ndarray, shifts: Mapping[int, float],
                     blur_px: float = 1.0) -> np.ndarray:
    """``hu`` plus ``shifts[code]`` HU on each voxel of that code (anatomy codes, or label values below
    :data:`core.datasets.anatomy.N_CODES`), the shift map smoothed in-plane by ``blur_px``; int16."""
    table = np.zeros(A.N_CODES, np.float32)
    for code, shift in shifts.items():
        table[code] = shift
    out = np.empty(hu.shape, np.int16)
    for z in range(hu.shape[0]):
        shift = table[codes[z]]
        if blur_px > 0 and shift.any():
            shift = ndimage.gaussian_filter(shift, blur_px)
        out[z] = np.clip(np.rint(hu[z] + shift), -1024, 3071)
    return out


def add_noise(hu: np.ndarray, sd_hu: float, seed: int = 0) -> np.ndarray:
    """``hu`` plus white Gaussian noise of ``sd_hu`` HU (int16, seeded)."""
    rng = np.random.default_rng(seed)
    out = np.empty(hu.shape, np.int16)
    for z in range(hu.shape[0]):
        out[z] = np.clip(np.rint(hu[z] + rng.normal(0, sd_hu, hu.shape[1:])), -1024, 3071)
    return out


# Training (core.training.loader): real-CT samples of the ``phases`` share get another contrast phase, each
# structure's shift of :data:`PHASE_SHIFTS` scaled by a random factor in this range (the rendered
# label maps draw their own phases in core.synthetic.synth_ct).
PHASE_SCALE = (0.5, 1.3)


def random_phase_table(rng: np.random.Generator, per_hu: float) -> np.ndarray:
    """float32 [256]: a random phase's shift for every anatomy code, in units of ``per_hu`` per HU."""
    phase = PHASE_SHIFTS[PHASES[int(rng.integers(len(PHASES)))]]
    table = np.zeros(256, np.float32)
    for code, hu in phase.items():
        table[code] = hu * rng.uniform(*PHASE_SCALE) * per_hu
    return table


def scanner_noise(x: np.ndarray, rng: np.random.Generator, per_hu: float) -> None:
    """Another scanner's noise and kernel on one real-CT sample [S, S, C], in place (``per_hu``
    units per HU): half the time white noise of 0-15 HU sd, a third of the time a softer kernel
    (Gaussian blur of 0.4-1 px in plane)."""
    if rng.random() < 0.5:
        x += rng.uniform(0, 15) * per_hu * rng.standard_normal(x.shape, dtype=np.float32)
    if rng.random() < 1 / 3:
        sigma = rng.uniform(0.4, 1.0)
        x[:] = ndimage.gaussian_filter(x, (sigma, sigma, 0))


# The acquisition proxies of ``bench/benchmarks/real_quality.py``: a held-out real patient as other scanners
# and protocols would show it. Each is built from the case's own CT and expert masks.
VARIANTS = ("original", "2.5 mm", "5 mm", "arterial", "unenhanced", "noise 20 HU", "5 mm arterial noisy")


def acquisition_variant(case, name: str, seed: int = 0):
    """A :class:`core.dataset.Case` of ``case`` (real CT with ``anatomy``) as variant ``name``:

    * "2.5 mm", "5 mm": slab-averaged thick slices (:func:`resample_thickness`);
    * "arterial", "unenhanced": HU remapped per structure (:data:`PHASE_SHIFTS`);
    * "noise 20 HU": white noise of 20 HU sd;
    * "5 mm arterial noisy": arterial, then 5 mm slices, then 12 HU of noise (a thick-slice
      arterial scan of another hospital).
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r} (use one of {VARIANTS})")
    hu, label, dz = case.hu, case.label, float(case.spacing[0])
    if name in ("arterial", "unenhanced", "5 mm arterial noisy"):
        if case.anatomy is None:
            raise ValueError(f"{case.case_id}: a phase variant needs the case's structure masks (anatomy)")
        hu = remap_phase(hu, case.anatomy, "arterial" if name != "unenhanced" else "unenhanced")
    if name in ("2.5 mm", "5 mm", "5 mm arterial noisy"):
        hu, label, dz = resample_thickness(hu, label, dz, 2.5 if name == "2.5 mm" else 5.0)
    if name == "noise 20 HU":
        hu = add_noise(hu, 20.0, seed)
    if name == "5 mm arterial noisy":
        hu = add_noise(hu, 12.0, seed)
    anatomy = case.anatomy if hu.shape == case.hu.shape else None
    return replace(case, hu=hu, label=label, spacing=(dz,) + tuple(case.spacing[1:]), anatomy=anatomy,
                   meta=dict(case.meta, variant=name))
