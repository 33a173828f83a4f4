"""core.transforms.bridges: organs hanging on the liver by a thin bridge are cut off; the liver stays."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from core.transforms.bridges import cut_bridges

SPACING = (2.5, 0.8, 0.8)


def ellipsoid(shape, centre, radii_mm, spacing=SPACING):
    zz, yy, xx = np.ogrid[:shape[0], :shape[1], :shape[2]]
    return sum(((g - c) * s / r) ** 2 for g, c, s, r in zip((zz, yy, xx), centre, spacing, radii_mm, strict=True)) <= 1


def liver_and_kidney(bridge_px: int = 3):
    """A 'liver' (about 1 L) and a 'kidney' (about 40 mL) 20 mm from it, joined by a 2.4 mm bridge."""
    shape = (48, 200, 200)
    liver = ellipsoid(shape, (24, 80, 100), (50.0, 45.0, 60.0))
    kidney = ellipsoid(shape, (24, 160, 100), (25.0, 12.0, 20.0))
    bridge = np.zeros(shape, bool)
    bridge[23:24 + bridge_px // 3, 130:152, 99:99 + bridge_px] = True
    return liver, kidney, liver | kidney | bridge


def test_a_kidney_on_a_thin_bridge_is_cut_off_and_the_liver_kept():
    liver, kidney, mask = liver_and_kidney()
    assert ndimage.label(mask)[1] == 1  # one component: the largest-component step keeps it all
    out = cut_bridges(mask, SPACING)
    assert out[liver].all()  # every liver voxel, its edges and tips too
    far = kidney & (ndimage.distance_transform_edt(~liver, sampling=SPACING) > 12.0)
    assert far.any() and not out[far].any()  # the kidney beyond the radius and a coarse voxel: gone
    assert out.sum() < liver.sum() + 0.2 * kidney.sum()


def test_a_mask_without_bridges_comes_back_as_it_is():
    liver, _, _ = liver_and_kidney()
    tip = np.zeros(liver.shape, bool)
    tip[20:28, 78:82, 170:185] = True  # a thin tip on the liver's edge, within the radius of its bulk
    mask = liver | tip
    out = cut_bridges(mask, SPACING)
    assert out is mask or np.array_equal(out, mask)


def test_two_lobes_on_a_thin_bridge_are_never_cut_apart():
    """More than max_cut would go: a lobe joined by a thin bridge is kept rather than lost."""
    shape = (40, 160, 220)
    a = ellipsoid(shape, (20, 80, 60), (40.0, 40.0, 40.0))
    b = ellipsoid(shape, (20, 80, 165), (40.0, 40.0, 35.0))
    mask = a | b
    mask[19:21, 79:82, 100:125] = True
    assert ndimage.label(mask)[1] == 1
    assert np.array_equal(cut_bridges(mask, SPACING), mask)
    # with a looser limit the smaller lobe goes, which is why the limit is there
    assert not cut_bridges(mask, SPACING, max_cut=0.9)[b].any()


@pytest.mark.parametrize("spacing", [(10.0, 0.8, 0.8), (5.0, 0.7, 0.7), (1.0, 1.0, 1.0)])
def test_thick_and_thin_slices(spacing):
    """On 10 mm slices the ball is flat (each slice opened on its own); the cut still happens."""
    sz = spacing[0]
    nz = max(8, int(round(80 / sz)))
    shape = (nz, 200, 200)
    liver = ellipsoid(shape, (nz // 2, 80, 100), (35.0, 45 * 0.8, 60 * 0.8), spacing)
    kidney = ellipsoid(shape, (nz // 2, 165, 100), (20.0, 12 * 0.8, 20 * 0.8), spacing)
    mask = liver | kidney
    mask[nz // 2, 110:160, 99:102] = True
    out = cut_bridges(mask, spacing)
    assert out[liver].all()
    far = kidney & (ndimage.distance_transform_edt(~liver, sampling=spacing) > 12.0)
    assert far.any() and not out[far].any()


def test_empty_and_tiny_masks():
    empty = np.zeros((4, 16, 16), bool)
    assert not cut_bridges(empty, SPACING).any()
    tiny = empty.copy()
    tiny[1:3, 4:8, 4:8] = True  # thinner than the ball everywhere: nothing survives the opening, nothing is cut
    assert np.array_equal(cut_bridges(tiny, SPACING), tiny)
    assert np.array_equal(cut_bridges(tiny, SPACING, radius_mm=0.0), tiny)


def test_the_cut_label_keeps_a_grazed_tumour_and_drops_one_lying_in_what_is_cut():
    from core.runtime.labels import LIVER, TUMOUR
    from core.transforms.bridges import cut_label
    label = np.zeros((4, 30, 30), np.uint8)
    label[:, :20] = LIVER
    label[1:3, 16:24, 2:6] = TUMOUR  # half of it in what is cut (rows 20+): the cut organ's
    label[0:4, 5:21, 10:20] = TUMOUR  # a large one grazing the cut by one row (1/16 of it)
    label[1:3, 2:5, 24:28] = TUMOUR  # inside the liver, away from the cut
    label[1:3, 10:20, 22:24] = TUMOUR  # a U through the cut (share 12/56): its long arm stays,
    label[1:3, 20, 22:28] = TUMOUR  # its bottom is cut,
    label[1:3, 19, 26:28] = TUMOUR  # and its short arm (4 voxels) is left under min_voxels
    liver = np.zeros(label.shape, bool)
    liver[:, :20] = True
    cut = np.zeros(label.shape, bool)
    cut[:, 20:] = True
    before = label.copy()
    cut_label(label, cut, liver, min_voxels=5)
    assert not label[cut].any()
    assert (label[1:3, 16:20, 2:6] == LIVER).all()  # the first: no tumour at all
    assert (label[0:4, 5:20, 10:20] == TUMOUR).all()  # the large one keeps all but its cut row
    assert np.array_equal(label[1:3, 2:5, 24:28], before[1:3, 2:5, 24:28])
    assert (label[1:3, 10:20, 22:24] == TUMOUR).all() and (label[1:3, 19, 26:28] == LIVER).all()
    label2 = before.copy()
    cut_label(label2, np.zeros(label.shape, bool), liver, min_voxels=5)  # nothing cut: nothing changes
    assert np.array_equal(label2, before)
