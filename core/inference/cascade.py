"""The segmentation cascade: ``segment(volume, liver_model, tumour_model) -> Segmentation``.

1. Liver: every slice is normalised and resized once (2.5D channels are then
   stacked from that cache), predicted in batches, and the probabilities are
   resized back to the CT's own grid.
2. Post-processing: the largest 3D connected component, holes filled.
3. Tumours: only the liver's slices, cropped to the liver's bounding box (with
   the training margin), shifted down where the liver is brighter than the model's
   ``liver_hu_max`` (:func:`core.transforms.preprocess.liver_level_shift`), predicted,
   resized back into the box; kept inside the
   slightly dilated liver (:attr:`TumourFilters.margin_mm` in-plane); components under
   :attr:`TumourFilters.min_ml`, darker than :attr:`TumourFilters.min_hu`, less than
   :attr:`TumourFilters.min_inside` inside the liver or wholly within :attr:`TumourFilters.min_depth_mm`
   of the liver's surface dropped.
4. Organs joined to the liver (and its tumours) by a thin bridge are cut off the result
   (:func:`core.transforms.bridges.cut_bridges`).
Each model's own saved preprocessing and threshold are applied.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from ..runtime.choices import Engine
from ..runtime.errors import LiverSegError
from ..runtime.jobs import CancelToken, ProgressFn, check
from ..runtime.labels import LIVER, TUMOUR
from ..transforms.bridges import cut_bridges, cut_label
from ..transforms.masks import crop_box, inplane_box
from ..transforms.postprocess import clean_liver, clean_tumour, drop_dark, drop_outside, drop_shallow
from ..transforms.preprocess import MARGIN_PX, liver_level_shift, normalised_stack, resize_bilinear
from .runners import CascadeRunners, prepare_runners

log = logging.getLogger(__name__)

# Proposed lesions whose mean is below this are fat or air next to the liver, not tumour: liver
# tumours, necrotic ones included, average above 0 HU even without contrast (cysts: 0-20 HU).
# On another hospital's CT 11 of 18 proposed lesions averaged below 0 HU.
MIN_TUMOUR_HU = -20.0
# Proposed lesions lying wholly within this many mm of the liver's surface are rims of fat or partial
# volume along its edge (:func:`core.transforms.postprocess.drop_shallow`, depth below the boundary
# halfway between voxels). Rendered validation patients: 64 of 207 false lesions dropped, 1 of 62
# lesions lost; as 5 mm scans 43 of 152, 1 of 53; patient 17 left out: 26 of 43, none of 14 lost.
MIN_TUMOUR_DEPTH_MM = 3.5
# Proposed lesions with less than this share of their voxels in the liver stage's mask lie along its
# edge, mostly in the margin kept for lesions on the rim (:func:`core.transforms.postprocess.drop_outside`).
# Together with the depth rule, against that rule alone: rendered as 5 mm scans 65 of 152 false lesions
# dropped (alone: 43), as rendered 67 of 207 (alone: 64), no more lesions lost; patient 17's 5 mm proxies
# keep 3 and 4 false lesions (alone: 6 and 6).
MIN_TUMOUR_INSIDE = 0.3
# Proposed tumour voxels are kept within this many mm of the liver stage's mask, in-plane and then
# along z (besides 2 voxels in 3D): the liver stage leaves out part of the rim of large tumours at the
# liver's edge, which the tumour stage finds. Patient 17, both stages held out, its seven proxies, against
# no margin: tumour Dice higher on every one (mean 0.626 vs 0.610), liver +0.001, false lesions 21 vs 23.
TUMOUR_MARGIN_MM = 5.0


@dataclass(frozen=True)
class TumourFilters:
    """What the cascade keeps of the tumour stage's proposals: one value, so the thresholds travel
    together (benchmarks vary them, the application uses the defaults).

    Attributes:
        min_ml: tumour components smaller than this are dropped.
        min_hu: tumour components whose mean is below this many HU are dropped (fat, air).
        min_depth_mm: tumour components wholly within this many mm of the liver's surface are
            dropped (0: keep them).
        min_inside: tumour components with less than this share of their voxels in the liver
            stage's mask are dropped (0: keep them).
        margin_mm: tumour voxels are kept within this many mm of the liver stage's mask, in-plane
            then along z (and within 2 voxels in 3D); 0: only the 2 voxels.
    """

    min_ml: float = 0.05
    min_hu: float = MIN_TUMOUR_HU
    min_depth_mm: float = MIN_TUMOUR_DEPTH_MM
    min_inside: float = MIN_TUMOUR_INSIDE
    margin_mm: float = TUMOUR_MARGIN_MM


@dataclass
class Segmentation:
    """Result of :func:`segment`.

    Attributes:
        label: uint8 [Z, Y, X] at the CT's resolution: 0 background, 1 liver, 2 tumour.
        spacing: (z, y, x) mm.
        liver_prob, tumour_prob: float16 [Z, Y, X] probabilities when asked for.
        warnings: e.g. "no liver found".
        timings: seconds per step ("liver_net", "tumor_net", "post", ...).
        info: engine, device, batch size, slices run through each model.
    """

    label: np.ndarray
    spacing: tuple[float, float, float]
    liver_prob: np.ndarray | None = None
    tumour_prob: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def resize_chunked(x: np.ndarray, h: int, w: int, out_box=None, chunk: int = 16) -> np.ndarray:
    """:func:`resize_bilinear` over chunks of slices (bounded GIL hold and memory)."""
    y0, y1, x0, x1 = out_box if out_box is not None else (0, h, 0, w)
    out = np.empty((x.shape[0], y1 - y0, x1 - x0), np.float32)
    for z0 in range(0, x.shape[0], chunk):
        out[z0:z0 + chunk] = resize_bilinear(x[z0:z0 + chunk], h, w, out_box)
    return out


def above_threshold(prob_small: np.ndarray, h: int, w: int, threshold: float) -> np.ndarray:
    """``resize_chunked(prob_small, h, w) > threshold``, upsampling only the slices and the in-plane
    window where the small map comes near the threshold: a bilinear output value is a convex
    combination of its (at most 4) neighbours in the small map, so it exceeds the threshold only
    next to a small-map value that does. Bool [Z, h, w]."""
    out = np.zeros((prob_small.shape[0], h, w), bool)
    hot = prob_small > threshold * 0.5
    zs_hot = np.flatnonzero(hot.any(axis=(1, 2)))
    if not len(zs_hot):
        return out
    sy, sx = h / prob_small.shape[1], w / prob_small.shape[2]
    hot_box = inplane_box(hot, margin=2)
    assert hot_box is not None  # hot holds slices zs_hot
    ly0, ly1, lx0, lx1 = hot_box
    box = (max(0, int(ly0 * sy) - 2), min(h, int(np.ceil(ly1 * sy)) + 2),
           max(0, int(lx0 * sx) - 2), min(w, int(np.ceil(lx1 * sx)) + 2))
    up = resize_chunked(prob_small[zs_hot], h, w, out_box=box)
    out[zs_hot, box[0]:box[1], box[2]:box[3]] = up > threshold
    return out


def segment(volume, liver_model, tumour_model=None, progress: ProgressFn | None = None,
            cancel: CancelToken | None = None, *, batch_size: int | None = None, device: str | None = None,
            return_probs: bool = False, engine: Engine = "auto", tumour_filters: TumourFilters = TumourFilters(),
            runners: CascadeRunners | None = None, cut_liver_bridges: bool = True) -> Segmentation:
    """Segment liver and tumours in a CT volume.

    Args:
        volume: anything with ``hu`` (int16 [Z, Y, X]) and ``spacing`` ((z, y, x) mm),
            e.g. a :class:`core.dicom.Volume` or a dataset case.
        liver_model, tumour_model: :class:`core.model.io.SegModel` (tumour optional).
        batch_size: slices per network call (default 8 on CPU, 32 on GPU; halved on OOM).
        device: "cpu" or "gpu" to override the automatic choice.
        return_probs: keep the probability maps (float16).
        tumour_filters: which tumour proposals are kept (:class:`TumourFilters`; default the shipped ones).
        engine: "auto", "keras", "onnx" or "onnx-int8" (see :mod:`core.inference.engines`), per model.
        runners: the models' runners, already prepared (:func:`core.inference.runners.prepare_runners`);
            then ``engine``, ``device`` and ``batch_size`` are theirs. Default: prepared here.
        cut_liver_bridges: cut organs joined to the liver by a thin bridge off it (the volume cut is
            ``info["liver_cut_ml"]``); False keeps the largest component whole.

    Returns:
        A :class:`Segmentation`; an empty one with a warning when no liver is found.
    """
    hu = np.asarray(volume.hu)
    spacing = cast("tuple[float, float, float]", tuple(float(s) for s in volume.spacing))
    if hu.ndim != 3 or hu.shape[0] < 1:
        raise LiverSegError(f"segment: expected a [Z, Y, X] volume, got shape {hu.shape}")
    if runners is None:
        runners = prepare_runners(liver_model, tumour_model, engine, device, batch_size)
    elif runners.liver_model is not liver_model or runners.tumour_model is not tumour_model:
        raise LiverSegError("segment: the runners were prepared for other models")
    liver_runner = runners.liver
    seg = Segmentation(np.zeros(hu.shape, np.uint8), spacing)
    seg.info.update({"device": liver_runner.choice.device, "batch_size": liver_runner.batch,
                     "liver_model": liver_model.path, "tumor_model": getattr(tumour_model, "path", None),
                     "engines": {"liver": liver_runner.choice.device},
                     "engine_reasons": {"liver": liver_runner.choice.reason}})
    t0 = time.perf_counter()

    # 1. Liver on every slice.
    pre = liver_model.pre
    norm = normalised_stack(hu, pre, dz=spacing[0])
    seg.timings["liver_pre"] = time.perf_counter() - t0
    t = time.perf_counter()
    prob_small = liver_runner.predict(norm, np.arange(hu.shape[0]), cancel, progress, "liver")
    seg.info["engines"]["liver"] = seg.info["device"] = liver_runner.engine_text
    seg.timings["liver_net"] = time.perf_counter() - t
    t = time.perf_counter()
    if return_probs:
        liver_prob = resize_chunked(prob_small, hu.shape[1], hu.shape[2])
        liver = liver_prob > liver_model.threshold
        seg.liver_prob = liver_prob.astype(np.float16)
    else:
        liver = above_threshold(prob_small, hu.shape[1], hu.shape[2], liver_model.threshold)
    del norm, prob_small
    liver = clean_liver(liver)
    seg.timings["liver_post"] = time.perf_counter() - t
    seg.info["liver_slices"] = int(hu.shape[0])
    lbox = crop_box(liver)  # the liver's 3D box: everything after this works inside it
    if lbox is None:
        seg.warnings.append("no liver found: the result is empty")
        log.warning("no liver found")
        return seg
    seg.label[lbox][liver[lbox]] = LIVER
    region = lbox  # where the result has voxels
    min_voxels = int(np.ceil(tumour_filters.min_ml * 1000 / np.prod(spacing)))  # a tumour's least volume

    # 2. Tumours inside the liver's slices and bounding box.
    if tumour_model is not None:
        check(cancel)
        t = time.perf_counter()
        zs = lbox[0].start + np.flatnonzero(liver[lbox].any(axis=(1, 2)))
        h, w = hu.shape[1:]
        box = (max(0, lbox[1].start - MARGIN_PX), min(h, lbox[1].stop + MARGIN_PX),
               max(0, lbox[2].start - MARGIN_PX), min(w, lbox[2].stop + MARGIN_PX))
        y0, y1, x0, x1 = box
        tbox = (slice(zs[0], zs[-1] + 1), slice(y0, y1), slice(x0, x1))  # every tumour voxel lies in here
        tpre = tumour_model.pre
        sub = hu[tbox[0]]  # contiguous range of liver slices (neighbours for 2.5D)
        shift = liver_level_shift(hu[lbox], liver[lbox], tpre)  # a liver brighter than the model knows
        if shift:
            seg.info["tumor_hu_shift"] = round(shift, 1)
        norm = normalised_stack(sub, tpre, box, dz=spacing[0], shift=shift)
        seg.timings["tumor_pre"] = time.perf_counter() - t
        t = time.perf_counter()
        runner = runners.tumour
        assert runner is not None  # prepared with the tumour model
        seg.info["engines"]["tumor"], seg.info["engine_reasons"]["tumor"] = runner.choice.device, runner.choice.reason
        prob_small = runner.predict(norm, zs - zs[0], cancel, progress, "tumor")
        seg.info["engines"]["tumor"] = runner.engine_text
        seg.timings["tumor_net"] = time.perf_counter() - t
        t = time.perf_counter()
        tumour = np.zeros((zs[-1] + 1 - zs[0], y1 - y0, x1 - x0), bool)  # the box: exact, as no tumour
        if return_probs:                                                   # voxel and no liver lie outside
            prob = resize_chunked(prob_small, y1 - y0, x1 - x0)
            tumour[zs - zs[0]] = prob > tumour_model.threshold
        else:
            tumour[zs - zs[0]] = above_threshold(prob_small, y1 - y0, x1 - x0, tumour_model.threshold)
        f = tumour_filters
        margin = (int(round(f.margin_mm / float(np.mean(spacing[1:])))), int(round(f.margin_mm / spacing[0])))
        tumour = clean_tumour(tumour, liver[tbox], min_voxels, margin)
        tumour = drop_dark(tumour, hu[tbox], f.min_hu)
        tumour = drop_outside(tumour, liver[tbox], f.min_inside)
        tumour = drop_shallow(tumour, liver, spacing, f.min_depth_mm, origin=(zs[0], y0, x0))
        seg.label[tbox][tumour] = TUMOUR
        if return_probs:
            tp = np.zeros(hu.shape, np.float16)
            tp[zs, y0:y1, x0:x1] = prob
            seg.tumour_prob = tp
        seg.timings["tumor_post"] = time.perf_counter() - t
        seg.info["tumor_slices"] = int(len(zs))
        region = tbox
    # 4. Organs joined to the liver by a thin bridge, cut off the result (liver and tumours together:
    # the liver stage's mask alone has a hole or a channel where a tumour is, and the liver inside a
    # large tumour would be cut as if it hung on a bridge).
    if cut_liver_bridges:
        check(cancel)
        t = time.perf_counter()
        fg = seg.label[region] > 0
        kept = cut_bridges(fg, spacing)
        voxels = 0
        if kept is not fg:
            cut = fg & ~kept
            cut_label(seg.label[region], cut, liver[region], min_voxels)
            voxels = int(np.count_nonzero(cut))
        seg.info["liver_cut_ml"] = voxels * float(np.prod(spacing)) / 1000.0
        seg.timings["liver_cut"] = time.perf_counter() - t
    seg.timings["total"] = time.perf_counter() - t0
    return seg
