"""Slice ordering and volume geometry from slice headers.

Slices are ordered by their position projected on the slice normal
(cross product of the row and column direction cosines), never by instance
number or file name, unless the files carry no position at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .headers import SliceHeader


@dataclass(frozen=True)
class Geometry:
    """Ordered slices and the volume geometry they define."""

    slices: tuple[SliceHeader, ...]  # in volume z order
    spacing: tuple[float, float, float]  # (z, y, x) mm
    origin: tuple[float, float, float]  # LPS mm of voxel [0, 0, 0]
    direction: np.ndarray  # 3x3, columns: x, y, z index axes in LPS
    warnings: tuple[str, ...]


# DICOM's patient axes (LPS) from NIfTI's (RAS) and back (its own inverse), for 4x4 affines.
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def voxel_to_lps(spacing, origin=(0.0, 0.0, 0.0), direction=None) -> np.ndarray:
    """The one voxel -> patient affine: 4x4 mapping (x, y, z, 1) indices of a [Z, Y, X] array to LPS mm.

    Args:
        spacing: (z, y, x) mm.
        origin: LPS mm of voxel [0, 0, 0].
        direction: 3x3, columns: the x, y, z index axes in LPS (identity when None).
    """
    d = np.eye(3) if direction is None else np.asarray(direction, float)
    sz, sy, sx = spacing
    a = np.eye(4)
    a[:3, :3] = d * np.array([sx, sy, sz])[None, :]
    a[:3, 3] = origin
    return a


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def orientation_key(h: SliceHeader) -> tuple:
    """Rounded orientation, for grouping slices of one stack."""
    return tuple(round(x, 3) for x in h.iop) if h.iop else ()


def compute_geometry(headers: list[SliceHeader]) -> Geometry:
    """Order slices along the normal and derive spacing, origin and direction.

    Duplicate positions keep the first file and add a warning. Uneven spacing,
    missing slices and gantry tilt add warnings; they never fail.
    """
    warns: list[str] = []
    first = headers[0]
    iop = first.iop or (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    row_dir, col_dir = _unit(iop[:3]), _unit(iop[3:6])
    normal = _unit(np.cross(row_dir, col_dir))
    if first.iop is None:
        warns.append("no ImageOrientationPatient: assuming axial slices")

    along = {id(h): float(np.dot(normal, h.ipp)) for h in headers if h.ipp is not None}  # position on the normal
    if len(along) == len(headers):
        keyed = sorted(headers, key=lambda h: along[id(h)])
        pos = np.array([along[id(h)] for h in keyed])
    else:
        warns.append("slices lack ImagePositionPatient: ordered by instance number")
        keyed = sorted(headers, key=lambda h: (h.instance_number is None, h.instance_number or 0, h.name))
        step = first.slice_thickness or 1.0
        pos = np.arange(len(keyed), dtype=float) * step

    # Drop duplicate positions (the same slice stored twice, or repeated acquisitions).
    keep = [0]
    for i in range(1, len(keyed)):
        if abs(pos[i] - pos[keep[-1]]) > 1e-3:
            keep.append(i)
    if len(keep) < len(keyed):
        warns.append(f"{len(keyed) - len(keep)} slice(s) share a position with another: kept the first")
        keyed = [keyed[i] for i in keep]
        pos = pos[keep]

    diffs = np.diff(pos)
    if len(diffs):
        dz = float(np.median(diffs))
        if diffs.max() > 1.5 * dz:
            gaps = int(np.sum(np.round(diffs / dz) - 1)) if dz > 0 else 0
            warns.append(f"missing slices: {max(gaps, 1)} gap(s) in the stack "
                         f"(largest step {diffs.max():.2f} mm, usual {dz:.2f} mm)")
        elif diffs.max() - diffs.min() > max(0.01 * dz, 0.01):
            warns.append(f"uneven slice spacing: steps from {diffs.min():.3f} to {diffs.max():.3f} mm")
    else:
        dz = first.slice_thickness or 1.0

    # Gantry tilt: the stack direction departs from the slice normal.
    tilt = abs(first.gantry_tilt)
    if len(keyed) > 1 and keyed[0].ipp is not None and keyed[-1].ipp is not None:
        stack = np.asarray(keyed[-1].ipp) - np.asarray(keyed[0].ipp)
        if np.linalg.norm(stack) > 0:
            cosang = abs(float(np.dot(_unit(stack), normal)))
            tilt = max(tilt, math.degrees(math.acos(min(1.0, cosang))))
    if tilt > 0.5:
        warns.append(f"gantry tilt of {tilt:.1f} degrees: slices are shown unsheared")

    ps = first.pixel_spacing
    if ps is None or min(ps) <= 0:
        warns.append("no PixelSpacing: assuming 1 mm pixels")
        ps = (1.0, 1.0)
    if dz <= 0:
        dz = first.slice_thickness or 1.0
    ipp0 = keyed[0].ipp or (0.0, 0.0, 0.0)
    origin = (float(ipp0[0]), float(ipp0[1]), float(ipp0[2]))
    direction = np.stack([row_dir, col_dir, normal], axis=1)
    return Geometry(tuple(keyed), (float(dz), float(ps[0]), float(ps[1])), origin, direction, tuple(warns))
