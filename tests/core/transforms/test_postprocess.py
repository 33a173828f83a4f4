"""Lesion-level post-processing: components along the liver's edge (core.transforms.postprocess.drop_shallow)."""

import numpy as np
from scipy import ndimage

from core.transforms.postprocess import drop_outside, drop_shallow, surface_depth


def _reference(mask, liver, spacing, min_depth_mm):
    """The rule on the whole volume: each 26-connected component's deepest voxel in liver | mask,
    depth = distance to the nearest outside voxel less half a voxel along that direction."""
    _, idx = ndimage.distance_transform_edt(liver | mask, sampling=spacing, return_indices=True)
    grid = np.indices(mask.shape)
    d = (idx - grid) * np.asarray(spacing, float)[:, None, None, None]
    n = np.sqrt((d ** 2).sum(0))
    depth = n - 0.5 * (np.abs(d) * np.asarray(spacing, float)[:, None, None, None]).sum(0) / np.maximum(n, 1e-12)
    lab, k_max = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    keep = [False] + [depth[lab == k].max() >= min_depth_mm for k in range(1, k_max + 1)]
    return np.asarray(keep)[lab]


def test_drop_shallow_keeps_deep_components_and_drops_edge_rims():
    liver = np.zeros((22, 22, 22), bool)
    # 1 mm voxels: a voxel at x = i (1..20) lies min(i, 21 - i) - 0.5 mm below the boundary
    liver[1:21, 1:21, 1:21] = True
    mask = np.zeros_like(liver)
    mask[9:12, 9:12, 9:12] = True    # deep cube: 8.5 mm and more
    mask[9:12, 3:6, 1:4] = True      # x = 1..3: deepest voxel 2.5 mm -> dropped at 3.5 mm
    mask[9:12, 15:18, 17:21] = True  # x = 17..20: deepest 3.5 mm (x = 17), y 15..17: 3.5-5.5 mm -> kept
    mask[2:4, 9:12, 9:12] = True     # z = 2..3: deepest 2.5 mm -> dropped
    out = drop_shallow(mask, liver, (1.0, 1.0, 1.0), 3.5)
    expect = np.zeros_like(mask)
    expect[9:12, 9:12, 9:12] = True
    expect[9:12, 15:18, 17:21] = True
    np.testing.assert_array_equal(out, expect)
    np.testing.assert_array_equal(out, _reference(mask, liver, (1.0, 1.0, 1.0), 3.5))
    assert drop_shallow(mask, liver, (1.0, 1.0, 1.0), 0.0) is mask  # 0: off
    # a lesion bulging out of the liver counts with the liver: liver | mask is the tissue
    bulge = np.zeros_like(mask)
    bulge[8:13, 8:13, 0:6] = True  # reaches x = 0, outside the liver; 4.5 mm deep at x = 5 inside
    np.testing.assert_array_equal(drop_shallow(bulge, liver, (1.0, 1.0, 1.0), 3.5), bulge)


def test_on_thick_slices_a_voxel_under_the_boundary_lies_half_a_slice_deep():
    liver = np.zeros((8, 40, 40), bool)
    liver[1:7, 2:38, 2:38] = True  # 5 mm slices, 1 mm pixels
    top = np.zeros_like(liver)
    top[1, 15:25, 15:25] = True  # on the liver's first slice, 13 mm from its sides: 5 - 2.5 = 2.5 mm deep
    below = np.roll(top, 1, axis=0)  # one slice further in: 10 - 2.5 = 7.5 mm
    spacing = (5.0, 1.0, 1.0)
    assert not drop_shallow(top, liver, spacing, 3.5).any()
    np.testing.assert_array_equal(drop_shallow(below, liver, spacing, 3.5), below)
    np.testing.assert_allclose(surface_depth(liver, spacing, ([1, 2, 3], [20, 20, 20], [20, 20, 3])),
                               [2.5, 7.5, 1.5])  # in-plane: 2 mm to x = 1, less half a pixel


