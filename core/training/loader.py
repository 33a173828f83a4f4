"""Training data: patient-level splits and a fast, cached slice pipeline.

Cases are read once (memory-mapped), each slice is normalised and resized to the model input
once (cached in memory as uint8), and batches are then built by indexing the cache, stacking 2.5D
neighbours and augmenting on the fly (:mod:`core.transforms.augment`; intensity), never writing
anything to disk and never decoding DICOM per sample.

Label-map cases (expert anatomy without CT, :mod:`core.datasets.dataset`) are cached as anatomy
codes on the model's grid; every time one of their slices is drawn, a new CT is rendered from it
(:mod:`core.synthetic.synth_ct`), after the geometric augmentation. Without augmentation
(validation, :func:`eval_pipeline`) the rendering is seeded per slice: a slice always looks the same.

Stages:
    * ``liver``: whole slices resized to the input; target liver (labels 1 and 2).
    * ``tumor``: only slices that contain liver, cropped to the case's liver
      bounding box (with a margin) before resizing, so tumours get more
      pixels; target tumour (label 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..datasets.anatomy import has_body
from ..datasets.dataset import load_case
from ..runtime.choices import STAGES, Stage
from ..runtime.errors import DatasetError
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..runtime.labels import LIVER, TUMOUR
from ..synthetic.acquisition import random_phase_table, scanner_noise
from ..synthetic.lesion_synth import add_lesions
from ..synthetic.synth_ct import distances, render
from ..transforms import augment as aug
from ..transforms.masks import inplane_box
from ..transforms.preprocess import MARGIN_PX, Preprocessing, liver_level_shift, resize_bilinear
from ..transforms.zsample import channel_weights
from .split import Split, split_cases  # noqa: F401 (importable from here)

# Simulated slice thickness (mm, uniform) of the ``thick_slices`` share: 5 mm abdominal CT is common.
THICK_MM = (2.5, 6.0)


def liver_box(label: np.ndarray, margin: int = MARGIN_PX) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the liver (labels >= 1) over all slices, with a margin; None if no liver."""
    return inplane_box(label >= LIVER, margin)


@dataclass
class _CachedCase:
    image: np.ndarray  # uint8 [Z, S, S] normalised to [0, 1] then quantised (x 255), resized; 0 for label maps
    target: np.ndarray  # uint8 [Z, S, S] 0/1
    slices: np.ndarray  # indices of usable slices
    liver: np.ndarray | None = None  # uint8 [Z, S, S] liver mask (tumour stage, for synthetic lesions)
    anat: np.ndarray | None = None  # uint8 [Z, S, S] anatomy codes (label maps: rendered per sample)
    dist: np.ndarray | None = None  # uint8 [Z, S, S, 2] mm below the skin, mm to bone (capped at 255)
    px_mm: float = 1.0  # pixel size on the model's grid
    dz: float = 1.0  # slice spacing, mm
    synth: bool = False  # a label map (rendered per sample); else real CT (``anat`` only for phases)


