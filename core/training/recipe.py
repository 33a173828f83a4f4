"""The recipe of the shipped default models: 3D-IRCADb-01 as downloaded in, two model folders out.

``liverseg train-default SOURCE --out WORK`` (see :func:`train_default_models`):

1. imports every patient of SOURCE into ``WORK/dataset`` (:mod:`core.ircadb`): patients
   with CT become ``ct`` cases, the expert label maps of patients without CT
   ``labelmap`` cases (already imported patients are skipped, so a rerun is cheap); with
   ``--hcc``, the HCC-TACE-Seg series (another hospital's arterial, portal-venous and unenhanced
   CT, unpacked at run time) become ``ct`` cases with the project's silver labels
   (:mod:`core.datasets.hcc_tace`, ``resources/training-labels/hcc-tace-seg``);
2. trains the liver stage into ``WORK/liver`` and the tumour stage into ``WORK/tumor``
   (:func:`core.training.train`), each on every CT and label map except the excluded
   patients and the validation label maps; label maps are rendered into new CT for
   every sample (:mod:`core.synthetic.synth_ct`), ``real_share`` of the samples come from the
   real CTs, with anatomical augmentation (no flips) and, for tumours, synthetic
   lesions pasted into the livers;
3. writes the model card (``card`` in model.json: data, licence, intended use) and,
   unless disabled, the ONNX and int8 files;
4. with ``install``, copies both models into a models folder (``resources/models``).

Everything is resumable: ``--resume`` continues the stage runs from their last
completed epoch (after Ctrl-C, a crash or ``kill -9``), and a finished stage is not
trained again. ``exclude`` leaves patients out entirely (CT and label map), for the
leave-one-patient-out protocol of ``bench/benchmarks/real_quality.py``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..datasets import hcc_tace
from ..datasets.dataset import list_cases, read_manifest
from ..datasets.ircadb import import_ircadb, is_phantom_name
from ..model.card import (
    CARD,
    INT8_FILE,
    MODEL,
    ONNX_FILE,
    has_card,
    has_config,
    read_card,
    read_config,
    update_card,
    write_card,
)
from ..runtime.atomic import atomic_open
from ..runtime.choices import STAGES, Stage
from ..runtime.errors import LiverSegError
from ..runtime.jobs import CancelToken, ProgressFn, report
from . import defaults as D
from .trainer import TrainConfig, resume_epochs, train

log = logging.getLogger(__name__)

DATASET_NAME = "3D-IRCADb-01 (IRCAD, Strasbourg)"
LICENCE = "CC BY-NC-ND 4.0"
INTENDED_USE = ("research on contrast-enhanced abdominal CT; not for clinical decisions "
                "(trained on 3D-IRCADb-01: " + LICENCE + ")")
INTENDED_USE_WITH_SILVER = ("research on contrast-enhanced abdominal CT (arterial and unenhanced series too, "
                            "less accurately: docs/MODELS.md); not for clinical decisions "
                            "(trained on 3D-IRCADb-01: " + LICENCE + ")")
# Two label maps (not CTs) held out to choose each stage's best epoch and threshold: real
# anatomy with tumours of moderate size (patient 9: 60 mL with a cyst; 13: 88 mL).
VAL_CASES = ("3Dircadb1.9", "3Dircadb1.13")
INSTALL_NAMES = {"liver": "ircadb-liver", "tumor": "ircadb-tumor"}
# calibration.npz (the int8 calibration slices) is not installed: it holds slices of the
# licensed CTs, which may not be redistributed (CC BY-NC-ND 4.0).
MODEL_FILES = (MODEL, CARD, ONNX_FILE, INT8_FILE)
HCC_LABELS = Path(__file__).resolve().parents[2] / "resources" / "training-labels" / "hcc-tace-seg"
# Label quality: half the real-CT samples come from the expert-labelled CTs (3D-IRCADb-01 patients 7
# and 17), half from the silver-labelled HCC-TACE-Seg series (more scanners and phases, less exact
# outlines); the rendered label maps (expert anatomy, synthetic intensities) fill the rest.
SILVER_SHARE = 0.5

# The per-stage training options (the training defaults, :mod:`core.training.defaults`, where they
# agree). Epochs are multiplied by ``scale``; 40 epochs of 100 batches of 16 (64,000 samples) take
# about 45 minutes per stage on a 2-core CPU.
# Acquisition: 2.5D neighbours 2 mm apart whatever the scan's slices, 40 % of the samples
# shown as a 2.5-6 mm scan would show them, half the real-CT samples in another contrast phase.
ACQUISITION = dict(neighbour_mm=2.0, thick_slices=D.RECIPE_THICK_SLICES, phases=D.RECIPE_PHASES)
# The tumour stage sees a liver brighter than this median (HU) shifted down to it: the brightest liver
# the rendered portal-venous phase draws (core.synthetic.synth_ct: 90-130 HU; 3D-IRCADb-01 7 and 17:
# 120 and 103). Held out, HCC_015's portal-venous series (liver 174 HU) went 0.416 -> 0.622 tumour Dice.
LIVER_HU_MAX = 130.0
STAGE_OPTIONS = {
    "liver": dict(image_size=128, base_filters=8, batch_size=D.BATCH_SIZE, epochs=40, steps_per_epoch=100,
                  learning_rate=D.LEARNING_RATE, min_lr=1e-5, lr_schedule="cosine", geometry="anatomical",
                  real_share=0.4, silver_share=SILVER_SHARE, liver_lesions=D.RECIPE_LIVER_LESIONS, **ACQUISITION),
    "tumor": dict(image_size=128, base_filters=8, batch_size=D.BATCH_SIZE, epochs=40, steps_per_epoch=100,
                  learning_rate=D.LEARNING_RATE, min_lr=1e-5, lr_schedule="cosine", geometry="anatomical",
                  real_share=0.3, silver_share=SILVER_SHARE, synth_lesions=D.SYNTH_LESIONS,
                  tumour_positive_share=D.TUMOUR_POSITIVE_SHARE,
                  **ACQUISITION, liver_hu_max=LIVER_HU_MAX,
                  calibration_slices=64),  # 32 left the int8 tumour model 0.0115 off (gate 0.01); 64: 0.0078
}


class RecipeError(LiverSegError):
    """The default-model recipe cannot run (no data, bad options)."""


@dataclass(frozen=True)
class RecipeConfig:
    """Options of :func:`train_default_models`.

    Attributes:
        out: work folder (``dataset/``, ``liver/``, ``tumor/``).
        source: 3D-IRCADb-01 as downloaded (archive, folder of patients, ``ircadb-masks/``...);
            optional when ``dataset`` is given or ``out/dataset`` exists.
        dataset: an existing dataset folder to train on instead of ``out/dataset``.
        hcc: the HCC-TACE-Seg folder (``PATIENT.tar.xz`` archives): its series join the dataset
            as silver-labelled CT (unpacked into ``out/hcc-unpacked``).
        hcc_labels: the silver label files (default ``resources/training-labels/hcc-tace-seg``).
        exclude: patients left out entirely (leave-one-out).
        val_cases: label maps held out for model selection and the threshold.
        stages: which stages to train.
        scale: multiplies each stage's epochs (a GPU affords 4 or more).
        precision, loader_workers, loader_processes: passed to training (``mixed_bfloat16`` and
            worker processes on a GPU machine, whose many cores then keep the GPU fed).
        init_from: a work folder whose ``liver/`` and ``tumor/`` models each stage starts from
            (continued training, e.g. a second budget on a lent GPU).
        max_minutes: > 0: a time budget per stage instead of a number of epochs: training
            stops after the epoch that reaches it, and the learning rate follows a cosine over
            it (``lr_schedule="cosine_time"``); for a lent GPU machine.
        export_onnx: write model.onnx / model.int8.onnx at the end (needs the TensorFlow or
            PyTorch backend; on JAX run ``liverseg export-onnx`` afterwards).
        calibrate: choose each stage's threshold on the validation label maps at the end.
        seed: training seed.
        overrides: (option, value) pairs applied to both stages' :class:`TrainConfig` options
            after :data:`STAGE_OPTIONS` (tests train 32-pixel models in seconds this way).
    """

    out: str
    source: str | None = None
    dataset: str | None = None
    hcc: str | None = None
    hcc_labels: str | None = None
    exclude: tuple[str, ...] = ()
    val_cases: tuple[str, ...] = VAL_CASES
    stages: tuple[Stage, ...] = STAGES
    scale: float = 1.0
    precision: str = D.PRECISION
    loader_workers: int = D.LOADER_WORKERS
    loader_processes: bool = False
    init_from: str | None = None
    max_minutes: float = 0.0
    export_onnx: bool = True
    calibrate: bool = True
    seed: int = D.SEED
    overrides: tuple[tuple[str, object], ...] = ()


# What decides which patients train: written to WORK/recipe.json when a run starts, and taken from it
# by ``--resume`` (a resume that repeats no option keeps them; one that names other values is refused),
# so that a leave-out run resumed without ``--exclude`` never trains on, nor names on its card, the
# patients it leaves out.
PLAN_FILE = "recipe.json"
PLAN_FIELDS = ("dataset", "exclude", "val_cases", "seed")


def settle_plan(cfg: RecipeConfig, resume: bool) -> RecipeConfig:
    """``cfg`` with the saved plan of ``cfg.out`` on a resume; writes the plan when a run starts."""
    path = Path(cfg.out) / PLAN_FILE
    default = {f.name: f.default for f in fields(RecipeConfig) if f.name in PLAN_FIELDS}
    mine = {k: getattr(cfg, k) for k in PLAN_FIELDS}
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in PLAN_FIELDS}
        except (OSError, ValueError) as e:
            raise RecipeError(f"{path}: cannot read the run's plan ({e})") from e
        # a resume may leave an option out (it takes the saved one); a new start in the folder (e.g. another
        # stage) must repeat the plan
        clash = [k for k in saved if mine[k] != saved[k] and not (resume and mine[k] == default[k])]
        if clash:
            what, hint = (("run", "resume with the same (or none), or start a new --out") if resume
                          else ("work folder", "use --resume to continue it, or a new --out"))
            raise RecipeError(f"{path}: this {what} was started with "
                              + ", ".join(f"{k}={saved[k]!r}" for k in clash) + f"; {hint}")
        return replace(cfg, **{k: saved[k] for k in saved if mine[k] == default[k]}) if resume else cfg
    if resume and (Path(cfg.out) / "liver").exists():
        log.warning("%s: no %s (a run started before it was kept); resuming with the options given",
                    cfg.out, PLAN_FILE)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as f:
        json.dump({k: list(v) if isinstance(v, tuple) else v for k, v in mine.items()}, f, indent=1)
    return cfg


def prepare_dataset(cfg: RecipeConfig, progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> Path:
    """The dataset folder to train on (importing ``source`` into ``out/dataset`` when given)."""
    ds = Path(cfg.dataset) if cfg.dataset else Path(cfg.out) / "dataset"
    if cfg.source and not cfg.dataset:
        import_ircadb(cfg.source, ds, progress=progress, cancel=cancel)
    elif not cfg.dataset and not (ds / "manifest.json").is_file():
        raise RecipeError(f"{ds}: no dataset yet; give the 3D-IRCADb-01 source folder or archive")
    if cfg.hcc:
        hcc_tace.import_hcc_tace(cfg.hcc, cfg.hcc_labels or HCC_LABELS, ds, Path(cfg.out) / "hcc-unpacked",
                                 progress, cancel)
    return ds


def split_for(dataset: Path, cfg: RecipeConfig) -> tuple[tuple[str, ...], tuple[str, ...], dict]:
    """(train, val, facts): every case but the excluded and validation ones trains."""
    cases = read_manifest(dataset)["cases"]
    every = list_cases(dataset, "all")
    # a patient of HCC-TACE-Seg ("HCC_007") stands for all its volumes (HCC_007_19971227_s2, ...)
    excluded = {c for c in cases for e in cfg.exclude if c == e or (e.startswith("HCC_") and c.startswith(e + "_"))}
    unknown = [e for e in cfg.exclude if not any(c == e or c.startswith(e + "_") for c in excluded)]
    if unknown:
        raise RecipeError(f"{dataset}: cannot exclude {unknown}: not in the dataset")
    keep = [c for c in every if c not in excluded]
    val = tuple(c for c in cfg.val_cases if c in keep)
    if not val:  # the named validation maps are missing or excluded: the last label map, else the last case
        maps = [c for c in keep if cases[c].get("kind") == "labelmap"]
        val = tuple((maps or keep)[-1:])
    train = tuple(c for c in keep if c not in val)
    if not train:
        raise RecipeError(f"{dataset}: no patient left to train on (excluded {list(cfg.exclude)})")
    if not any(cases[c].get("kind", "ct") == "ct" for c in train):
        log.warning("%s: no real CT among the training patients: only rendered CT", dataset)
    facts = {"train_ct": [c for c in train if cases[c].get("kind", "ct") == "ct"],
             "train_labelmaps": [c for c in train if cases[c].get("kind") == "labelmap"],
             "val": list(val), "excluded": sorted(excluded),
             "case_sources": {c: case_source(c) for c in train + val}}
    return train, val, facts


def case_source(case_id: str) -> str:
    """Where a case came from, by its name: our phantoms are named ``phantom-s<seed>-N``, the
    HCC-TACE-Seg volumes ``HCC_NNN_...`` (:data:`core.datasets.hcc_tace.SERIES`)."""
    if case_id in {s.name for s in hcc_tace.SERIES}:
        return hcc_tace.DATASET_NAME
    return "synthetic phantom" if is_phantom_name(case_id) else DATASET_NAME


REAL = {DATASET_NAME: LICENCE, hcc_tace.DATASET_NAME: hcc_tace.LICENCE}


def data_kind(facts: dict) -> str:
    """"real" when every case is real CT or expert anatomy (3D-IRCADb-01, HCC-TACE-Seg), "demo" when
    all are phantoms, else "mixed"."""
    kinds = set(facts.get("case_sources", {}).values())
    return "real" if kinds <= set(REAL) else ("demo" if kinds == {"synthetic phantom"} else "mixed")


def label_quality(facts: dict) -> dict:
    """The training cases by the quality of their labels."""
    silver = [c for c in facts["train_ct"] if case_source(c) == hcc_tace.DATASET_NAME]
    return {"expert_ct": [c for c in facts["train_ct"] if c not in silver],
            "silver_ct": silver, "silver_ct_liver_only": [c for c in silver if hcc_tace.liver_only(c)],
            "rendered_from_expert_label_maps": facts["train_labelmaps"]}


def card(stage: str, facts: dict, result=None) -> dict:
    """The ``card`` entry of a shipped model's model.json."""
    kind = data_kind(facts)
    datasets = sorted(set(facts.get("case_sources", {}).values())) or [DATASET_NAME]
    quality = label_quality(facts)
    extra = {}
    if quality["silver_ct"]:
        extra = {"label_quality": quality,
                 "weighting": (f"{SILVER_SHARE:.0%} of the real-CT samples from the silver-labelled cases, the "
                               "rest from the expert-labelled CTs; rendered label maps fill the other samples"),
                 "attribution": {hcc_tace.DATASET_NAME: f"{hcc_tace.LICENCE}: {hcc_tace.CITATION}"}}
    return {
        "kind": kind,
        "stage": stage,
        "datasets": datasets,
        "case_sources": facts.get("case_sources", {}),
        "licence": "; ".join(f"{REAL[d]} ({d})" for d in datasets if d in REAL) or LICENCE,
        **extra,
        "train_ct_patients": facts["train_ct"],
        "train_labelmap_patients": facts["train_labelmaps"],
        "val_labelmap_patients": facts["val"],
        "excluded_patients": facts["excluded"],
        "how": ("real CT of the train_ct patients, plus CT rendered for every sample from the expert "
                "label maps of the train_labelmap patients (core.synthetic.synth_ct); see docs/MODELS.md"),
        "intended_use": INTENDED_USE_WITH_SILVER if quality["silver_ct"] else INTENDED_USE,
        "status": getattr(result, "status", None),
    }


