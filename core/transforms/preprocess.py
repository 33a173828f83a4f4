"""Preprocessing: part of a model's contract, saved with it and re-applied at inference.

Two recipes:
    * ``notebook``: the Colab notebooks' recipe: values above 1200 HU set to 0,
      clip to [-100, 400], normalise to [0, 1], histogram equalisation per
      slice, three identical channels.
    * ``window25d`` (the default): clip to the window, scale to [0, 1], and
      2.5D input: the slice and its two neighbours as the three channels. With
      ``neighbour_mm`` (set by the default-model recipe) the neighbours lie that many mm below and
      above, interpolated between slices (:mod:`core.transforms.zsample`), so a 5 mm scan shows the
      model the same anatomy per channel as a 1.6 mm one; without it (a model saved without the key)
      they are the adjacent slices, whatever their spacing.
Both resize slices to the model input with bilinear interpolation.

``liver_hu_max`` (the tumour stage of the default recipe since 2026-12-08): where the liver is
brighter than any the recipe trained on (a median above this many HU, e.g. a strong portal-venous
bolus), the stage's input is shifted down by the difference (:func:`liver_level_shift`), in
training and inference alike: the tumour model judges a lesion against its liver, and a liver at
175 HU otherwise makes a tumour at 135 HU look like liver to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .zsample import channel_table

# The tumour stage sees the liver's in-plane bounding box grown by this many pixels, in training
# (core.training.loader) and in inference (core.inference) alike.
MARGIN_PX = 10

RECIPES = ("notebook", "window25d")


@dataclass(frozen=True)
class Preprocessing:
    """How CT slices become model input.

    Attributes:
        recipe: "notebook" or "window25d".
        window: (low, high) HU clip range.
        size: model input H = W in pixels.
        channels: input channels (3).
        neighbour_mm: 2.5D neighbours this many mm apart (interpolated); None: the adjacent
            slices by index (a model whose preprocessing does not set it).
        liver_hu_max: a liver whose median is brighter than this (HU) is shifted down to it before
            the window (:func:`liver_level_shift`); None: never (a model saved without the key).
    """

    recipe: str = "window25d"
    window: tuple[float, float] = (-100.0, 400.0)
    size: int = 256
    channels: int = 3
    neighbour_mm: float | None = None
    liver_hu_max: float | None = None

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown preprocessing recipe {self.recipe!r} (use one of {RECIPES})")
        if self.neighbour_mm is not None and (self.recipe != "window25d" or not self.neighbour_mm > 0):
            raise ValueError(f"neighbour_mm needs the window25d recipe and a positive distance, "
                             f"got {self.neighbour_mm!r} with {self.recipe!r}")
        if self.liver_hu_max is not None and not np.isfinite(self.liver_hu_max):
            raise ValueError(f"liver_hu_max must be a number of HU or None, got {self.liver_hu_max!r}")

    @property
    def offsets_mm(self) -> tuple[float, ...] | None:
        """Channel positions relative to the slice, mm (None: neighbours by index)."""
        if self.neighbour_mm is None:
            return None
        return tuple(float(self.neighbour_mm) * (k - self.channels // 2) for k in range(self.channels))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        mm, top = d.get("neighbour_mm"), d.get("liver_hu_max")
        return cls(recipe=d["recipe"], window=tuple(d["window"]), size=int(d["size"]),
                   channels=int(d.get("channels", 3)), neighbour_mm=None if mm is None else float(mm),
                   liver_hu_max=None if top is None else float(top))

    def normalise(self, hu: np.ndarray, shift: float = 0.0) -> np.ndarray:
        """HU (any shape) to float32 in [0, 1] per the recipe (without resizing or channels);
        ``shift`` HU are added first (:func:`liver_level_shift`)."""
        lo, hi = self.window
        x = hu.astype(np.float32)
        if shift:
            x += np.float32(shift)
        if self.recipe == "notebook":
            x[x > 1200] = 0
        np.clip(x, lo, hi, out=x)
        x -= lo
        x /= hi - lo
        if self.recipe == "notebook":
            x = np.stack([equalize(s) for s in x.reshape((-1,) + x.shape[-2:])]).reshape(x.shape)
        return x

    def neighbours(self, index: np.ndarray, nz: int) -> np.ndarray:
        """The slices that make each input's channels: int [N, C] for slice indices ``index`` of a
        volume with ``nz`` slices. 2.5D ("window25d"): the slice below, itself, the slice above,
        clamped inside the volume; otherwise the slice itself repeated. The one definition used by
        training (core.training.loader), inference and ONNX calibration."""
        index = np.asarray(index, dtype=int)
        if self.recipe == "window25d":
            return np.stack([np.clip(index - 1, 0, nz - 1), index, np.clip(index + 1, 0, nz - 1)], axis=-1)
        return np.repeat(index[:, None], self.channels, axis=1)

    def slices(self, hu: np.ndarray, index: Sequence[int], box=None) -> np.ndarray:
        """Model input for slices ``index`` of a volume.

        Args:
            hu: int16 [Z, Y, X] volume in HU.
            index: slice indices.
            box: optional (y0, y1, x0, x1) crop applied before resizing.

        Returns:
            float32 [N, size, size, channels].
        """
        idx = self.neighbours(np.asarray(index, dtype=int), hu.shape[0])
        sub = hu[idx]  # [N, C, Y, X]
        if box is not None:
            y0, y1, x0, x1 = box
            sub = sub[..., y0:y1, x0:x1]
        x = self.normalise(sub)
        x = resize_bilinear(x, self.size, self.size)
        return np.ascontiguousarray(np.moveaxis(x, 1, -1))


class SliceStack:
    """A study's normalised slices with the mm-neighbour table of its 2.5D channels.

    ``data``: float32 [Z, S, S]; ``idx``/``w``: [Z, C, K] from :func:`core.transforms.zsample.channel_table`.
    """

    def __init__(self, data: np.ndarray, idx: np.ndarray, w: np.ndarray):
        self.data, self.idx, self.w = data, idx, w

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def __len__(self) -> int:
        return len(self.data)

    def inputs(self, zs: np.ndarray) -> np.ndarray:
        """Model input float32 [B, S, S, C] for slices ``zs``."""
        zs = np.asarray(zs, dtype=int)
        idx, w = self.idx[zs], self.w[zs]  # [B, C, K]
        out = self.data[idx[..., 0]] * w[..., 0, None, None]  # [B, C, S, S]
        for k in range(1, idx.shape[-1]):
            if w[..., k].any():
                out += self.data[idx[..., k]] * w[..., k, None, None]
        return np.ascontiguousarray(np.moveaxis(out, 1, -1))


def liver_level_shift(hu: np.ndarray, liver: np.ndarray, pre: Preprocessing) -> float:
    """HU to add to a volume before ``pre``'s window: ``pre.liver_hu_max`` minus the median of the
    liver's voxels (``liver``: bool, same shape; the tumours inside it count) where that median is
    brighter, else 0. One definition for training (the label's liver) and inference (the liver
    stage's); every 7th voxel is enough for a median to the HU."""
    if pre.liver_hu_max is None:
        return 0.0
    values = np.asarray(hu)[np.asarray(liver, bool)][::7]
    if values.size == 0:
        return 0.0
    return float(min(0.0, pre.liver_hu_max - float(np.median(values))))


def normalised_stack(hu: np.ndarray, pre: Preprocessing, box=None, chunk: int = 32,
                     dz: float | None = None, shift: float = 0.0):
    """All slices normalised and resized once: float32 [Z, S, S] (in chunks: bounded memory);
    ``shift`` HU added first (:func:`liver_level_shift`).

    With ``pre.neighbour_mm`` the result is a :class:`SliceStack` that also knows which
    (interpolated) slices make each channel; that needs the slice spacing ``dz`` in mm.
    """
    if box is not None:
        y0, y1, x0, x1 = box
        hu = hu[:, y0:y1, x0:x1]
    out = np.empty((hu.shape[0], pre.size, pre.size), np.float32)
    for z0 in range(0, hu.shape[0], chunk):
        out[z0:z0 + chunk] = resize_bilinear(pre.normalise(hu[z0:z0 + chunk], shift), pre.size, pre.size)
    if pre.offsets_mm is None:
        return out
    if dz is None or not dz > 0:
        raise ValueError(f"this model takes its 2.5D neighbours {pre.neighbour_mm} mm apart: "
                         f"the slice spacing is needed, got {dz!r}")
    return SliceStack(out, *channel_table(out.shape[0], float(dz), pre.offsets_mm))


def stack_channels(norm, zs: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Model input [B, S, S, C] for slices ``zs`` from a normalised stack (see ``neighbours``):
    a :class:`SliceStack` (mm neighbours) or a plain [Z, S, S] array (neighbours by index)."""
    if isinstance(norm, SliceStack):
        return norm.inputs(zs)
    idx = pre.neighbours(zs, norm.shape[0])
    return np.ascontiguousarray(np.moveaxis(norm[idx], 1, -1))


def equalize(img: np.ndarray, nbins: int = 256) -> np.ndarray:
    """Histogram equalisation of one [0, 1] float image (as skimage.exposure.equalize_hist)."""
    from skimage import exposure
    return exposure.equalize_hist(img, nbins=nbins).astype(np.float32)


def _coords(n_in: int, n_out: int, lo: int = 0, hi: int | None = None):
    """Source indices and weights of output samples lo..hi (align-corners=False)."""
    hi = n_out if hi is None else hi
    c = (np.arange(lo, hi, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5
    c = np.clip(c, 0, n_in - 1)
    i0 = np.floor(c).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (c - i0).astype(np.float32)


def resize_bilinear(x: np.ndarray, h: int, w: int, out_box=None) -> np.ndarray:
    """Bilinear resize of the last two axes (align-corners=False, like most frameworks).

    Separable: rows, then columns, with ``np.take`` and in-place arithmetic.

    Args:
        x: [..., H, W] array.
        h, w: output size.
        out_box: optional (y0, y1, x0, x1): compute only this window of the
            [h, w] output (exactly the same values as cropping the full result).

    Returns:
        float32 [..., h, w] (or the window).
    """
    H, W = x.shape[-2:]
    y0, y1, x0, x1 = out_box if out_box is not None else (0, h, 0, w)
    if (H, W) == (h, w):
        return np.asarray(x[..., y0:y1, x0:x1], dtype=np.float32)
    x = np.asarray(x, dtype=np.float32)
    r0i, r1i, wy = _coords(H, h, y0, y1)
    c0i, c1i, wx = _coords(W, w, x0, x1)
    top = np.take(x, r0i, axis=-2)
    bottom = np.take(x, r1i, axis=-2)
    bottom -= top
    bottom *= wy[:, None]
    top += bottom  # rows done: [..., y1 - y0, W]
    left = np.take(top, c0i, axis=-1)
    right = np.take(top, c1i, axis=-1)
    right -= left
    right *= wx
    left += right
    return left
