"""core.followup.diameters and core.followup.recist: diameters against drawn truth, categories
exactly by the criteria."""

from __future__ import annotations

import numpy as np
import pytest

from core.followup.diameters import LesionMeasure, axial_diameters, measure_lesions
from core.followup.matching import LesionMatch
from core.followup.recist import assess, categorise, choose_targets, min_measurable_mm, target_rows
from core.followup.timepoint import FollowupError


def les(i: int, mm: float, viable=None, ml: float = 1.0) -> LesionMeasure:
    return LesionMeasure(i, 100, ml, (0, 0, 0), (0, 0, 0), (0, 0), mm, mm / 2, 0, ((0, 0), (0, 0)), 0.0, viable)


def same(b, f, status="same") -> LesionMatch:
    return LesionMatch(status, tuple(b), tuple(f), 1.0 if b and f else None, 1.0, 1.0)


def ellipse_pixels(a_mm, b_mm, deg, px):
    n = int(2 * max(a_mm, b_mm) / px) + 6
    yy, xx = np.mgrid[:n, :n] * px - n * px / 2
    t = np.deg2rad(deg)
    u, v = xx * np.cos(t) + yy * np.sin(t), -xx * np.sin(t) + yy * np.cos(t)
    return np.argwhere((u / a_mm) ** 2 + (v / b_mm) ** 2 <= 1)


@pytest.mark.parametrize("deg", [0, 30, 90])
def test_axial_diameters_of_a_rotated_ellipse_are_within_a_millimetre(deg):
    longest, perp, ends = axial_diameters(ellipse_pixels(12, 7, deg, 0.5), (0.5, 0.5))
    assert abs(longest - 24) <= 1.0 and abs(perp - 14) <= 1.0
    (y0, x0), (y1, x1) = ends
    angle = np.rad2deg(np.arctan2(y1 - y0, x1 - x0)) % 180
    assert min(abs(angle - deg % 180), 180 - abs(angle - deg % 180)) < 8


def test_one_pixel_and_anisotropic_pixels():
    assert axial_diameters([[3, 4]], (0.7, 0.7))[:2] == (0.7, 0.7)
    line = np.stack([np.zeros(10, int), np.arange(10)], 1)
    assert axial_diameters(line, (0.5, 0.5))[:2] == (5.0, 0.5)
    longest, perp, ends = axial_diameters(line[:, ::-1], (2.0, 0.5))  # a column of tall pixels
    assert longest == pytest.approx(18.5) and perp == 0.5 and ends == ((0, 0), (9, 0))


def block(shape=(9, 90, 90), sp=(2.0, 0.6, 0.6)):
    hu = np.full(shape, -100, np.int16)
    label = np.zeros(shape, np.uint8)
    label[:, 5:85, 5:85] = 1
    hu[label == 1] = 80
    zz, yy, xx = np.mgrid[:shape[0], :shape[1], :shape[2]]
    return hu, label, zz * sp[0], yy * sp[1], xx * sp[2], sp


def test_measure_lesions_on_a_fine_grid_and_the_viable_part():
    hu, label, z, y, x, sp = block()
    inside = ((x - 27) / 12) ** 2 + ((y - 27) / 8) ** 2 + ((z - 8) / 6) ** 2 <= 1  # 24 x 16 mm
    label[inside] = 2
    hu[inside] = 20  # necrotic ...
    hu[inside & (x < 27)] = 150  # ... with an enhancing half: viable 12 mm along x, 16 along y
    hu[inside & (x < 18) & (np.abs(y - 27) < 2)] = 600  # a lipiodol spot: dense, not viable
    small = ((x - 40) / 3) ** 2 + ((y - 40) / 3) ** 2 + ((z - 8) / 3) ** 2 <= 1
    label[small], hu[small] = 2, 40
    found, comp = measure_lesions(hu, label, sp, viable=True)
    assert [f.id for f in found] == [1, 2] and comp.max() == 2 and (comp == 1).sum() == found[0].voxels
    big = found[0]
    assert abs(big.longest_mm - 24) <= 1.0 and abs(big.perpendicular_mm - 16) <= 1.0
    assert big.axis_slice == 4 and big.volume_ml == pytest.approx(4 / 3 * np.pi * 12 * 8 * 6 / 1000, rel=0.05)
    assert abs(big.viable_mm - 16) <= 1.0  # the half's longest diameter: along y, 16 mm
    assert found[1].viable_mm == 0.0  # no enhancement
    plain, _ = measure_lesions(hu, label, sp)
    assert plain[0].viable_mm is None and plain[0].longest_mm == big.longest_mm