def label_for(facts: dict) -> str:
    n_ct, n_maps = len(facts["train_ct"]), len(facts["train_labelmaps"])
    kind = data_kind(facts)
    if kind == "demo":
        return f"DEMO: synthetic phantoms only, {n_ct} CT + {n_maps} label maps"
    head = "real" if kind == "real" else "MIXED real and synthetic phantoms"
    n_silver = len(label_quality(facts)["silver_ct"])
    hcc = f" + HCC-TACE-Seg, {n_silver} silver-labelled CT ({hcc_tace.LICENCE})" if n_silver else ""
    return f"{head}: 3D-IRCADb-01, {n_ct - n_silver} CT + {n_maps} label maps ({LICENCE}){hcc}, research use"


def train_default_models(cfg: RecipeConfig, progress: ProgressFn | None = None,
                         cancel: CancelToken | None = None, resume: bool = False) -> dict:
    """Train (or resume) the default liver and tumour models; see the module docstring.

    Returns:
        {stage: :class:`core.training.RunResult`} for the stages run.

    Raises:
        RecipeError, TrainingError, DatasetError: one line naming the folder and the problem.
    """
    cfg = settle_plan(cfg, resume)
    dataset = prepare_dataset(cfg, progress, cancel)
    train_ids, val_ids, facts = split_for(dataset, cfg)
    results: dict[str, Any] = {}
    for stage in cfg.stages:
        opts: dict[str, Any] = dict(STAGE_OPTIONS[stage])
        if cfg.max_minutes > 0:
            opts.update(lr_schedule="cosine_time", epochs=100_000)
        opts.update(dict(cfg.overrides))
        if cfg.max_minutes <= 0:
            opts["epochs"] = max(1, int(round(opts["epochs"] * cfg.scale)))
        run = Path(cfg.out) / stage
        stage_ids = tuple(c for c in train_ids if stage != "tumor" or not hcc_tace.liver_only(c))
        tc = TrainConfig(dataset=str(dataset), out=str(run), stage=stage, seed=cfg.seed,
                         train_cases=stage_ids, val_cases=val_ids, precision=cfg.precision,
                         loader_workers=cfg.loader_workers, loader_processes=cfg.loader_processes,
                         init_from=str(Path(cfg.init_from) / stage / MODEL) if cfg.init_from else "",
                         max_minutes=cfg.max_minutes,
                         export_onnx=cfg.export_onnx, calibrate=cfg.calibrate, label=label_for(facts), **opts)
        again = resume and has_config(run)
        if not again and run.exists() and any(run.iterdir()):
            raise RecipeError(f"{run}: a run is already there; use --resume to continue it")
        report(progress, "recipe", len(results), len(cfg.stages), f"{stage} stage")
        if again:  # a stage's plan only grows (with --scale or --max-minutes): keep_plan
            tc = replace(tc, epochs=resume_epochs(_saved_epochs(run, tc.epochs), tc.epochs, keep_plan=True))
        result = train(tc, progress=progress, cancel=cancel, resume=again)
        results[stage] = result
        if has_card(run):
            update_card(run, card=card(stage, facts, result), label=label_for(facts))
        if result.status == "cancelled":
            break
    report(progress, "recipe", len(results), len(cfg.stages))
    return results


