"""A synthetic abdominal CT phantom with liver and tumour ground truth.

The tests, the demo study and the speed benchmarks use it, since no real
dataset can be downloaded here. Each seed gives a different patient: body
size, fat, the liver's lobed shape, position and enhancement, vessels, 0 to 5
tumours (hypo- or hyper-dense, 5-40 mm, irregular, sharp or blurred margins,
textured), sometimes a cyst (labelled liver, as in 3D-IRCADb-01), noise.
Hounsfield values follow ``shared/data/README.md`` (patient 17): liver median
about 100 HU, tumours widely overlapping it, bone 200-700 HU.

Coordinates: LPS millimetres; x grows to the patient's left (image right),
y grows posterior (image down), z grows toward the head. Arrays are [Z, Y, X].
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..io.dicom.write import SeriesIds, ct_slice, make_uid, to_bytes
from ..runtime.atomic import atomic_open
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..runtime.labels import TUMOUR

AIR, FAT, MUSCLE, SOFT = -1000.0, -95.0, 50.0, 35.0
FOV_MM = 400.0


@dataclass(frozen=True)
class Tumour:
    """One generated lesion (for tests and documentation)."""

    center_mm: tuple[float, float, float]  # (x, y, z) LPS
    diameter_mm: float
    contrast_hu: float  # mean difference from the liver


@dataclass
class PhantomCase:
    """A generated patient.

    Attributes:
        hu: int16 [Z, Y, X] Hounsfield units.
        label: uint8 [Z, Y, X]: 0 background, 1 liver, 2 tumour.
        spacing: (z, y, x) mm.
        tumours: the lesions placed (before clipping to the liver).
        cyst: uint8 mask of a cyst (labelled liver), or None.
        seed: the seed that made it.
    """

    hu: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    tumours: list[Tumour] = field(default_factory=list)
    cyst: np.ndarray | None = None
    seed: int = 0

    @property
    def origin(self) -> tuple[float, float, float]:
        z, y, x = self.hu.shape
        return (-(x - 1) / 2 * self.spacing[2], -(y - 1) / 2 * self.spacing[1], 0.0)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], coarse: tuple[int, ...]) -> np.ndarray:
    """Smooth random field in about [-1, 1], upsampled from a coarse grid."""
    c = rng.standard_normal(coarse).astype(np.float32)
    zoom = [s / k for s, k in zip(shape, coarse, strict=True)]
    f = ndimage.zoom(c, zoom, order=1, mode="nearest", grid_mode=True)
    f = f[tuple(slice(0, s) for s in shape)]
    f /= 1.5  # in place: a 512 x 512 x 100 field is 100 MB, and each temporary costs page faults
    return np.clip(f, -1, 1, out=f)


def _ellipsoid(X, Y, Z, c, r) -> np.ndarray:
    """1 - normalised squared distance: > 0 inside the ellipsoid."""
    f = ((X - c[0]) / r[0]) ** 2 + ((Y - c[1]) / r[1]) ** 2 + ((Z - c[2]) / r[2]) ** 2
    return np.subtract(1.0, f, out=f)  # in place: one full-size array, not two


def _ellipse(X, Y, c, r) -> np.ndarray:
    return 1.0 - (((X - c[0]) / r[0]) ** 2 + ((Y - c[1]) / r[1]) ** 2)


def make_phantom(seed: int = 0, slices: int = 64, size: int = 256, slice_mm: float | None = None) -> PhantomCase:
    """Generate one patient.

    Args:
        seed: patient identity; each seed gives different anatomy.
        slices: Z, number of axial slices.
        size: X = Y, in pixels (400 mm field of view).
        slice_mm: slice spacing (default: covers about 200 mm, 1-5 mm).

    Returns:
        A :class:`PhantomCase`.
    """
    rng = np.random.default_rng(seed)
    px = FOV_MM / size
    dz = slice_mm or float(np.clip(200.0 / slices, 1.0, 5.0))
    shape = (slices, size, size)
    z = np.arange(slices, dtype=np.float32)[:, None, None] * dz
    y = ((np.arange(size, dtype=np.float32) - (size - 1) / 2) * px)[None, :, None]
    x = ((np.arange(size, dtype=np.float32) - (size - 1) / 2) * px)[None, None, :]
    zlen = slices * dz
    # Shapes are computed on the compact axes (x: 1 x 1 x X, y: 1 x Y x 1, z: Z x 1 x 1), so only a
    # result is full size: each full-size temporary of a 512 x 512 x 100 volume costs page faults.
    # The full-shape views (no copies) index lesion boxes and points.
    xc, yc = x, y
    x, y = np.broadcast_to(x, shape), np.broadcast_to(y, shape)
    x2, y2 = x[0], y[0]  # one slice: outlines that do not change along z are computed once (hu[:, m])
    zn = z / zlen  # 0 (feet) .. 1 (head)

    # Body outline, slowly varying along z.
    bx0, by0 = rng.uniform(135, 175), rng.uniform(95, 125)  # half-axes at mid-height, mm
    bx = bx0 * (1 + 0.05 * np.sin(zn * 3 + rng.uniform(0, 6)))
    by = by0 * (1 + 0.04 * np.cos(zn * 2 + rng.uniform(0, 6)))
    body_f = _ellipse(xc, yc - 5, (0, 0), (bx, by))
    wobble = 0.04 * _smooth_noise(rng, shape, (max(2, slices // 16), 6, 6))
    body = body_f + wobble > 0
    fat_mm = rng.uniform(8, 30)
    inner = _ellipse(xc, yc - 5, (0, 0), (bx - fat_mm, by - fat_mm * 0.8)) + wobble > 0
    muscle_wall = inner & ~(_ellipse(xc, yc - 5, (0, 0), (bx - fat_mm - 10, by - fat_mm * 0.8 - 9)) + wobble > 0)

    hu = np.full(shape, AIR, dtype=np.float32)
    hu[body] = FAT
    visceral_fat = _smooth_noise(rng, shape, (max(2, slices // 8), 10, 10)) > rng.uniform(0.0, 0.4)
    hu[inner] = SOFT
    hu[inner & visceral_fat] = FAT + 10
    hu[muscle_wall] = MUSCLE
    # Bowel gas pockets in the lower abdomen.
    gas = (_smooth_noise(rng, shape, (max(2, slices // 6), 14, 14)) > 0.55) & inner & (zn < 0.55)
    hu[gas & ~muscle_wall] = -850

    # Spine, paraspinal muscles, aorta, IVC.
    sp_y = by0 - fat_mm - 35
    vert = _ellipse(x2, y2, (0, sp_y), (17, 15)) > 0  # 2D, as every outline of this block
    hu[:, _ellipse(x2, y2, (0, sp_y + 30), (50, 22)) > 0] = MUSCLE + 5
    hu[:, vert] = 250
    hu[:, vert & ~(_ellipse(x2, y2, (0, sp_y), (14, 12)) > 0)] = 700
    hu[:, _ellipse(x2, y2, (0, sp_y + 24), (5, 12)) > 0] = 650
    aorta_c = (rng.uniform(8, 20), sp_y - 25)
    hu[:, _ellipse(x2, y2, aorta_c, (11, 11)) > 0] = rng.uniform(140, 260)
    ivc_c = (rng.uniform(-30, -18), sp_y - 28)
    hu[(_ellipse(x2, y2, ivc_c, (10, 8)) > 0) & (zn > 0.2)] = rng.uniform(110, 170)

    # Ribs: short bright arcs inside the wall, in bands along z (upper abdomen).
    rib_band = (np.sin(zn * rng.uniform(25, 35) + rng.uniform(0, 6)) > 0.3) & (zn > 0.4)
    for a in np.linspace(0, 2 * np.pi, 20, endpoint=False):
        if abs(np.sin(a)) > 0.9:  # no ribs over the anterior midline or the spine
            continue
        c = ((bx0 - fat_mm - 4) * np.cos(a), 5 + (by0 - fat_mm * 0.8 - 4) * np.sin(a))
        hu[(_ellipse(x2, y2, c, (5, 4)) > 0) & rib_band] = 600

    # Kidneys (lower), spleen (upper left).
    kz = rng.uniform(0.15, 0.3)
    for side in (-1, 1):
        kid = _ellipsoid(xc, yc, z, (side * 70, sp_y - 5, kz * zlen + 30), (28, 22, 55)) > 0
        hu[kid] = rng.uniform(140, 190)
        hu[kid & (_ellipsoid(xc, yc, z, (side * 62, sp_y - 5, kz * zlen + 30), (10, 8, 30)) > 0)] = 30
    spleen = _ellipsoid(xc, yc, z, (bx0 * 0.55, sp_y - 15, zlen * rng.uniform(0.6, 0.75)), (28, 45, 50))
    hu[spleen + 0.15 * wobble > 0] = rng.uniform(100, 130)

    # Liver: lobes as ellipsoids, merged and perturbed by smooth noise.
    lz = zlen * rng.uniform(0.55, 0.68)
    lobes = [  # right lobe against the right body wall, left lobe across the midline anteriorly
        ((-bx0 * rng.uniform(0.4, 0.52), -by0 * rng.uniform(0.0, 0.2), lz),
         (bx0 * rng.uniform(0.28, 0.38), by0 * rng.uniform(0.5, 0.65), zlen * rng.uniform(0.2, 0.28))),
        ((rng.uniform(-25, 10), -by0 * rng.uniform(0.4, 0.55), lz + zlen * rng.uniform(0.0, 0.08)),
         (bx0 * rng.uniform(0.22, 0.35), by0 * rng.uniform(0.18, 0.3), zlen * rng.uniform(0.08, 0.14))),
    ]
    if rng.random() < 0.6:  # a caudate/inferior tip
        lobes.append(((-bx0 * rng.uniform(0.3, 0.5), -by0 * rng.uniform(-0.1, 0.2),
                       lz - zlen * rng.uniform(0.15, 0.25)),
                      (bx0 * rng.uniform(0.18, 0.28), by0 * rng.uniform(0.3, 0.45), zlen * rng.uniform(0.1, 0.15))))
    lf = functools.reduce(np.maximum, (_ellipsoid(xc, yc, z, c, r) for c, r in lobes))
    lf += 0.35 * _smooth_noise(rng, shape, (max(3, slices // 10), 9, 9))
    liver = (lf > 0) & inner & ~muscle_wall & ~vert
    liver = ndimage.binary_opening(liver, iterations=1)
    liver_hu = rng.uniform(70, 115)
    tex = rng.uniform(12, 22) * _smooth_noise(rng, shape, (max(4, slices // 4), size // 8, size // 8))
    hu[liver] = liver_hu + tex[liver]
    # Vessels inside the liver (portal / hepatic veins): bright tubes, still liver.
    vessel_hu = liver_hu + rng.uniform(40, 90)
    xs, ys, zs = x[0, 0, :], y[0, :, 0], z[:, 0, 0]
    for _ in range(rng.integers(2, 5)):
        c0 = np.array([lobes[0][0][0], lobes[0][0][1], lz]) + rng.normal(0, 15, 3)
        d = rng.normal(0, 1, 3)
        d /= np.linalg.norm(d)
        # Squared distance to the line through c0 along d, separable per axis.
        px_, py_, pz_ = (xs - c0[0]), (ys - c0[1]), (zs - c0[2])
        t = pz_[:, None, None] * d[2] + py_[None, :, None] * d[1] + px_[None, None, :] * d[0]
        r2 = pz_[:, None, None] ** 2 + py_[None, :, None] ** 2 + px_[None, None, :] ** 2 - t ** 2
        hu[(r2 < rng.uniform(9, 25)) & (np.abs(t) < 60) & liver] = vessel_hu

    label = liver.astype(np.uint8)

    # Cyst (labelled liver, as 3D-IRCADb-01 does), sometimes.
    liver_idx = np.argwhere(ndimage.binary_erosion(liver, iterations=max(2, int(10 / px))))
    cyst = None
    if len(liver_idx) and rng.random() < 0.3:
        c = liver_idx[rng.integers(len(liver_idx))]
        cm = (x[0, 0, c[2]], y[0, c[1], 0], z[c[0], 0, 0])
        cyst = (_ellipsoid(xc, yc, z, cm, (rng.uniform(4, 9),) * 3) > 0) & liver
        hu[cyst] = rng.uniform(0, 20)

    # Tumours.
    tumours: list[Tumour] = []
    n_tum = int(rng.choice([0, 1, 1, 2, 2, 3, 4, 5]))
    for _ in range(n_tum):
        if not len(liver_idx):
            break
        c = liver_idx[rng.integers(len(liver_idx))]
        center = (float(x[0, 0, c[2]]), float(y[0, c[1], 0]), float(z[c[0], 0, 0]))
        diam = float(np.exp(rng.uniform(np.log(5), np.log(40))))
        rad = np.array([diam / 2] * 3) * rng.uniform(0.75, 1.25, 3)
        # Work in the lesion's bounding box only.
        ext = rad.max() * 1.6
        lo = [max(0, int((center[2] - ext) / dz)), max(0, int((center[1] - ext - y[0, 0, 0]) / px)),
              max(0, int((center[0] - ext - x[0, 0, 0]) / px))]
        hi = [min(slices, int((center[2] + ext) / dz) + 2), min(size, int((center[1] + ext - y[0, 0, 0]) / px) + 2),
              min(size, int((center[0] + ext - x[0, 0, 0]) / px) + 2)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        bshape = tuple(b - a for a, b in zip(lo, hi, strict=True))
        f = _ellipsoid(x[box], y[box], z[box[0]], center, rad)
        f += 0.35 * _smooth_noise(rng, bshape, tuple(max(2, s // 4) for s in bshape))
        kind = rng.choice(["hypo", "hypo", "hyper", "rim"])
        contrast = {"hypo": rng.uniform(-75, -20), "hyper": rng.uniform(20, 55), "rim": rng.uniform(-60, -25)}[kind]
        margin = rng.uniform(0.05, 0.35)  # blur of the boundary in normalised units
        w = np.clip(f / margin, 0, 1)  # 0 outside .. 1 core
        mask = (f > 0) & liver[box]
        core_tex = 15 * _smooth_noise(rng, bshape, tuple(max(2, s // 2) for s in bshape))
        delta = contrast * w + core_tex * w
        if kind == "rim":
            delta += rng.uniform(40, 80) * ((f > 0) & (f < 0.35))
        sub = hu[box]
        sub[mask] += delta[mask]
        label[box][mask] = TUMOUR
        tumours.append(Tumour(center, diam, float(contrast)))

    # Noise: correlated, as reconstruction kernels make it.
    sigma = rng.uniform(8, 20)
    noise = rng.standard_normal(shape).astype(np.float32)
    noise = ndimage.gaussian_filter(noise, sigma=(0, 0.6, 0.6)) * sigma * 1.8
    hu[body] += noise[body]
    hu = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return PhantomCase(hu=hu, label=label, spacing=(dz, px, px), tumours=tumours,
                       cyst=None if cyst is None else cyst.astype(np.uint8), seed=seed)


def phantom_name(seed: int, index: int) -> str:
    """The case name of a phantom patient: ``phantom-s<seed>-<index>``."""
    return f"phantom-s{seed}-{index}"


def write_patient(case: PhantomCase, out_dir: str | Path, index: int,
                  compresslevel: int = 1, anatomy: bool = False, ct: bool = True) -> Path:
    """Write a case in the 3D-IRCADb-01 layout.

    Writes ``out_dir/phantom-s<seed>-<index>/PATIENT_DICOM.zip`` (``PATIENT_DICOM/image_N``,
    unsigned 16-bit with a -1024 intercept) and ``MASKS_DICOM.zip``
    (``MASKS_DICOM/liver/image_N``, ``livertumor01``..., ``liverkyst``; uint8 0/255,
    stored as CT modality like the real database). Each zip is written atomically.
    ``anatomy`` adds ``skin`` (the body) and ``bone`` masks, as most real patients have;
    ``ct=False`` writes the masks alone, like the label maps of patients without CT.

    The folder, and the patient ID in the DICOM headers, say what it is (``phantom-s7-1``), so
    a phantom can never pass for the real patient ``3Dircadb1.1`` in a dataset or a model card.

    Returns:
        The patient folder.
    """
    folder = Path(out_dir) / phantom_name(case.seed, index)
    folder.mkdir(parents=True, exist_ok=True)
    zs = case.hu.shape[0]
    key = f"phantom-{case.seed}-{index}"
    study, frame = make_uid(key, "study"), make_uid(key, "frame")
    name, pid = f"phantom_{index}^seed_{case.seed}", phantom_name(case.seed, index)
    ox, oy, _ = case.origin

    def series(desc: str, n: int) -> SeriesIds:
        return SeriesIds(study, make_uid(key, desc), frame, name, pid, description=desc, series_number=n)

    def write_zip(path: Path, members) -> None:
        with atomic_open(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED,
                                                            compresslevel=compresslevel) as zf:
            for arcname, data in members:
                zf.writestr(arcname, data)

    ct_ids = series("PATIENT_DICOM", 1)
    stored = (case.hu.astype(np.int32) + 1024).astype(np.uint16)

    def ct_members():
        yield "PATIENT_DICOM/", b""
        for k in range(zs):
            ds = ct_slice(stored[k], ct_ids, k, (ox, oy, k * case.spacing[0]), case.spacing[1:], case.spacing[0],
                          intercept=-1024.0, instance_number=k, window=(40, 400))
            yield f"PATIENT_DICOM/image_{k}", to_bytes(ds)

    masks = {"liver": case.label > 0}
    tumour_labels, n = ndimage.label(case.label == 2)
    for t in range(1, n + 1):
        masks[f"livertumor{t:02d}"] = tumour_labels == t
    if case.cyst is not None and case.cyst.any():
        masks["liverkyst"] = case.cyst > 0
    if anatomy:
        masks["skin"] = ndimage.binary_fill_holes(case.hu > -500, structure=np.ones((1, 3, 3), bool))
        masks["bone"] = case.hu > 180

    def mask_members():
        yield "MASKS_DICOM/", b""
        for s, (mname, m) in enumerate(masks.items()):
            ids = series(mname, 10 + s)
            yield f"MASKS_DICOM/{mname}/", b""
            m8 = m.astype(np.uint8) * 255
            for k in range(zs):
                ds = ct_slice(m8[k], ids, k, (ox, oy, k * case.spacing[0]), case.spacing[1:], case.spacing[0],
                              instance_number=k)
                yield f"MASKS_DICOM/{mname}/image_{k}", to_bytes(ds)

    if ct:
        write_zip(folder / "PATIENT_DICOM.zip", ct_members())
    write_zip(folder / "MASKS_DICOM.zip", mask_members())
    return folder


def write_dataset(out_dir: str | Path, patients: int, seed: int = 0, slices: int = 64, size: int = 256,
                  progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> list[Path]:
    """Write ``patients`` phantom patients (seeds ``seed``, ``seed+1``...) as ``phantom-s<seed+i>-<i+1>``."""
    out = []
    for i in range(patients):
        check(cancel)
        report(progress, "phantom", i, patients, f"patient {i + 1}")
        out.append(write_patient(make_phantom(seed + i, slices, size), out_dir, i + 1))
    report(progress, "phantom", patients, patients)
    return out