def test_measurable_size_follows_the_slice_thickness():
    assert min_measurable_mm(1.0) == 10 and min_measurable_mm(5.0) == 10 and min_measurable_mm(7.0) == 14


def test_targets_are_the_two_largest_measurable_and_the_reader_can_choose():
    lesions = [les(1, 30, viable=0), les(2, 9.5), les(3, 12, viable=11), les(4, 22, viable=15)]
    assert choose_targets(lesions, 2.5)[0] == (1, 4)
    assert choose_targets(lesions, 7.0)[0] == (1, 4)
    assert choose_targets([les(1, 12), les(2, 13)], 7.0)[0] == ()  # under 14 mm with 7 mm slices
    assert choose_targets(lesions, 2.5, "mrecist")[0] == (4, 3)  # enhancing, by viable diameter
    ids, notes = choose_targets(lesions, 2.5, override=[2, 3])
    assert ids == (2, 3) and any("under the measurable" in n for n in notes)
    with pytest.raises(FollowupError, match="lesions"):
        choose_targets(lesions, 2.5, override=[9])
    with pytest.raises(FollowupError, match="at most 2"):
        choose_targets(lesions, 2.5, override=[1, 3, 4])


def rows(base, follow):
    return [target_rows([i + 1], [les(i + 1, b)], [les(i + 1, f)], [same([i + 1], [i + 1] if f else [])],
                        "recist")[0] for i, (b, f) in enumerate(zip(base, follow, strict=True))]


@pytest.mark.parametrize("base, follow, new, criteria, expected", [
    ([30, 20], [0, 0], [], "recist", "CR"),
    ([30, 20], [21, 14], [], "recist", "PR"),  # exactly -30 %
    ([30, 20], [22, 14], [], "recist", "SD"),  # -28 %
    ([30, 20], [36, 24], [], "recist", "PD"),  # +20 % and +10 mm
    ([15, 10], [18, 12], [], "recist", "PD"),  # exactly +20 % and +5 mm
    ([10, 10], [12, 12.5], [], "recist", "SD"),  # +22.5 % but +4.5 mm ...
    ([10, 10], [12, 12], [], "recist", "SD"),  # ... +20 % but only +4 mm: RECIST 1.1 wants 5 mm
    ([10, 10], [12, 12], [], "mrecist", "PD"),  # mRECIST does not
    ([30, 20], [10, 5], [7], "recist", "PD"),  # a new lesion
    ([30, 20], [0, 0], [7], "recist", "PD"),  # no CR with a new lesion
    ([], [], [], "recist", "NE"),
    ([0.0], [0.0], [], "mrecist", "NE"),  # the reader's target never enhanced: no CR out of nothing
])
def test_categories_follow_the_criteria_exactly(base, follow, new, criteria, expected):
    r = rows(base, follow)
    category, why = categorise(criteria, r, new)
    assert category == expected, why
    assert why


def test_split_and_merged_targets_and_new_lesions():
    base = [les(1, 30), les(2, 20), les(3, 15)]
    follow = [les(1, 40), les(2, 12), les(3, 9), les(4, 11), les(5, 6)]
    matches = [same([1, 2], [1], "merged"), same([3], [2, 3], "split"), same([], [4], "new"), same([], [5], "new")]
    rs = target_rows([1, 2], base, follow, matches, "recist")
    assert [(r.followup_ids, r.followup_mm) for r in rs] == [((1,), 40.0), ((), 0.0)]
    r3 = target_rows([3], base, follow, matches, "recist")[0]
    assert r3.followup_mm == 21 and r3.status == "split"
    resp = assess("recist", base, follow, matches, 2.5)
    assert resp.category == "PD" and resp.new_lesions == (4,) and resp.equivocal_new == (5,)
    assert resp.baseline_sum_mm == 50 and resp.followup_sum_mm == 40
    assert any("equivocal" in b for b in resp.basis)
    j = resp.to_json()
    assert j["category"] == "PD" and j["targets_chosen_by"] == "software" and "Eisenhauer" in j["version"]
    quiet = assess("recist", base, follow, matches[:2] + [same([], [5], "new")], 2.5, override=[3])
    assert quiet.category == "PD" and quiet.chosen_by == "reader"  # 15 -> 21 mm: +40 %, +6 mm