def test_drop_shallow_on_a_box_with_anisotropic_voxels_matches_the_whole_volume():
    rng = np.random.default_rng(3)
    liver = np.zeros((16, 40, 40), bool)
    liver[2:14, 5:35, 4:36] = True
    spacing = (2.5, 0.8, 0.8)
    mask = liver & ndimage.binary_opening(rng.random(liver.shape) < 0.35)
    mask &= ndimage.binary_erosion(liver, iterations=1) | (rng.random(liver.shape) < 0.5)
    assert ndimage.label(mask)[1] > 5
    ref = _reference(mask, liver, spacing, 3.5)
    assert ref.sum() < mask.sum()  # the volume has both kinds
    np.testing.assert_array_equal(drop_shallow(mask, liver, spacing, 3.5), ref)
    # the cascade passes the tumour box only, with its origin in the liver's grid
    z0, y0, x0 = 2, 3, 4
    box = (slice(z0, 14), slice(y0, 37), slice(x0, 36))
    assert not mask[:z0].any() and not mask[:, :y0].any() and not mask[:, :, :x0].any()
    np.testing.assert_array_equal(drop_shallow(mask[box], liver, spacing, 3.5, origin=(z0, y0, x0)), ref[box])


def test_drop_outside_keeps_components_mostly_in_the_liver():
    liver = np.zeros((6, 30, 30), bool)
    liver[:, 5:25, 5:25] = True
    mask = np.zeros_like(liver)
    mask[2:4, 10:14, 10:14] = True  # wholly inside: kept
    mask[2, 3:7, 15:20] = True      # x/y rim: rows 3-4 outside, 5-6 inside -> 10 of 20 = 0.5: kept at 0.3
    mask[4, 1:6, 2:4] = True        # rows 1-4 outside, row 5 in but columns 2-3 outside: 0 of 10 -> dropped
    mask[0, 22:27, 22:24] = True    # rows 22-24 in, 25-26 out; columns 22-23 in: 6 of 10 inside -> kept
    mask[5, 2:6, 27:29] = True      # wholly outside -> dropped
    out = drop_outside(mask, liver, 0.3)
    expect = mask.copy()
    expect[4, 1:6, 2:4] = False
    expect[5, 2:6, 27:29] = False
    np.testing.assert_array_equal(out, expect)
    assert drop_outside(mask, liver, 0.0) is mask  # 0: off
    assert not drop_outside(mask, liver, 1.0)[2, 3:7, 15:20].any()  # half inside: dropped at 1.0


def test_keep_inside_margin_in_plane_then_along_z():
    """The rim of a tumour the liver stage left out is kept within ``inplane`` 4-connected steps in the
    slice, then ``along_z`` slices; beyond that only the 3D margin of 2 voxels."""
    from core.transforms.postprocess import keep_inside
    liver = np.zeros((16, 30, 30), bool)
    liver[5:11, 5:20, 5:20] = True
    tumour = np.zeros_like(liver)
    tumour[7, 10, 20:30] = True   # in-plane, columns 20-29: 1-10 steps from the liver along x
    tumour[7, 22, 22] = True      # 3 + 3 steps diagonally (L1 distance 6) from the corner (19, 19)
    tumour[0:5, 10, 10] = True    # above the liver: 1-5 slices
    tumour[3, 10, 22] = True      # 2 slices above and 3 steps beside
    out = keep_inside(tumour, liver, 2, inplane=4, along_z=3)
    expect = np.zeros_like(liver)
    expect[7, 10, 20:24] = True   # within 4 steps
    expect[2:5, 10, 10] = True    # within 3 slices
    expect[3, 10, 22] = True      # 3 steps, then 2 slices
    np.testing.assert_array_equal(out, expect)
    assert keep_inside(tumour, liver, 2, inplane=6)[7, 22, 22]
    only3d = keep_inside(tumour, liver, 2)
    np.testing.assert_array_equal(keep_inside(tumour, liver, 2, 0, 0), only3d)
    assert only3d[7, 10, 20:22].all() and not only3d[7, 10, 22:].any() and not only3d[0:3].any()
    wide = np.stack([ndimage.binary_dilation(s, iterations=4) for s in liver])
    wide = ndimage.binary_dilation(wide, np.ones((3, 1, 1), bool), iterations=3)
    plain = tumour & (ndimage.binary_dilation(liver, iterations=2) | wide)
    np.testing.assert_array_equal(out, plain)  # the definition on the whole volume