def _saved_epochs(run: Path, default: int) -> int:
    """The epochs a run's config.json plans (``default`` when it cannot be read)."""
    try:
        return int(read_config(run).get("epochs", default))
    except (OSError, ValueError):
        return default


def install_models(work: str | os.PathLike, dest: str | os.PathLike, default: bool = True) -> dict:
    """Copy the trained stage models of ``work`` into ``dest/ircadb-liver`` and ``dest/ircadb-tumor``.

    model.json's dataset path (a folder on the training machine) is replaced by a
    description, and ``default`` marks the pair as the one the app and the CLI use when
    no model is named. Each file is written atomically; the folder is replaced whole.

    Returns:
        {stage: installed folder}.
    """
    out = {}
    for stage, name in INSTALL_NAMES.items():
        src = Path(work) / stage
        if not (src / MODEL).is_file() or not has_card(src):
            raise RecipeError(f"{src}: no trained {stage} model (model.keras and model.json) to install")
        target = Path(dest) / name
        tmp = Path(dest) / f".{name}.installing"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in MODEL_FILES:
            if (src / f).is_file() and f != CARD:
                with open(src / f, "rb") as fi, atomic_open(tmp / f, "wb") as fo:
                    shutil.copyfileobj(fi, fo)
        meta = read_card(src)
        data = dict(meta.get("data", {}))
        names = meta.get("card", {}).get("datasets") or [DATASET_NAME]
        data["dataset"] = f"{' + '.join(names)}, imported by liverseg train-default (not shipped)"
        meta["data"] = data
        meta["default"] = bool(default)
        if isinstance(meta.get("int8"), dict) and isinstance(meta["int8"].get("calibration"), dict):
            meta["int8"]["calibration"] = {**meta["int8"]["calibration"], "file": None,
                                           "note": "calibration slices not shipped (3D-IRCADb-01 licence)"}
        write_card(tmp, meta)
        old = Path(dest) / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
        out[stage] = str(target)
    return out
