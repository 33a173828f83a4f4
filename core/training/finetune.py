"""Fine-tuning: the default (or any) models taught a lab's own corrected cases, in minutes.

``liverseg finetune DATASET --from default|RUN|MODEL_DIR --out RUN`` (:func:`finetune`):

1. each stage starts from its base model's weights and keeps its saved preprocessing (input size,
   window, 2.5D neighbours) and architecture (filters, depth), so the result runs wherever the base
   model runs;
2. the lab's cases are split by patient: with 2-3 cases one is held out (the best epoch and the
   threshold are chosen on it), with more a fifth (at least one);
3. a short schedule at a low learning rate (a cosine over the time budget, ``minutes`` for all
   stages together, resumes included), and L2-SP (:func:`core.model.losses.pull_towards`): the
   kernels are pulled towards the base weights, so a few cases do not make the model forget the
   anatomy and scanners it learned (docs/MODELS.md, "Fine-tune on your data", has the numbers);
   ``freeze_norm`` also keeps the base's BatchNormalization (statistics, scale, shift): off by
   default, as on three patients of one hospital it changed neither the gain nor the forgetting;
   at the end the fine-tuned weights are blended with the base's (``blend``, :mod:`core.training.blend`:
   base + 0.7 x the change), which keeps the gain and gives back much of what was forgotten; the
   liver stage is shown the synthetic lesions (kept liver) the default recipe trained it with
   (``liver_lesions``), so a lab's few livers do not teach it that a treated tumour is not liver;
4. each stage is an ordinary run folder (``RUN/liver``, ``RUN/tumor``: live records, resume after
   Ctrl-C or ``kill -9``, ONNX + int8 with its Dice gate), its model card naming the base model
   (``base``) and the lab's cases (``finetune_cases``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog.library import default_models, user_default_models
from ..datasets.dataset import list_cases, read_manifest
from ..model.card import MODEL, has_card, has_config, read_card, update_card
from ..runtime.choices import STAGES, Stage
from ..runtime.errors import LiverSegError
from ..runtime.jobs import CancelToken, ProgressFn, report
from . import defaults as D

log = logging.getLogger(__name__)

LEARNING_RATE = 1e-4  # a tenth of training from scratch: the base weights are a good start
L2SP = 1e-3  # strength of the pull towards the base weights (per squared kernel difference, summed)
FREEZE_NORM = False  # BatchNormalization kept as the base model has it
# The fine-tuned weights are blended with the base's: base + BLEND * (fine-tuned - base) (core.training.blend).
# One hospital's proxy (docs/MODELS.md): 0.8 kept the whole gain on its next patient and halved what
# patient 17 lost; with the liver lesions and a second next patient (HCC_007), 0.7 scored higher than
# 0.8 on seven of its eight next-patient series and patient 17 (by up to 0.008), lower on one (0.002).
# 1.0 is the fine-tuned model itself.
BLEND = 0.7
# The liver stage is fine-tuned with the synthetic lesions (kept liver) the default recipe trained it
# with (core.training.recipe): without them a lab's two tumour-free or untreated livers taught it
# to drop a chemo-embolised liver's lipiodol-laden tumour and the slices around it (docs/MODELS.md,
# HCC_007 as the next patient: 1998-03 arterial 0.852 -> 0.776 plain, 0.862 with them).
LIVER_LESIONS = D.RECIPE_LIVER_LESIONS
# The recipe's acquisition augmentation (40 % thicker scans, half the real CTs in another phase):
# measured with the lesions, it changed nothing beyond 0.016 either way, so it is off.
ACQUISITION = False
STEPS_PER_EPOCH = 10  # short epochs: the time budget is met within one of them
EXPORT_SHARE = 0.12  # of each stage's budget kept for the threshold, ONNX export and int8 check


class FinetuneError(LiverSegError):
    """A fine-tune cannot start (no base model, too few cases, a base model of another kind)."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Options of :func:`finetune`.

    Attributes:
        dataset: the lab's dataset folder (``liverseg import``, or *Add to training set...*).
        base: "default" (this installation's default models), a run or work folder with
            ``liver/`` and ``tumor/``, or one model folder (its stage from its card).
        out: the fine-tune's folder (``out/liver``, ``out/tumor``).
        stages: which stages.
        minutes: time budget for all stages together (split evenly), resumes included.
        learning_rate, l2sp: see the module docstring (l2sp 0: plain fine-tuning).
        freeze_norm: keep the base model's BatchNormalization (statistics, scale, shift).
        blend: the result is base + blend * (fine-tuned - base) (1: the fine-tuned weights).
        liver_lesions: liver stage: share of samples given synthetic lesions that stay liver, as the
            default recipe trains it (the tumour stage always gets its 0.3, labelled tumour).
        acquisition: show the lab's cases as thicker scans and in other contrast phases, as the
            default recipe shows its real CTs (only where the base model has 2.5D neighbours in mm).
        export_onnx: ONNX + int8 at the end (as training does).
        seed: the split and the batches.
    """

    dataset: str
    base: str
    out: str
    stages: tuple[Stage, ...] = STAGES
    minutes: float = 10.0
    learning_rate: float = LEARNING_RATE
    l2sp: float = L2SP
    freeze_norm: bool = FREEZE_NORM
    blend: float = BLEND
    liver_lesions: float = LIVER_LESIONS
    acquisition: bool = ACQUISITION
    export_onnx: bool = True
    seed: int = 0

    def __post_init__(self):
        if not self.stages or set(self.stages) - set(STAGES):
            raise FinetuneError(f"stages must be among {STAGES}, got {self.stages}")
        if not self.minutes > 0:
            raise FinetuneError("minutes must be positive")
        if not 0 < self.blend <= 1:
            raise FinetuneError(f"blend must be in (0, 1], got {self.blend}")
        if not 0 <= self.liver_lesions <= 1:
            raise FinetuneError(f"liver_lesions must be in [0, 1], got {self.liver_lesions}")


def base_model(base: str, stage: Stage) -> Path:
    """The model folder a stage starts from (see :class:`FinetuneConfig`).

    Raises:
        FinetuneError: nothing usable there (one line naming the place and the problem).
    """
    if base == "default":
        entry = user_default_models().get(stage) or dict(zip(STAGES, default_models(), strict=True)).get(stage)
        if entry is None:
            raise FinetuneError(f"no default {stage} model installed to start from")
        return Path(entry.path).parent
    path = Path(base)
    for folder in (path / stage, path):
        if (folder / MODEL).is_file() and has_card(folder):
            found = read_card(folder).get("stage")
            if found == stage:
                return folder
            if folder == path and found:
                raise FinetuneError(f"{path}: a {found} model, not a {stage} model")
    raise FinetuneError(f"{path}: no {stage} model to start from (model.keras and model.json, here or in "
                        f"{stage}/)")


def split_lab_cases(cases: list[str], seed: int = 0, tumour_ml: Mapping[str, float] | None = None
                    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, validation) by patient: one held out of 2-3 cases, a fifth (at least one) of more.

    With ``tumour_ml`` (each case's tumour volume, the dataset's manifest) and at least two cases with
    tumour, the held-out cases are drawn from those first, always leaving one to learn from: the
    tumour stage chooses its epoch and threshold on the held-out cases, and a case without tumour
    scores every epoch 0 (a lab's tumour-free case held out made the fine-tune keep an arbitrary epoch).

    Raises:
        FinetuneError: fewer than two cases (one to learn from, one to choose the epoch on).
    """
    cases = sorted(cases)
    if len(cases) < 2:
        raise FinetuneError(f"fine-tuning needs at least 2 cases (one is held out to choose the best epoch "
                            f"and the threshold); the dataset has {len(cases)}")
    n_val = 1 if len(cases) <= 3 else max(1, round(len(cases) / 5))
    order = cases[:]
    random.Random(seed).shuffle(order)
    with_tumour = [c for c in order if tumour_ml and float(tumour_ml.get(c) or 0.0) > 0.0]
    if len(with_tumour) >= 2:
        first = with_tumour[:min(n_val, len(with_tumour) - 1)]
        order = first + [c for c in order if c not in first]
    val = tuple(sorted(order[:n_val]))
    return tuple(c for c in cases if c not in val), val


def lab_split(dataset, seed: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """:func:`split_lab_cases` of a dataset folder, with its manifest's tumour volumes."""
    facts = read_manifest(dataset).get("cases", {})
    return split_lab_cases(list_cases(dataset), seed, {c: (f or {}).get("tumor_ml", 0.0) for c, f in facts.items()})


def stage_config(cfg: FinetuneConfig, stage: Stage, base: Path, train_ids, val_ids, minutes: float):
    """The :class:`core.training.trainer.TrainConfig` of one stage: the base model's input and
    architecture, the lab's split, the fine-tuning schedule."""
    from .trainer import TrainConfig  # lite edition: training is not bundled
    meta = read_card(base)
    pre = meta.get("preprocessing") or {}
    arch = meta.get("architecture") or {}
    if pre.get("recipe", "window25d") != "window25d" or arch.get("name", "resunet") != "resunet":
        raise FinetuneError(f"{base}: cannot fine-tune a {pre.get('recipe')} / {arch.get('name')} model "
                            f"(only the window25d ResUNet models this app trains)")
    size = int(pre.get("size", meta.get("input_size", 256)))
    acq = bool(cfg.acquisition and pre.get("neighbour_mm"))
    return TrainConfig(
        dataset=cfg.dataset, out=str(Path(cfg.out) / stage), stage=stage, epochs=100_000,
        learning_rate=cfg.learning_rate, min_lr=cfg.learning_rate / 20, lr_schedule="cosine_time",
        max_minutes=minutes, steps_per_epoch=STEPS_PER_EPOCH, image_size=size,
        base_filters=int(arch.get("base_filters", 16)), depth=int(arch.get("depth", 4)),
        window=tuple(pre.get("window", (-100.0, 400.0))), neighbour_mm=pre.get("neighbour_mm"),
        liver_hu_max=pre.get("liver_hu_max"),
        geometry="anatomical", train_cases=tuple(train_ids), val_cases=tuple(val_ids), seed=cfg.seed,
        init_from=str(base / MODEL), l2sp=cfg.l2sp, freeze_norm=cfg.freeze_norm, blend=cfg.blend,
        export_onnx=cfg.export_onnx,
        synth_lesions=0.3 if stage == "tumor" else 0.0, liver_lesions=cfg.liver_lesions if stage == "liver" else 0.0,
        reduce_lr=0, thick_slices=D.RECIPE_THICK_SLICES if acq else 0.0,
        phases=D.RECIPE_PHASES if acq else 0.0,
        label=f"[lab] fine-tuned on {len(train_ids)} case(s) from {meta.get('label') or base.name}")


def finetune(cfg: FinetuneConfig, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
             resume: bool = False) -> dict:
    """Fine-tune (or resume fine-tuning) each stage; see the module docstring.

    Returns:
        {stage: :class:`core.training.trainer.RunResult`} for the stages run.

    Raises:
        FinetuneError, TrainingError, DatasetError: one line naming the folder and the problem.
    """
    from .trainer import train  # lite edition: training is not bundled
    train_ids, val_ids = lab_split(cfg.dataset, cfg.seed)
    per_stage = cfg.minutes / len(cfg.stages) * (1 - EXPORT_SHARE)
    results: dict[str, Any] = {}
    for stage in cfg.stages:
        base = base_model(cfg.base, stage)
        tc = stage_config(cfg, stage, base, train_ids, val_ids, per_stage)
        run = Path(tc.out)
        again = resume and has_config(run)
        if not again and run.exists() and any(run.iterdir()):
            raise FinetuneError(f"{run}: a run is already there; use --resume to continue it")
        report(progress, "recipe", len(results), len(cfg.stages), f"{stage} stage (from {base})")
        t = time.perf_counter()
        result = train(tc, progress=progress, cancel=cancel, resume=again)
        results[stage] = result
        if has_card(run):
            base_meta = read_card(base)
            update_card(run, base={"path": str(base), "label": base_meta.get("label", ""),
                                   "date": base_meta.get("date", ""), "card": base_meta.get("card")},
                        finetune_cases={"train": list(train_ids), "val": list(val_ids)},
                        finetune={"minutes": cfg.minutes, "learning_rate": cfg.learning_rate, "l2sp": cfg.l2sp,
                                  "freeze_norm": cfg.freeze_norm, "blend": cfg.blend,
                                  "liver_lesions": cfg.liver_lesions, "acquisition": cfg.acquisition,
                                  "seconds_this_invocation": round(time.perf_counter() - t, 1)})
        if result.status == "cancelled":
            break
    report(progress, "recipe", len(results), len(cfg.stages))
    return results

