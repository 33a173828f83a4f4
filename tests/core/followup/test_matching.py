"""core.followup.matching: the same, new, gone, merged and split lesions of a moved follow-up."""

from __future__ import annotations

import numpy as np
import pytest

from core.followup.diameters import measure_lesions
from core.followup.matching import match_lesions
from core.followup.registration import Grid, Registration, register
from tests.core.followup.pairs import Lesion, make_pair

LESIONS = [Lesion("shrunk", (15, 11, 10), (9, 6.6, 6)), Lesion("grown", (8, 6, 6), (12, 9, 8)),
           Lesion("gone", (7, 5, 5), None), Lesion("new", None, (7, 6, 6))]


@pytest.fixture(scope="module")
def matched():
    p = make_pair(LESIONS)
    b, f = p.baseline, p.followup
    reg = register(b.hu, b.grid, f.hu, f.grid, b.label > 0, f.label > 0)
    bl, bc = measure_lesions(b.hu, b.label, b.spacing, b.grid)
    fl, fc = measure_lesions(f.hu, f.label, f.spacing, f.grid)
    return p, reg, bl, fl, match_lesions(bl, bc, b.grid, fl, fc, f.grid, reg)


def which(lesions, grid, centre) -> int:
    """The id of the measured lesion nearest a true centre."""
    return min(lesions, key=lambda les: np.linalg.norm(np.asarray(les.centroid_lps) - centre)).id


def test_every_lesion_is_matched_as_it_truly_changed(matched):
    p, reg, bl, fl, matches = matched
    assert len(bl) == 3 and len(fl) == 3
    m = p.matrix
    ids_b = {les.name: which(bl, p.baseline.grid, p.centres[les.name]) for les in LESIONS if les.base}
    ids_f = {les.name: which(fl, p.followup.grid, m[:3, :3] @ p.centres[les.name] + m[:3, 3])
             for les in LESIONS if les.follow}
    got = {(g.status, g.baseline_ids, g.followup_ids) for g in matches}
    assert got == {("same", (ids_b["shrunk"],), (ids_f["shrunk"],)), ("same", (ids_b["grown"],), (ids_f["grown"],)),
                   ("gone", (ids_b["gone"],), ()), ("new", (), (ids_f["new"],))}
    for g in matches:
        if g.status == "same":
            assert g.distance_mm < 3.0 and g.overlap > 0.3
        else:
            assert g.distance_mm is None
    grown = next(g for g in matches if g.baseline_ids == (ids_b["grown"],))
    assert grown.volume_change_ml > 0 and grown.volume_change_pct == pytest.approx(
        100 * (1.5 * 1.5 * 8 / 6 - 1), rel=0.35)
    assert matches[-1].status == "new"


def test_diameters_at_both_time_points_are_within_a_voxel_of_the_truth(matched):
    p, reg, bl, fl, matches = matched
    voxel = max(p.baseline.spacing[1:])  # 3.1 mm pixels: one voxel is more than 1 mm
    m = p.matrix
    for les in LESIONS:
        for when, found, grid, centre in (("base", bl, p.baseline.grid, p.centres[les.name]),
                                          ("follow", fl, p.followup.grid, m[:3, :3] @ p.centres[les.name] + m[:3, 3])):
            if (les.base if when == "base" else les.follow) is None:
                continue
            got = next(x for x in found if x.id == which(found, grid, centre))
            long_true, perp_true = les.diameters(when)
            assert abs(got.longest_mm - long_true) <= max(1.0, voxel), (les.name, when, got.longest_mm)
            assert abs(got.perpendicular_mm - perp_true) <= max(1.0, voxel), (les.name, when, got.perpendicular_mm)


def blobs(centres_radii, shape=(12, 60, 60)):
    label = np.ones(shape, np.uint8)
    zz, yy, xx = np.mgrid[:shape[0], :shape[1], :shape[2]]
    for (z, y, x), (rz, ry, rx) in centres_radii:
        label[((zz - z) / rz) ** 2 + ((yy - y) / ry) ** 2 + ((xx - x) / rx) ** 2 <= 1] = 2
    return label


def test_merged_and_split_lesions():
    g = Grid.of((2.0, 1.0, 1.0))
    ident = Registration(tuple(map(tuple, np.eye(4))), "rigid")
    two = blobs([((6, 30, 18), (3, 6, 6)), ((6, 30, 40), (3, 6, 6)), ((6, 10, 50), (2, 3, 3))])
    one = blobs([((6, 30, 29), (3, 8, 18)), ((6, 10, 50), (2, 3, 3))])
    hu = np.zeros(two.shape, np.int16)
    a, ac = measure_lesions(hu, two, g.spacing, g)
    b, bc = measure_lesions(hu, one, g.spacing, g)
    merged = match_lesions(a, ac, g, b, bc, g, ident)
    assert [(x.status, x.baseline_ids, x.followup_ids) for x in merged] == [("merged", (1, 2), (1,)),
                                                                             ("same", (3,), (2,))]
    split = match_lesions(b, bc, g, a, ac, g, ident)
    assert [(x.status, x.baseline_ids, x.followup_ids) for x in split] == [("split", (1,), (1, 2)),
                                                                            ("same", (2,), (3,))]
    assert split[0].distance_mm < 1.0 and split[0].to_json()["status"] == "split"


def test_a_lesion_that_shrank_off_its_old_place_is_still_matched_by_distance():
    g = Grid.of((2.0, 1.0, 1.0))
    ident = Registration(tuple(map(tuple, np.eye(4))), "rigid")
    before = blobs([((6, 30, 20), (3, 4, 4))])
    after = blobs([((6, 30, 28), (2, 2, 2))])  # 8 mm away, no overlap: within max(10 mm, 0.75 x 9 mm)
    hu = np.zeros(before.shape, np.int16)
    a, ac = measure_lesions(hu, before, g.spacing, g)
    b, bc = measure_lesions(hu, after, g.spacing, g)
    m = match_lesions(a, ac, g, b, bc, g, ident)
    assert [(x.status, x.overlap) for x in m] == [("same", 0.0)] and m[0].distance_mm == pytest.approx(8, abs=0.5)
    far = blobs([((6, 30, 50), (2, 2, 2))])  # 30 mm away: gone, and a new one
    b, bc = measure_lesions(hu, far, g.spacing, g)
    assert [x.status for x in match_lesions(a, ac, g, b, bc, g, ident)] == ["gone", "new"]
