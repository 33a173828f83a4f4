"""Slices along z at physical distances: the 2.5D channels in mm, and thick-slice scans.

A lab's CT differs from 3D-IRCADb-01's in slice thickness (0.6-6 mm). With these functions a
model sees anatomy at one physical scale whatever the scan:

* :func:`channel_weights`: the 2.5D channels of a slice taken at fixed distances in **mm**
  (interpolated between slices), optionally as a thick-slice scan would show them (each of its
  slices the average of a slab of the thin one). Training (:mod:`core.training.loader`) and
  inference (:func:`core.transforms.preprocess.normalised_stack`) both read their channels
  through it;
* :func:`resample_thickness`: a whole volume resampled to thicker slices (slab average), with its
  label map (nearest slab centre): the thick-slice proxies of :mod:`core.synthetic.acquisition`.

Positions along z are ``index * dz`` (mm); a slice covers ``[z - dz/2, z + dz/2]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _slab(nz: int, dz: float, q: float, thickness: float | None) -> dict[int, float]:
    """Weights over native slices of the value at position ``q`` mm of a scan whose slices are
    ``thickness`` mm thick (None or <= dz: the native scan, linear interpolation), clamped inside."""
    top = (nz - 1) * dz
    if thickness is None or thickness <= dz * 1.001:
        u = min(max(q / dz, 0.0), nz - 1.0)
        i0 = int(np.floor(u))
        f = u - i0
        if f < 1e-6 or i0 + 1 >= nz:
            return {i0: 1.0}
        return {i0: 1.0 - f, i0 + 1: f}
    lo = max(q - thickness / 2, -dz / 2)
    hi = min(q + thickness / 2, top + dz / 2)
    if hi <= lo:  # the slab lies outside the volume: the nearest edge slice
        return {0 if q < 0 else nz - 1: 1.0}
    out: dict[int, float] = {}
    for i in range(max(0, int(np.floor((lo + dz / 2) / dz))), min(nz, int(np.ceil((hi + dz / 2) / dz)))):
        overlap = min(hi, i * dz + dz / 2) - max(lo, i * dz - dz / 2)
        if overlap > 1e-9:
            out[i] = overlap
    total = sum(out.values())
    return {i: v / total for i, v in out.items()}


def channel_weights(nz: int, dz: float, centre: int, offsets_mm: Sequence[float],
                    thickness_mm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which native slices make each channel of slice ``centre``, and with what weights.

    Channel ``k`` shows position ``centre * dz + offsets_mm[k]``. Without ``thickness_mm`` (a
    study as it is), that is a linear interpolation between the two nearest slices. With it
    (training: simulating a thicker scan of the same patient), the channel is what a scan with
    ``thickness_mm`` slices, one of them centred on ``centre``, would show there after the same
    interpolation: each of its slices the mean of a slab of the native slices.

    Args:
        nz: slices in the volume; dz: their spacing, mm.
        centre: the slice the prediction is for.
        offsets_mm: [C] channel positions relative to it, mm (e.g. (-2, 0, 2)).
        thickness_mm: simulated slice thickness (and spacing), or None.

    Returns:
        (idx int [C, K], w float32 [C, K]): channel k = sum_j w[k, j] * slice[idx[k, j]];
        each row sums to 1; unused entries have weight 0.
    """
    thick = thickness_mm if thickness_mm is not None and thickness_mm > dz * 1.001 else None
    c = centre * dz
    rows = []
    for off in offsets_mm:
        if thick is None:
            rows.append(_slab(nz, dz, c + off, None))
            continue
        u = off / thick
        j0 = int(np.floor(u))
        f = u - j0
        row: dict[int, float] = {}
        for j, wj in ((j0, 1.0 - f), (j0 + 1, f)):
            if wj < 1e-6:
                continue
            for i, v in _slab(nz, dz, c + j * thick, thick).items():
                row[i] = row.get(i, 0.0) + wj * v
        rows.append(row)
    k = max(len(r) for r in rows)
    idx = np.full((len(rows), k), centre, np.int64)
    w = np.zeros((len(rows), k), np.float32)
    for ch, row in enumerate(rows):
        for j, (i, v) in enumerate(sorted(row.items())):
            idx[ch, j], w[ch, j] = i, v
    return idx, w


def channel_table(nz: int, dz: float, offsets_mm: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`channel_weights` of every slice of a study (no thickness simulation), padded to one
    K: (idx int [Z, C, K], w float32 [Z, C, K])."""
    parts = [channel_weights(nz, dz, z, offsets_mm) for z in range(nz)]
    k = max(p[0].shape[1] for p in parts)
    idx = np.empty((nz, len(offsets_mm), k), np.int64)
    w = np.zeros((nz, len(offsets_mm), k), np.float32)
    for z, (i, v) in enumerate(parts):
        idx[z] = z
        idx[z, :, :i.shape[1]], w[z, :, :i.shape[1]] = i, v
    return idx, w


def resample_thickness(hu: np.ndarray, label: np.ndarray | None, dz: float,
                       thickness_mm: float) -> tuple[np.ndarray, np.ndarray | None, float]:
    """A thick-slice version of a volume: slices ``thickness_mm`` apart and thick, each the mean of
    its slab of native slices (int16 HU, rounded); the label of each is the native label at its
    centre (nearest slice). The first thick slice is centred on the first native one.

    Returns:
        (hu [Z', Y, X] int16, label [Z', Y, X] or None, new spacing along z in mm).
    """
    nz = hu.shape[0]
    n_out = int(np.floor((nz - 1) * dz / thickness_mm)) + 1
    out = np.empty((n_out,) + hu.shape[1:], np.int16)
    lab = np.empty((n_out,) + label.shape[1:], label.dtype) if label is not None else None
    for j in range(n_out):
        q = j * thickness_mm
        acc = np.zeros(hu.shape[1:], np.float32)
        for i, v in _slab(nz, dz, q, thickness_mm).items():
            acc += v * hu[i]
        out[j] = np.rint(acc)
        if lab is not None and label is not None:
            lab[j] = label[min(nz - 1, int(round(q / dz)))]
    return out, lab, float(thickness_mm)
