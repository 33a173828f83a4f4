"""Training data: patient-level splits and a fast, cached slice pipeline.

Cases are read once (memory-mapped), each slice is normalised and resized
to the model input once (cached in memory as float16), and batches are then
built by indexing the cache, stacking 2.5D neighbours and augmenting on the
fly (flips, 90-degree rotations, zoom, intensity), never writing anything
to disk and never decoding DICOM per sample.

Stages:
    * ``liver``: whole slices resized to the input; target liver (labels 1 and 2).
    * ``tumor``: only slices that contain liver, cropped to the case's liver
      bounding box (with a margin) before resizing, so tumours get more
      pixels; target tumour (label 2).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from .dataset import load_case
from .errors import DatasetError
from .jobs import CancelToken, ProgressFn, check, report
from .preprocess import Preprocessing, resize_bilinear

STAGES = ("liver", "tumor")
MARGIN_PX = 10


@dataclass(frozen=True)
class Split:
    """Which patients train, validate and test (never split by slice)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...] = ()
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def split_cases(case_ids: Sequence[str], val_fraction: float = 0.2, test_fraction: float = 0.0,
                seed: int = 0) -> Split:
    """Seeded patient-level split. At least one validation patient when there are two or more."""
    ids = sorted(case_ids)
    if len(ids) < 2:
        raise DatasetError(f"need at least 2 patients to split into training and validation, got {len(ids)}")
    order = list(np.random.default_rng(seed).permutation(len(ids)))
    n_val = max(1, int(round(len(ids) * val_fraction)))
    n_test = int(round(len(ids) * test_fraction))
    if n_val + n_test >= len(ids):
        raise DatasetError(f"{len(ids)} patients are too few for {n_val} validation and {n_test} test patients")
    pick = [ids[i] for i in order]
    return Split(tuple(sorted(pick[n_val + n_test:])), tuple(sorted(pick[:n_val])),
                 tuple(sorted(pick[n_val:n_val + n_test])), seed)