class SlicePipeline:
    """Batches of (input, target) for one stage, from cached preprocessed cases.

    Args:
        dataset, case_ids: the dataset folder and the patients to use.
        stage, pre: "liver" or "tumor"; the preprocessing (its size is the model input).
        fraction: share of the slices to keep (the notebooks' 0.25 / 0.5 / 1.0), seeded.
        augment, seed: random flips, rotations, zoom and intensity changes; their (and sampling's) seed.
        synth_lesions: with augmentation: share of the samples given synthetic lesions in their liver
            (:mod:`core.synthetic.lesion_synth`, linear recipe). The tumour stage learns them as
            tumour, the liver stage as liver (``TrainConfig.synth_lesions`` / ``liver_lesions``).
        geometry: "flips" or "anatomical" (:mod:`core.transforms.augment`).
        thick_slices: with augmentation and mm neighbours (``pre.neighbour_mm``): share of the
            real-CT samples (half that of the rendered ones) shown as a thicker scan would show
            them (:data:`THICK_MM`, :func:`core.transforms.zsample.channel_weights`).
        phases: with augmentation: share of the real-CT samples whose structures get another
            contrast phase (:func:`core.synthetic.acquisition.random_phase_table`, needs the case's
            anatomy); with it, any real-CT sample may get noise or a softer kernel (``scanner_noise``).
        low_contrast: with augmentation: share of the tumours drawn 8-25 HU from the liver (synth_ct, lesion_synth).

    Label-map cases among ``case_ids`` are rendered (:mod:`core.synthetic.synth_ct`); they need the
    linear ``window25d`` recipe and a body outline (skin mask).
    """

    def __init__(self, dataset, case_ids: Sequence[str], stage: Stage, pre: Preprocessing, fraction: float = 1.0,
                 augment: bool = False, seed: int = 0, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None, synth_lesions: float = 0.0, geometry: str = "flips",
                 thick_slices: float = 0.0, phases: float = 0.0, low_contrast: float = 0.0):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r} (use {STAGES})")
        if geometry not in aug.GEOMETRIES:
            raise ValueError(f"unknown geometry {geometry!r} (use {aug.GEOMETRIES})")
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if synth_lesions and pre.recipe != "window25d":
            raise ValueError(f"synthetic lesions need the linear window25d recipe, not {pre.recipe!r}")
        bad = {k: v for k, v in dict(synth_lesions=synth_lesions, thick_slices=thick_slices, phases=phases,
                                     low_contrast=low_contrast).items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"shares must be in [0, 1], got {bad}")
        if thick_slices and pre.offsets_mm is None:
            raise ValueError("thick-slice simulation needs a model whose neighbours are in mm (neighbour_mm)")
        self.stage, self.pre, self.augment, self.geometry = stage, pre, augment, geometry
        on = 1.0 if augment else 0.0  # the shares apply to augmented (training) batches only
        self.thick_slices, self.phases, self.low_contrast = thick_slices * on, phases * on, low_contrast * on
        self.synth_lesions = synth_lesions * on
        self.seed, self.rng = seed, np.random.default_rng(seed)
        self._rendered: dict[int, np.ndarray] = {}  # row -> rendered uint8 sample (no augmentation)
        self.cases: list[_CachedCase] = []
        silver = []  # per case: labels made by a model and reviewed (core.datasets.hcc_tace), not an expert's
        for i, cid in enumerate(case_ids):
            check(cancel)
            report(progress, "cache", i, len(case_ids), cid)
            case = load_case(dataset, cid, mmap=True)
            silver.append(case.meta.get("labels") == "silver")
            if case.hu is None:
                if pre.recipe != "window25d":
                    raise DatasetError(f"{cid}: a label map without CT is rendered in HU and needs the "
                                       f"linear window25d recipe, not {pre.recipe!r}")
                if case.anatomy is None or not has_body(case.anatomy):
                    raise DatasetError(f"{cid}: label map without a body outline (skin mask): cannot render CT")
            self.cases.append(self._cache(case))
        report(progress, "cache", len(case_ids), len(case_ids))
        # One contiguous cache for all cases; rows of ``self.rows`` hold global slice numbers of
        # the C input channels (2.5D neighbours clamped inside their own case) for each sample.
        offsets = np.cumsum([0] + [cc.image.shape[0] for cc in self.cases])
        self.images = np.concatenate([cc.image for cc in self.cases]) if self.cases else np.zeros((0, 1, 1), np.uint8)
        self.targets = np.concatenate([cc.target for cc in self.cases]) if self.cases else self.images  # refused below
        self.liver = (np.concatenate([cc.liver for cc in self.cases])
                      if self.synth_lesions and self.cases else None)  # the liver stage's is its target
        self.case_nz = np.array([cc.image.shape[0] for cc in self.cases], np.int64)
        self.case_dz = np.array([cc.dz for cc in self.cases], np.float64)
        self.case_offset = offsets[:-1].astype(np.int64)
        self.anat = self.dist = None
        if any(cc.anat is not None for cc in self.cases):
            self.anat = np.concatenate([cc.anat if cc.anat is not None else np.zeros(cc.image.shape, np.uint8)
                                        for cc in self.cases])
            self.dist = np.concatenate([cc.dist if cc.dist is not None else np.zeros(cc.image.shape + (2,), np.uint8)
                                        for cc in self.cases])
            self.px_mm = np.concatenate([np.full(cc.image.shape[0], cc.px_mm, np.float32) for cc in self.cases])
        synth_case = [cc.synth for cc in self.cases]
        rows, row_case = [], []
        for c, cc in enumerate(self.cases):
            nz = cc.image.shape[0]
            row_case += [c] * len(cc.slices)
            zs = np.asarray(cc.slices, dtype=int)
            rows += (np.concatenate([pre.neighbours(zs, nz), zs[:, None]], axis=1) + offsets[c]).tolist()
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
        self.row_synth = np.array([synth_case[c] for c in row_case], dtype=bool)  # rendered from anatomy
        self.row_silver = np.array([silver[c] for c in row_case], dtype=bool)
        self.positive = np.asarray(self.targets.reshape(len(self.targets), -1).any(axis=1))[self.rows[:, -1]]

    def epoch_order(self, rng: np.random.Generator, positive_share: float = 0.0, real_share: float = 0.0,
                    n: int = 0, silver_share: float = -1.0) -> np.ndarray:
        """Sample order for one epoch.

        Args:
            positive_share: > 0: at least that share of the samples is drawn from slices whose
                target is not empty (oversampling rare tumours).
            real_share: > 0 with both real-CT and label-map slices: that share of the samples is
                drawn from the real-CT slices, the rest from the rendered ones.
            n: samples per epoch (default: one per slice).
            silver_share: in [0, 1] with real CT of both label kinds: that share of the real-CT samples
                from silver-labelled cases, the rest from expert-labelled ones (else in proportion to slices).
        """
        n = n or len(self.rows)
        real, synth = np.flatnonzero(~self.row_synth), np.flatnonzero(self.row_synth)
        if real_share > 0 and len(real) and len(synth):
            k = int(round(n * real_share))
            silver, expert = real[self.row_silver[real]], real[~self.row_silver[real]]
            ks = int(round(k * silver_share)) if 0 <= silver_share <= 1 and len(silver) and len(expert) else -1
            picks = ([rng.choice(real, k, replace=len(real) < k)] if ks < 0 else
                     [rng.choice(silver, ks, replace=len(silver) < ks),
                      rng.choice(expert, k - ks, replace=len(expert) < k - ks)])
            order = np.concatenate(picks + [rng.choice(synth, n - k, replace=len(synth) < n - k)])
            order = order[rng.permutation(n)]
        elif n == len(self.rows):
            order = rng.permutation(n)
        else:
            order = rng.choice(len(self.rows), n, replace=n > len(self.rows))
        pos = np.flatnonzero(self.positive)
        k = int(round(n * positive_share))
        if k and len(pos) and np.count_nonzero(self.positive[order]) < k:
            order[:k] = rng.choice(pos, k, replace=True)
            order = order[rng.permutation(n)]
        return order

    def _cache(self, case) -> _CachedCase:
        s = self.pre.size
        label = case.label
        synth = case.hu is None
        src = case.anatomy if synth else case.hu
        if self.stage == "tumor":
            box = liver_box(label)
            if box is None:
                empty = np.zeros((0, s, s), np.uint8)
                return _CachedCase(empty, empty, np.zeros(0, int), empty)
            y0, y1, x0, x1 = box
            src, label = src[:, y0:y1, x0:x1], label[:, y0:y1, x0:x1]
            slices = np.flatnonzero(np.any(label >= LIVER, axis=(1, 2)))
            target = label == TUMOUR
        else:
            slices = np.arange(src.shape[0])
            target = label >= LIVER
        nz = src.shape[0]
        image = np.zeros((nz, s, s), np.uint8)
        tgt = np.empty((nz, s, s), np.uint8)
        liver = np.empty((nz, s, s), np.uint8) if self.synth_lesions and self.stage == "tumor" else None
        codes = src if synth else None
        # a real liver brighter than pre.liver_hu_max is shown shifted down, as inference shows it
        shift = 0.0 if synth or self.stage != "tumor" else liver_level_shift(src, label >= LIVER, self.pre)
        if not synth and self.phases and case.anatomy is not None:  # real CT: structures for phases
            codes = case.anatomy[:, y0:y1, x0:x1] if self.stage == "tumor" else case.anatomy
        anat = np.empty((nz, s, s), np.uint8) if codes is not None else None
        iy = np.minimum(((np.arange(s) + 0.5) * src.shape[1] / s).astype(np.intp), src.shape[1] - 1)
        ix = np.minimum(((np.arange(s) + 0.5) * src.shape[2] / s).astype(np.intp), src.shape[2] - 1)
        for z0 in range(0, nz, 16):  # in chunks: bounded memory
            z1 = min(nz, z0 + 16)
            if anat is not None and codes is not None:  # nearest neighbour (pixel centres, as the resize)
                anat[z0:z1] = np.asarray(codes[z0:z1])[:, iy][:, :, ix]
            if not synth:
                image[z0:z1] = np.rint(resize_bilinear(self.pre.normalise(np.asarray(src[z0:z1]), shift), s, s) * 255)
            tgt[z0:z1] = resize_bilinear(target[z0:z1].astype(np.float32), s, s) > 0.5
            if liver is not None:
                liver[z0:z1] = resize_bilinear((np.asarray(label[z0:z1]) >= LIVER).astype(np.float32), s, s) > 0.5
        if liver is None and self.synth_lesions:
            liver = tgt  # liver stage: the target is the liver
        dz = float(case.spacing[0])
        if not synth or anat is None:  # rendered cases have anatomy
            return _CachedCase(image, tgt, slices, liver, anat, dz=dz)
        px_mm = float(case.spacing[1]) * src.shape[1] / s
        dist = np.zeros((nz, s, s, 2), np.uint8)
        dist[slices] = np.minimum(distances(anat[slices], px_mm), 255).astype(np.uint8)
        return _CachedCase(image, tgt, slices, liver, anat, dist, px_mm, dz, True)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, rows: np.ndarray, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Inputs float32 [B, S, S, C] in [0, 1] and targets float32 [B, S, S, 1] for samples ``rows``.

        With augmentation, the geometric transform (:mod:`core.transforms.augment`) is applied while
        gathering from the cache, so each sample is copied once; label-map samples are then
        rendered (:mod:`core.synthetic.synth_ct`); synthetic lesions (tumour stage) are pasted into the
        uint8 copy; intensity scale and shift are fused into the conversion to float.
        ``rng`` (default: the pipeline's own) makes batches reproducible and thread-safe. Without
        augmentation label-map samples are rendered seeded by (pipeline seed, row): the same every time.

        With ``pre.neighbour_mm`` each channel is interpolated at its position (``thick_slices``
        of them as a thicker scan would show them): :func:`core.transforms.zsample.channel_weights`.
        """
        rows = np.asarray(rows)
        r = self.rows[rows]
        n, s, c = len(r), self.pre.size, self.pre.channels
        x8 = np.empty((n, s, s, c), np.uint8)
        y8 = np.empty((n, s, s), np.uint8)
        synth = self.row_synth[rows]
        scale = np.full((n, 1, 1, 1), 1 / 255, np.float32)
        shift = np.zeros((n, 1, 1, 1), np.float32)
        liver8 = None
        if not self.augment and self.pre.offsets_mm is None and not synth.any():
            for k in range(c):  # contiguous reads; one strided write per channel
                x8[..., k] = self.images[r[:, k]]
            y8[:] = self.targets[r[:, -1]]
        else:
            g = (rng or self.rng) if self.augment else None
            liver8 = np.empty((n, s, s), np.uint8) if self.liver is not None and self.augment else None
            for b in range(n):
                view = self._view(g, s)
                self._sample(x8[b], rows[b], synth[b], view, g)
                y8[b] = view(self.targets[r[b, -1]])
                if liver8 is not None and self.liver is not None:
                    liver8[b] = view(self.liver[r[b, -1]])
            if g is not None:
                scale *= g.uniform(0.9, 1.1, (n, 1, 1, 1)).astype(np.float32)  # intensity
                shift += g.uniform(-0.05, 0.05, (n, 1, 1, 1)).astype(np.float32)
        if liver8 is not None and g is not None:  # augmented batches only
            lo, hi = self.pre.window
            add_lesions(x8, y8, liver8, g, 255.0 / (hi - lo), self.synth_lesions, label=self.stage == "tumor",
                        low_contrast=self.low_contrast)
        x = np.multiply(x8, scale, dtype=np.float32)
        x += shift
        return x, y8[..., None].astype(np.float32)

    def _view(self, rng: np.random.Generator | None, s: int):
        """One sample's geometric augmentation as a function of an [S, S] image (none without rng)."""
        if rng is None:
            return lambda img: img
        if self.geometry == "flips":
            flip, rot, idx = aug.flips_map(rng, s)
            return lambda img: aug.apply_flips(img, flip, rot, idx)
        m = aug.affine_map(rng, s)
        return lambda img: aug.apply_affine(img, m)

    def channels(self, row: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(global slice idx [C, K], weights [C, K]) that make the channels of sample ``row``
        (:func:`core.transforms.zsample.channel_weights`; by index when neighbours are not in mm: K = 1)."""
        if self.pre.offsets_mm is None:
            return self.rows[row, :-1, None], np.ones((self.pre.channels, 1), np.float32)
        case = self.row_case[row]
        off = self.case_offset[case]
        dz = float(self.case_dz[case])
        thick = None  # label maps: half as often (each rendered slice costs ~2 ms)
        if rng is not None and rng.random() < self.thick_slices * (0.5 if self.row_synth[row] else 1.0):
            thick = rng.uniform(*THICK_MM)
        idx, w = channel_weights(int(self.case_nz[case]), dz, int(self.rows[row, -1] - off),
                                 self.pre.offsets_mm, thick)
        return idx + off, w

    def _sample(self, out: np.ndarray, row: int, synth: bool, view, rng) -> None:
        """One sample's C channels into ``out`` (uint8 [S, S, C], normalised x 255)."""
        idx, w = self.channels(row, rng)
        c = out.shape[-1]
        if not synth and idx.shape[1] == 1 and not (self.phases and rng is not None):
            for k in range(c):  # one slice a channel: copied as it is
                out[..., k] = view(self.images[idx[k, 0]])
            return
        if synth and rng is None and int(row) in self._rendered:
            out[:] = self._rendered[int(row)]
            return
        uniq, inv = np.unique(idx, return_inverse=True)
        inv = inv.reshape(idx.shape)
        if synth:
            src = self._render_slices(uniq, view, row, rng)
        else:
            src = np.stack([view(self.images[u]) for u in uniq], axis=-1).astype(np.float32)
            if self.phases and rng is not None and self.anat is not None and rng.random() < self.phases:
                table = random_phase_table(rng, 255.0 / (self.pre.window[1] - self.pre.window[0]))
                src += table[np.stack([view(self.anat[u]) for u in uniq], axis=-1)]
        mixed = (src.reshape(-1, len(uniq)) @ _dense(inv, w, len(uniq)).T).reshape(out.shape)
        if not synth and rng is not None and self.phases:
            scanner_noise(mixed, rng, 255.0 / (self.pre.window[1] - self.pre.window[0]))
        np.clip(mixed, 0, 255, out=mixed)
        out[:] = np.rint(mixed)
        if synth and rng is None:
            self._rendered[int(row)] = out.copy()

    def _render_slices(self, uniq: np.ndarray, view, row: int, rng) -> np.ndarray:
        """Rendered CT of a label-map sample's slices ``uniq``: float32 [S, S, U] normalised x 255.

        One appearance for all of them; without augmentation seeded by (pipeline seed, row).
        """
        assert self.anat is not None and self.dist is not None, "rendered rows have anatomy"
        lo, hi = self.pre.window
        centre = self.rows[row, -1]
        codes = np.stack([view(self.anat[u]) for u in uniq], axis=-1)[None]
        dist = np.stack([view(self.dist[centre, ..., k]) for k in range(2)], axis=-1)[None].astype(np.float32)
        g = rng if rng is not None else np.random.default_rng([self.seed, 7919, int(row)])
        hu = render(codes, dist, self.px_mm[[centre]], g, self.low_contrast)[0]
        return np.clip((hu - lo) * (255.0 / (hi - lo)), 0, 255)

    def epoch(self, batch_size: int, shuffle: bool = True):
        """Yield the batches of one epoch."""
        order = self.rng.permutation(len(self.rows)) if shuffle else np.arange(len(self.rows))
        for i in range(0, len(order), batch_size):
            yield self.batch(order[i:i + batch_size])


def eval_pipeline(dataset, case_ids: Sequence[str], stage: Stage, pre: Preprocessing, seed: int = 0,
                  progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> SlicePipeline:
    """Every slice of ``case_ids``, unaugmented: what validation, the threshold search and the int8
    calibration and gate (:mod:`core.training.threshold`, :mod:`core.training.quantize`) see."""
    return SlicePipeline(dataset, list(case_ids), stage, pre, 1.0, False, seed, progress, cancel)


def _dense(inv: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """float32 [C, n] mixing matrix from per-channel (index into n, weight) pairs [C, K]."""
    m = np.zeros((inv.shape[0], n), np.float32)
    np.add.at(m, (np.arange(inv.shape[0])[:, None], inv), w)
    return m
