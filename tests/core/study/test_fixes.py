"""core.study.fixes: one-click corrections on tiny exact arrays (seed inside, outside, on an edge,
on background: a clear message and no change)."""

from __future__ import annotations

import numpy as np
import pytest

from core.study.editing import LabelEditor
from core.study.fixes import FixError, add_lesion, component_at, grow_lesion, remove_region, shrink_lesion
from core.study.review import apply_fix

SP = (1.0, 1.0, 1.0)


def liver_with_missed_lesion():
    """A 9 x 32 x 32 liver block at 60 HU holding a dark sphere (r 4, 10 HU) not in the label."""
    hu = np.full((9, 32, 32), -100, np.int16)
    label = np.zeros(hu.shape, np.uint8)
    hu[:, 4:28, 4:28] = 60
    label[:, 4:28, 4:28] = 1
    zz, yy, xx = np.ogrid[:9, :32, :32]
    sphere = (zz - 4) ** 2 + (yy - 16) ** 2 + (xx - 16) ** 2 <= 16
    hu[sphere] = 10
    return hu, label, sphere


def test_add_lesion_grows_the_missed_sphere_from_one_click():
    hu, label, sphere = liver_with_missed_lesion()
    fix = add_lesion(hu, label, (4, 16, 17), SP)
    got = np.zeros(label.shape, bool)
    got.reshape(-1)[fix.flat] = True
    dice = 2 * (got & sphere).sum() / (got.sum() + sphere.sum())
    assert dice > 0.9 and fix.value == 2 and "mL added" in fix.message
    ed = LabelEditor(label)
    assert apply_fix(ed, fix) == len(fix.flat) and (label == 2).sum() == len(fix.flat)
    assert ed.undo() and not (label == 2).any()


@pytest.mark.parametrize("seed, message", [((4, 1, 1), "outside the liver"), ((4, 40, 1), "outside the volume"),
                                           ((4, 6, 6), "looks like the liver")])
def test_add_lesion_refuses_clicks_where_it_cannot_act(seed, message):
    hu, label, _ = liver_with_missed_lesion()
    before = label.copy()
    with pytest.raises(FixError, match=message):
        add_lesion(hu, label, seed, SP)
    np.testing.assert_array_equal(label, before)


def test_add_lesion_on_an_existing_lesion_says_grow():
    hu, label, sphere = liver_with_missed_lesion()
    label[sphere] = 2
    with pytest.raises(FixError, match="Grow"):
        add_lesion(hu, label, (4, 16, 16), SP)


def test_grow_extends_an_undersegmented_lesion_and_shrink_peels_it():
    hu, label, sphere = liver_with_missed_lesion()
    core = np.zeros_like(sphere)
    core[3:6, 15:18, 15:18] = True  # a third of the lesion's width found
    label[core] = 2
    fix = grow_lesion(hu, label, (4, 16, 16), SP, step_mm=3)
    new = np.zeros(label.shape, bool)
    new.reshape(-1)[fix.flat] = True
    assert new.any() and not (new & ~sphere).any()  # into the lesion, never into the liver
    ed = LabelEditor(label)
    apply_fix(ed, fix)
    assert (label == 2).sum() > core.sum()
    n = int((label == 2).sum())
    fix = shrink_lesion(label, (4, 16, 16), SP)
    apply_fix(ed, fix)
    assert 0 < (label == 2).sum() < n and fix.value == 1
    with pytest.raises(FixError, match="no lesion"):
        grow_lesion(hu, label, (4, 6, 6), SP)


def test_remove_region_slice_and_3d():
    label = np.zeros((3, 10, 10), np.uint8)
    label[:, 1:6, 1:6] = 1  # the liver
    label[:, 7:9, 7:9] = 1  # a blob (the vena cava)
    label[1, 2:4, 2:4] = 2  # a lesion
    fix = remove_region(label, (1, 8, 8), SP, "slice")
    assert len(fix.flat) == 4 and fix.value == 0
    fix = remove_region(label, (1, 8, 8), SP, "3d")
    assert len(fix.flat) == 12
    with pytest.raises(FixError, match="main liver"):
        remove_region(label, (1, 4, 4), SP, "3d")
    fix = remove_region(label, (1, 2, 2), SP, "3d")  # a lesion becomes liver
    assert len(fix.flat) == 4 and fix.value == 1
    with pytest.raises(FixError, match="nothing to remove"):
        remove_region(label, (0, 0, 0), SP)


def test_component_at():
    m = np.zeros((2, 5, 5), bool)
    m[0, 0, 0] = m[1, 1, 1] = m[0, 4, 4] = True
    assert sorted(component_at(m, (0, 0, 0))) == [0, 25 + 6]  # 26-connected across slices
    assert list(component_at(m, (0, 0, 0), "slice")) == [0]
    assert len(component_at(m, (0, 2, 2))) == 0
