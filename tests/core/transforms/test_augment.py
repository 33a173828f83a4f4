"""core.transforms.augment: the anatomical map's flat gather equals 2-D indexing."""

from __future__ import annotations

import numpy as np

from core.transforms import augment as aug


def test_apply_affine_gathers_the_mapped_pixels_and_fills_outside():
    s = 16
    img = np.arange(s * s, dtype=np.uint8).reshape(s, s)
    for seed in range(5):
        m = aug.affine_map(np.random.default_rng(seed), s)
        rows, cols, inside = m
        want = img[rows, cols]
        want[~inside] = 7
        assert np.array_equal(aug.apply_affine(img, m, fill=7), want)
        # a plain (rows, cols, inside) tuple and a strided view give the same pixels
        assert np.array_equal(aug.apply_affine(img, (rows, cols, inside), fill=7), want)
        wide = np.stack([img, img], axis=-1)
        assert np.array_equal(aug.apply_affine(wide[..., 1], m, fill=7), want)
    shifted = aug.AffineMap((np.full((2, 2), 1), np.array([[0, 1], [0, 1]]), np.array([[True, False], [True, True]])))
    # without precomputed fields it still works
    assert aug.apply_affine(np.array([[1, 2], [3, 4]]), shifted).tolist() == [[3, 0], [3, 4]]