def liver_box(label: np.ndarray, margin: int = MARGIN_PX) -> Optional[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the liver (labels >= 1) over all slices, with a margin; None if no liver."""
    ys = np.flatnonzero(np.any(label > 0, axis=(0, 2)))
    xs = np.flatnonzero(np.any(label > 0, axis=(0, 1)))
    if not len(ys):
        return None
    h, w = label.shape[1:]
    return (max(0, ys[0] - margin), min(h, ys[-1] + 1 + margin), max(0, xs[0] - margin), min(w, xs[-1] + 1 + margin))


@dataclass
class _CachedCase:
    image: np.ndarray  # float16 [Z, S, S] normalised, resized slices
    target: np.ndarray  # uint8 [Z, S, S] 0/1
    slices: np.ndarray  # indices of usable slices


class SlicePipeline:
    """Batches of (input, target) for one stage, from cached preprocessed cases.

    Args:
        dataset: dataset folder.
        case_ids: patients to use.
        stage: "liver" or "tumor".
        pre: the preprocessing (its size is the model input).
        fraction: share of the slices to keep (the notebooks' 0.25 / 0.5 / 1.0), seeded.
        augment: random flips, rotations, zoom and intensity changes.
        seed: sampling and augmentation seed.
    """

    def __init__(self, dataset, case_ids: Sequence[str], stage: str, pre: Preprocessing, fraction: float = 1.0,
                 augment: bool = False, seed: int = 0, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r} (use {STAGES})")
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.stage, self.pre, self.augment = stage, pre, augment
        self.rng = np.random.default_rng(seed)
        self.cases: list[_CachedCase] = []
        for i, cid in enumerate(case_ids):
            check(cancel)
            report(progress, "cache", i, len(case_ids), cid)
            self.cases.append(self._cache(load_case(dataset, cid, mmap=True)))
        report(progress, "cache", len(case_ids), len(case_ids))
        index = [(c, int(z)) for c, cc in enumerate(self.cases) for z in cc.slices]
        if fraction < 1:
            keep = np.sort(np.random.default_rng(seed).permutation(len(index))[:max(1, int(len(index) * fraction))])
            index = [index[k] for k in keep]
        if not index:
            raise DatasetError(f"no usable slices for the {stage} stage in {list(case_ids)}")
        self.index = np.array(index, dtype=np.int64)

    def _cache(self, case) -> _CachedCase:
        s = self.pre.size
        hu, label = case.hu, case.label
        if self.stage == "tumor":
            box = liver_box(label)
            if box is None:
                return _CachedCase(np.zeros((0, s, s), np.float16), np.zeros((0, s, s), np.uint8), np.zeros(0, int))
            y0, y1, x0, x1 = box
            hu, label = hu[:, y0:y1, x0:x1], label[:, y0:y1, x0:x1]
            slices = np.flatnonzero(np.any(label > 0, axis=(1, 2)))
            target = label == 2
        else:
            slices = np.arange(hu.shape[0])
            target = label > 0
        image = np.empty((hu.shape[0], s, s), np.float16)
        tgt = np.empty((hu.shape[0], s, s), np.uint8)
        for z0 in range(0, hu.shape[0], 16):  # in chunks: bounded memory
            z1 = min(hu.shape[0], z0 + 16)
            image[z0:z1] = resize_bilinear(self.pre.normalise(np.asarray(hu[z0:z1])), s, s)
            tgt[z0:z1] = resize_bilinear(target[z0:z1].astype(np.float32), s, s) > 0.5
        return _CachedCase(image, tgt, slices)

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs float32 [B, S, S, C] and targets float32 [B, S, S, 1] for index rows."""
        s, c = self.pre.size, self.pre.channels
        x = np.empty((len(rows), s, s, c), np.float32)
        y = np.empty((len(rows), s, s, 1), np.float32)
        for b, r in enumerate(rows):
            ci, z = self.index[r]
            cc = self.cases[ci]
            nz = cc.image.shape[0]
            if self.pre.recipe == "window25d":
                zs = (max(z - 1, 0), z, min(z + 1, nz - 1))
            else:
                zs = (z,) * c
            x[b] = np.moveaxis(cc.image[list(zs)], 0, -1)
            y[b, ..., 0] = cc.target[z]
        if self.augment:
            self._augment(x, y)
        return x, y

    def _augment(self, x: np.ndarray, y: np.ndarray) -> None:
        rng = self.rng
        for b in range(len(x)):
            if rng.random() < 0.5:
                x[b], y[b] = x[b, :, ::-1], y[b, :, ::-1]
            k = int(rng.integers(0, 4)) if rng.random() < 0.3 else 0
            if k:
                x[b], y[b] = np.rot90(x[b], k), np.rot90(y[b], k)
            if rng.random() < 0.3:  # zoom in: crop and resize back
                s = x.shape[1]
                m = int(s * rng.uniform(0.0, 0.15))
                if m:
                    o0, o1 = rng.integers(0, 2 * m + 1, 2)
                    crop = (slice(o0, s - 2 * m + o0), slice(o1, s - 2 * m + o1))
                    x[b] = np.moveaxis(resize_bilinear(np.moveaxis(x[b][crop], -1, 0), s, s), 0, -1)
                    y[b, ..., 0] = resize_bilinear(y[b][crop][None, ..., 0], s, s)[0] > 0.5
            if rng.random() < 0.5:
                x[b] = x[b] * rng.uniform(0.9, 1.1) + rng.uniform(-0.05, 0.05)

    def epoch(self, batch_size: int, shuffle: bool = True):
        """Yield the batches of one epoch."""
        order = self.rng.permutation(len(self.index)) if shuffle else np.arange(len(self.index))
        for i in range(0, len(order), batch_size):
            yield self.batch(order[i:i + batch_size])
