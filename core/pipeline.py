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
from .lesion_synth import add_lesions
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
    image: np.ndarray  # uint8 [Z, S, S] normalised to [0, 1] then quantised (x 255), resized
    target: np.ndarray  # uint8 [Z, S, S] 0/1
    slices: np.ndarray  # indices of usable slices
    liver: Optional[np.ndarray] = None  # uint8 [Z, S, S] liver mask (tumour stage, for synthetic lesions)


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
        synth_lesions: tumour stage with augmentation: share of the samples that get synthetic
            lesions pasted into their liver (:mod:`core.lesion_synth`); needs a linear recipe.
    """

    def __init__(self, dataset, case_ids: Sequence[str], stage: str, pre: Preprocessing, fraction: float = 1.0,
                 augment: bool = False, seed: int = 0, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None, synth_lesions: float = 0.0):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r} (use {STAGES})")
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if not 0 <= synth_lesions <= 1:
            raise ValueError(f"synth_lesions must be in [0, 1], got {synth_lesions}")
        if synth_lesions and (stage != "tumor" or pre.recipe != "window25d"):
            raise ValueError("synthetic lesions need the tumour stage and the linear window25d recipe")
        self.stage, self.pre, self.augment = stage, pre, augment
        self.synth_lesions = synth_lesions if augment else 0.0
        self.rng = np.random.default_rng(seed)
        self.cases: list[_CachedCase] = []
        for i, cid in enumerate(case_ids):
            check(cancel)
            report(progress, "cache", i, len(case_ids), cid)
            self.cases.append(self._cache(load_case(dataset, cid, mmap=True)))
        report(progress, "cache", len(case_ids), len(case_ids))
        # One contiguous cache for all cases; rows of ``self.rows`` hold global slice numbers of
        # the C input channels (2.5D neighbours clamped inside their own case) for each sample.
        offsets = np.cumsum([0] + [cc.image.shape[0] for cc in self.cases])
        self.images = np.concatenate([cc.image for cc in self.cases]) if self.cases else None
        self.targets = np.concatenate([cc.target for cc in self.cases]) if self.cases else None
        self.liver = (np.concatenate([cc.liver for cc in self.cases])
                      if self.synth_lesions and self.cases else None)
        rows, row_case = [], []
        for c, cc in enumerate(self.cases):
            nz = cc.image.shape[0]
            row_case += [c] * len(cc.slices)
            for z in cc.slices:
                if pre.recipe == "window25d":
                    zs = (max(z - 1, 0), z, min(z + 1, nz - 1))
                else:
                    zs = (z,) * pre.channels
                rows.append([offsets[c] + k for k in zs] + [offsets[c] + z])
        self.cases = []  # the concatenated arrays hold the data
        if fraction < 1 and rows:
            keep = np.sort(np.random.default_rng(seed).permutation(len(rows))[:max(1, int(len(rows) * fraction))])
            rows = [rows[k] for k in keep]
            row_case = [row_case[k] for k in keep]
        if not rows:
            raise DatasetError(f"no usable slices for the {stage} stage in {list(case_ids)}")
        self.rows = np.array(rows, dtype=np.int64)  # [N, C + 1]: input slices, then the target slice
        self.case_ids = tuple(case_ids)
        self.row_case = np.array(row_case, dtype=np.int64)  # index into case_ids of each row
        self.positive = self.targets.reshape(len(self.targets), -1).any(axis=1)[self.rows[:, -1]]

    def epoch_order(self, rng: np.random.Generator, positive_share: float = 0.0) -> np.ndarray:
        """Sample order for one epoch; with ``positive_share`` > 0 that share of the samples is drawn
        from slices whose target is not empty (oversampling rare tumours)."""
        n = len(self.rows)
        order = rng.permutation(n)
        pos = np.flatnonzero(self.positive)
        k = int(round(n * positive_share))
        if k and len(pos) and len(pos) < k:
            order[:k] = rng.choice(pos, k, replace=True)
            order = order[rng.permutation(n)]
        return order

    def _cache(self, case) -> _CachedCase:
        s = self.pre.size
        hu, label = case.hu, case.label
        if self.stage == "tumor":
            box = liver_box(label)
            if box is None:
                empty = np.zeros((0, s, s), np.uint8)
                return _CachedCase(empty, empty, np.zeros(0, int), empty)
            y0, y1, x0, x1 = box
            hu, label = hu[:, y0:y1, x0:x1], label[:, y0:y1, x0:x1]
            slices = np.flatnonzero(np.any(label > 0, axis=(1, 2)))
            target = label == 2
        else:
            slices = np.arange(hu.shape[0])
            target = label > 0
        image = np.empty((hu.shape[0], s, s), np.uint8)
        tgt = np.empty((hu.shape[0], s, s), np.uint8)
        liver = np.empty((hu.shape[0], s, s), np.uint8) if self.synth_lesions else None
        for z0 in range(0, hu.shape[0], 16):  # in chunks: bounded memory
            z1 = min(hu.shape[0], z0 + 16)
            image[z0:z1] = np.rint(resize_bilinear(self.pre.normalise(np.asarray(hu[z0:z1])), s, s) * 255)
            tgt[z0:z1] = resize_bilinear(target[z0:z1].astype(np.float32), s, s) > 0.5
            if liver is not None:
                liver[z0:z1] = resize_bilinear((np.asarray(label[z0:z1]) > 0).astype(np.float32), s, s) > 0.5
        return _CachedCase(image, tgt, slices, liver)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, rows: np.ndarray, rng: Optional[np.random.Generator] = None) -> tuple[np.ndarray, np.ndarray]:
        """Inputs float32 [B, S, S, C] in [0, 1] and targets float32 [B, S, S, 1] for samples ``rows``.

        With augmentation, flips and 90-degree rotations are applied as views while
        gathering from the cache and zoom as an index map, so each sample is copied
        once; synthetic lesions (tumour stage) are pasted into the uint8 copy; intensity
        scale and shift are fused into the conversion to float.
        ``rng`` (default: the pipeline's own) makes batches reproducible and thread-safe.
        """
        r = self.rows[rows]
        n, s, c = len(r), self.pre.size, self.pre.channels
        x8 = np.empty((n, s, s, c), np.uint8)
        y8 = np.empty((n, s, s), np.uint8)
        scale = np.full((n, 1, 1, 1), 1 / 255, np.float32)
        shift = np.zeros((n, 1, 1, 1), np.float32)
        if not self.augment:
            for k in range(c):  # contiguous reads; one strided write per channel
                x8[..., k] = self.images[r[:, k]]
            y8[:] = self.targets[r[:, -1]]
        else:
            rng = rng or self.rng
            liver8 = np.empty((n, s, s), np.uint8) if self.liver is not None else None
            flip = rng.random(n) < 0.5
            rot = np.where(rng.random(n) < 0.3, rng.integers(1, 4, n), 0)
            zoom = rng.random(n) < 0.3
            for b in range(n):
                idx = None
                if zoom[b]:  # zoom in by 2-15 %: nearest-neighbour index map of a random crop
                    m = int(s * rng.uniform(0.02, 0.15))
                    o0, o1 = rng.integers(0, 2 * m + 1, 2)
                    base = np.round(np.linspace(0, s - 1 - 2 * m, s)).astype(np.intp)
                    idx = (o0 + base)[:, None], o1 + base

                def view(img, b=b, idx=idx):
                    if idx is not None:
                        img = img[idx]
                    if flip[b]:
                        img = img[:, ::-1]
                    return np.rot90(img, rot[b]) if rot[b] else img

                for k in range(c):
                    x8[b, ..., k] = view(self.images[r[b, k]])
                y8[b] = view(self.targets[r[b, -1]])
                if liver8 is not None:
                    liver8[b] = view(self.liver[r[b, -1]])
            if liver8 is not None:
                lo, hi = self.pre.window
                add_lesions(x8, y8, liver8, rng, 255.0 / (hi - lo), self.synth_lesions)
            scale *= rng.uniform(0.9, 1.1, (n, 1, 1, 1)).astype(np.float32)  # intensity
            shift += rng.uniform(-0.05, 0.05, (n, 1, 1, 1)).astype(np.float32)
        x = np.multiply(x8, scale, dtype=np.float32)
        x += shift
        return x, y8[..., None].astype(np.float32)

    def epoch(self, batch_size: int, shuffle: bool = True):
        """Yield the batches of one epoch."""
        order = self.rng.permutation(len(self.rows)) if shuffle else np.arange(len(self.rows))
        for i in range(0, len(order), batch_size):
            yield self.batch(order[i:i + batch_size])
