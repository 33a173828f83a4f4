"""Surfaces of a label volume for the 3D view (no Qt): the liver and each lesion as triangle meshes.

scikit-image's ``marching_cubes`` on the label's bounding box: the liver (tumours included) on a
grid coarsened so that its largest side has at most ``LIVER_GRID`` voxels (a whole 512 x 512 x 130
study in a fraction of a second, bench/benchmarks/surfaces_bench.py), each lesion at full resolution in its
own box. Coordinates are millimetres in the study's voxel frame, which is LPS-like and right-handed
for a DICOM series: X the column (to the patient's left), Y the row (to the back), Z the slice (to
the head, as the DICOM loader orders slices); a camera in front (-Y) shows the patient's right on
the screen's left, as a radiologist expects. Each lesion mesh carries its anchor (the lesion's voxel
nearest its centroid, :mod:`core.study.review`), its centre and radius, so a click on it can name the lesion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..evaluation.metrics import lesion_components
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..runtime.labels import TUMOUR
from ..transforms.masks import crop_box

LIVER_GRID = 160
MAX_LESIONS = 100


@dataclass
class Mesh:
    """One surface: ``vertices`` (N, 3) float32 mm in the display frame, ``faces`` (M, 3) int32;
    ``kind`` "liver" or "tumor"; for a lesion its ``anchor`` (z, y, x), ``centre`` (display mm)
    and ``radius`` (mm, of the sphere of its volume)."""

    vertices: np.ndarray
    faces: np.ndarray
    kind: str
    anchor: tuple | None = None
    centre: np.ndarray | None = None
    radius: float = 0.0


def to_display(zyx_mm: np.ndarray, shape_mm=None) -> np.ndarray:
    """(z, y, x) mm -> display (X, Y, Z) = (x, y, z) mm (no mirroring: the frame stays right-handed)."""
    return np.ascontiguousarray(zyx_mm[:, ::-1], dtype=np.float32)


def _surface(mask: np.ndarray, offset, spacing, step: int, shape_mm) -> tuple | None:
    from skimage.measure import marching_cubes
    padded = np.pad(mask, 1).astype(np.float32)  # closed surfaces at the box's border
    if padded.shape[0] < 2 or min(padded.shape) < 2 or not mask.any():
        return None
    try:
        verts, faces, _, _ = marching_cubes(padded, 0.5, spacing=tuple(float(s) for s in spacing), step_size=step,
                                            allow_degenerate=False)
    except (ValueError, RuntimeError):  # too small for the grid
        return None
    verts = verts - np.asarray(spacing, float) + np.asarray(offset, float) * np.asarray(spacing, float)
    # (z, y, x) -> (x, y, z) mirrors the space: reverse the triangles' winding so that their normals
    # (from the winding) point outwards again, and the surfaces are lit from outside
    return to_display(verts, shape_mm), np.ascontiguousarray(faces[:, ::-1], dtype=np.int32)


def label_meshes(label: np.ndarray, spacing, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None, lesions: list | None = None) -> list[Mesh]:
    """The liver's mesh, then one mesh per lesion (largest first, at most ``MAX_LESIONS``).
    ``lesions``: the lesion records of the label when already measured (their anchors are used)."""
    shape_mm = np.asarray(label.shape, float) * np.asarray(spacing, float)
    out: list[Mesh] = []
    fg = label > 0
    box = crop_box(fg)
    if box is None:
        return out
    report(progress, "surfaces", 0, 2, "liver")
    sub = fg[box]
    step = max(1, int(np.ceil(max(sub.shape[1:]) / LIVER_GRID)))
    s = _surface(sub, [b.start for b in box], spacing, step, shape_mm)
    if s is not None:
        out.append(Mesh(s[0], s[1], "liver"))
    check(cancel)
    report(progress, "surfaces", 1, 2, "lesions")
    recs, comps = lesion_components(label == TUMOUR, spacing)
    objects = ndimage.find_objects(comps)
    for r in recs[:MAX_LESIONS]:
        check(cancel)
        sl = objects[r["_label"] - 1]
        s = _surface(comps[sl] == r["_label"], [b.start for b in sl], spacing, 1, shape_mm)
        if s is None:
            continue
        centre = to_display((np.asarray(r["centroid"]) * np.asarray(spacing))[None], shape_mm)[0]
        radius = float((3 * r["volume_ml"] * 1000 / (4 * np.pi)) ** (1 / 3))
        out.append(Mesh(s[0], s[1], "tumor", tuple(r["anchor"]), centre, radius))
    report(progress, "surfaces", 2, 2)
    return out
