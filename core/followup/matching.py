"""Which follow-up lesion is which baseline lesion, after registration.

Why: every response criterion compares the same lesion at two time points, and counts the lesions
that appeared. The rule, applied after the follow-up is registered to the baseline:

1. overlap: each lesion's voxels are mapped into the other study (their LPS positions through the
   transform, rounded to the nearest voxel there); a baseline and a follow-up lesion are linked when
   at least :data:`MIN_OVERLAP` of either one's voxels fall in the other;
2. distance: a lesion that overlaps nothing is linked to the nearest lesion that overlaps nothing
   either on the other side, when their centroids lie within ``max(MIN_DISTANCE_MM,
   DISTANCE_FACTOR x the larger longest diameter)`` of each other after registration (a lesion that
   shrank a lot, or a small one after a less exact registration);
3. the links group lesions: one baseline with one follow-up lesion is the ``same`` lesion; a
   follow-up lesion linked to nothing is ``new``; a baseline lesion linked to nothing is ``gone``;
   several baseline lesions in one follow-up lesion ``merged``; one baseline lesion in several
   follow-up lesions ``split``; several with several ``regrouped`` (the reader decides).

Distances are measured in the baseline's space: the follow-up centroid mapped back, in mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .diameters import LesionMeasure
from .registration import Grid, Registration

Status = Literal["same", "new", "gone", "merged", "split", "regrouped"]
MIN_OVERLAP = 0.1
MIN_DISTANCE_MM = 10.0
DISTANCE_FACTOR = 0.75


@dataclass(frozen=True)
class LesionMatch:
    """One group of lesions that are the same disease at both time points.

    Attributes:
        status: see the module.
        baseline_ids, followup_ids: the lesions in the group (ids of each study's lesion table).
        distance_mm: between the group's volume-weighted centroids after registration (None for
            new and gone lesions).
        baseline_ml, followup_ml: the group's volume at each time point.
        overlap: the largest share of one lesion's voxels found in the other after registration.
    """

    status: Status
    baseline_ids: tuple[int, ...]
    followup_ids: tuple[int, ...]
    distance_mm: float | None
    baseline_ml: float
    followup_ml: float
    overlap: float = 0.0

    @property
    def volume_change_ml(self) -> float:
        return self.followup_ml - self.baseline_ml

    @property
    def volume_change_pct(self) -> float | None:
        return None if self.baseline_ml <= 0 else 100.0 * self.volume_change_ml / self.baseline_ml

    def to_json(self) -> dict:
        pct = self.volume_change_pct
        return {"status": self.status, "baseline_ids": list(self.baseline_ids), "followup_ids": list(self.followup_ids),
                "distance_mm": None if self.distance_mm is None else round(self.distance_mm, 2),
                "baseline_ml": round(self.baseline_ml, 4), "followup_ml": round(self.followup_ml, 4),
                "volume_change_ml": round(self.volume_change_ml, 4),
                "volume_change_pct": None if pct is None else round(pct, 2), "overlap": round(self.overlap, 3)}


def _hits(comp_from: np.ndarray, grid_from: Grid, comp_to: np.ndarray, grid_to: Grid, matrix: np.ndarray,
          n_from: int, n_to: int) -> np.ndarray:
    """[n_from + 1, n_to + 1] counts: voxels of each lesion of one study landing in each lesion of the other."""
    counts = np.zeros((n_from + 1, n_to + 1), np.int64)
    zyx = np.argwhere(comp_from > 0)
    if not len(zyx) or not n_to:
        return counts
    ids = comp_from[tuple(zyx.T)]
    lps = grid_from.to_lps(zyx)
    there = np.rint(grid_to.to_voxel(lps @ matrix[:3, :3].T + matrix[:3, 3])).astype(np.int64)
    inside = np.all((there >= 0) & (there < np.asarray(comp_to.shape)), axis=1)
    to = np.zeros(len(zyx), np.int64)
    to[inside] = comp_to[tuple(there[inside].T)]
    np.add.at(counts, (ids, to), 1)
    return counts


def match_lesions(baseline: Sequence[LesionMeasure], base_comp: np.ndarray, base_grid: Grid,
                  followup: Sequence[LesionMeasure], follow_comp: np.ndarray, follow_grid: Grid,
                  registration: Registration) -> list[LesionMatch]:
    """Match the lesions (each study's :func:`core.followup.diameters.measure_lesions` output) after
    ``registration``; groups in the order of their first baseline lesion, new lesions last."""
    nb, nf = len(baseline), len(followup)
    m = registration.m
    fwd = _hits(base_comp, base_grid, follow_comp, follow_grid, m, nb, nf)  # baseline voxels in follow-up lesions
    back = _hits(follow_comp, follow_grid, base_comp, base_grid, np.linalg.inv(m), nf, nb)
    vb = np.array([0] + [les.voxels for les in baseline], float)
    vf = np.array([0] + [les.voxels for les in followup], float)
    share = np.zeros((nb + 1, nf + 1))
    if nb and nf:
        share[1:, 1:] = np.maximum(fwd[1:, 1:] / vb[1:, None], back[1:, 1:].T / vf[None, 1:])
    links = {(i, j) for i in range(1, nb + 1) for j in range(1, nf + 1) if share[i, j] >= MIN_OVERLAP}
    cb = np.array([les.centroid_lps for les in baseline]).reshape(-1, 3)
    cf = registration.to_baseline(np.array([les.centroid_lps for les in followup]).reshape(-1, 3)) if nf else cb[:0]
    # lesions that overlap nothing: nearest free partner within a size-scaled distance
    free_b = [i for i in range(1, nb + 1) if not any(a == i for a, _ in links)]
    free_f = {j for j in range(1, nf + 1) if not any(b == j for _, b in links)}
    pairs = sorted((float(np.linalg.norm(cb[i - 1] - cf[j - 1])), i, j) for i in free_b for j in free_f)
    used_b: set[int] = set()
    for d, i, j in pairs:
        if i in used_b or j not in free_f:
            continue
        limit = max(MIN_DISTANCE_MM, DISTANCE_FACTOR * max(baseline[i - 1].longest_mm, followup[j - 1].longest_mm))
        if d <= limit:
            links.add((i, j))
            used_b.add(i)
            free_f.discard(j)
    return _groups(baseline, followup, links, share, cb, cf)


def _groups(baseline, followup, links: set[tuple[int, int]], share: np.ndarray, cb: np.ndarray,
            cf: np.ndarray) -> list[LesionMatch]:
    """The connected groups of the bipartite link graph, each as a :class:`LesionMatch`."""
    nb, nf = len(baseline), len(followup)
    parent = list(range(nb + nf + 1))  # union-find: baseline i is node i, follow-up j is node nb + j

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in links:
        parent[find(i)] = find(nb + j)
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(1, nb + 1):
        groups.setdefault(find(i), ([], []))[0].append(i)
    for j in range(1, nf + 1):
        groups.setdefault(find(nb + j), ([], []))[1].append(j)
    out = []
    for bs, fs in groups.values():
        vol_b = sum(baseline[i - 1].volume_ml for i in bs)
        vol_f = sum(followup[j - 1].volume_ml for j in fs)
        if not fs:
            status, dist = "gone", None
        elif not bs:
            status, dist = "new", None
        else:
            status = ("same" if len(bs) == 1 and len(fs) == 1 else "merged" if len(fs) == 1
                      else "split" if len(bs) == 1 else "regrouped")
            wb = np.array([baseline[i - 1].voxels for i in bs], float)
            wf = np.array([followup[j - 1].voxels for j in fs], float)
            pb = (cb[[i - 1 for i in bs]] * wb[:, None]).sum(0) / wb.sum()
            pf = (cf[[j - 1 for j in fs]] * wf[:, None]).sum(0) / wf.sum()
            dist = float(np.linalg.norm(pb - pf))
        ov = float(max((share[i, j] for i in bs for j in fs), default=0.0))
        out.append(LesionMatch(status, tuple(bs), tuple(fs), dist, vol_b, vol_f, ov))  # type: ignore[arg-type]
    out.sort(key=lambda g: (not g.baseline_ids, g.baseline_ids[:1] or g.followup_ids[:1]))
    return out
