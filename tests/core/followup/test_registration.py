"""core.followup.registration: a moved follow-up is brought back onto the baseline within 2 mm."""

from __future__ import annotations

import numpy as np
import pytest

from core.evaluation.metrics import dice
from core.followup.registration import Grid, Registration, register, warp_label
from core.runtime.errors import Cancelled
from core.runtime.jobs import CancelToken
from tests.core.followup.pairs import Lesion, make_pair


@pytest.fixture(scope="module")
def pair():
    return make_pair([Lesion("a", (15, 11, 10), (9, 7, 6)), Lesion("b", (8, 6, 6), (12, 9, 8))])


def true_map(pair, pts):
    return pts @ pair.matrix[:3, :3].T + pair.matrix[:3, 3]


def test_the_transform_is_within_2_mm_everywhere_in_the_liver(pair):
    b, f = pair.baseline, pair.followup
    events = []
    reg = register(b.hu, b.grid, f.hu, f.grid, b.label > 0, f.label > 0, progress=events.append)
    pts = b.grid.to_lps(np.argwhere(b.label > 0)[::7])
    err = np.linalg.norm(reg.to_followup(pts) - true_map(pair, pts), axis=1)
    assert err.max() <= 2.0, err.max()
    back = reg.to_baseline(reg.to_followup(pts))
    assert np.allclose(back, pts, atol=1e-6)
    # the kept transform is the one that fits the livers best, and never worse than the moments alone
    initial, rigid = reg.fit("initial"), reg.fit("rigid")
    assert rigid.liver_dice > initial.liver_dice and rigid.liver_msd_mm < initial.liver_msd_mm
    affine = reg.fit("affine")
    kept = reg.fit(reg.kind)
    if reg.kind == "rigid":
        assert affine.liver_dice < rigid.liver_dice or affine.liver_msd_mm > rigid.liver_msd_mm
    assert kept.liver_dice >= 0.97
    assert events[-1].stage == "register" and events[-1].done == events[-1].total
    j = reg.to_json()
    assert j["kind"] == reg.kind and len(j["matrix_lps_mm"]) == 4 and [x["stage"] for x in j["fits"]] == [
        "initial", "rigid", "affine"]


def test_warp_label_brings_the_followup_liver_onto_the_baseline(pair):
    b, f = pair.baseline, pair.followup
    before = dice(b.label > 0, f.label > 0)
    warped = warp_label(f.label, f.grid, b.label.shape, b.grid, pair.matrix)
    assert warped.dtype == np.uint8 and set(np.unique(warped)) <= {0, 1, 2}
    assert dice(b.label > 0, warped > 0) > max(before + 0.05, 0.97)


def test_points_and_voxels_round_trip_through_a_grid():
    g = Grid.of((2.5, 0.8, 0.7), (-100.0, 50.0, 12.0), np.array([[0, 1.0, 0], [-1.0, 0, 0], [0, 0, 1.0]]))
    zyx = np.array([[0, 0, 0], [3, 10, 20.5]])
    lps = g.to_lps(zyx)
    assert np.allclose(lps[0], (-100, 50, 12))
    assert np.allclose(lps[1], (-100 + 10 * 0.8, 50 - 20.5 * 0.7, 12 + 7.5))
    assert np.allclose(g.to_voxel(lps), zyx)
    r = Registration(tuple(map(tuple, np.eye(4))), "rigid")
    assert np.allclose(r.to_baseline(lps), lps)


def test_without_livers_the_images_alone_register_rigidly(pair):
    b, f = pair.baseline, pair.followup
    reg = register(b.hu, b.grid, f.hu, f.grid, affine=True)
    assert reg.kind == "rigid" and reg.fit("rigid").liver_dice is None and reg.fit("affine") is None
    pts = b.grid.to_lps(np.argwhere(b.label > 0)[::13])
    assert np.linalg.norm(reg.to_followup(pts) - true_map(pair, pts), axis=1).max() <= 3.0


def test_cancel_stops_the_registration(pair):
    b, f = pair.baseline, pair.followup
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        register(b.hu, b.grid, f.hu, f.grid, b.label > 0, f.label > 0, cancel=token)
