"""Training runs: ``train(config, progress, cancel) -> RunResult``.

A run writes its folder as :mod:`core.model.card` describes (config.json, split.json,
metrics.jsonl, state.json, last.keras, model.keras and its card model.json, the ONNX
files, tensorboard/); every file is replaced atomically, so a run killed at any moment
(even ``kill -9``) resumes from its last completed epoch with the same curves. The
Keras side (batches, distribution strategy, the checkpoint, schedule, stop and record callbacks) is in
:mod:`core.training.callbacks`.

Training data: the dataset's CT cases, split by patient with a seed, or the
patients named in ``train_cases`` / ``val_cases``; label-map cases among them
(expert anatomy without CT) are rendered into CT per sample (:mod:`core.synthetic.synth_ct`),
and ``real_share`` sets the share of samples drawn from the real CTs.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from ..datasets.dataset import list_cases, read_manifest
from ..model import card as runs
from ..model.card import RunState, read_metrics, rewrite_metrics  # noqa: F401 (EpochEvent, read_metrics: importable from here too)
from ..model.io import ModelError, load_model, save_model_atomic
from ..model.losses import LOSSES, dice_metric, iou_metric, pull_towards
from ..model.resunet import ResUNetConfig, build_resunet
from ..runtime.choices import Stage
from ..runtime.errors import LiverSegError
from ..runtime.jobs import CancelToken, ProgressFn, check
from ..runtime.ml_backend import load_keras
from ..transforms.augment import GEOMETRIES
from ..transforms.preprocess import Preprocessing
from . import defaults as D
from .blend import blend_run_model
from .callbacks import EpochEvent, NullScope, distribution_strategy, make_batches, run_callbacks  # noqa: F401
from .defaults import PRECISIONS, STRATEGIES  # noqa: F401 (importable from here too)
from .loader import STAGES, SlicePipeline, Split, eval_pipeline, split_cases
from .onnx_export import export_onnx
from .quantize import quantize_int8
from .threshold import calibrate_threshold

log = logging.getLogger(__name__)



class TrainingError(LiverSegError):
    """Training cannot start or cannot go on (NaN loss, bad options, bad run folder)."""


XLA_MIN_SIZE = 96  # px: XLA for training from this image size up (see train())
# config.json's key of a TrainConfig field where their names differ (the keys keep their names: runs written before).
CONFIG_KEYS = {"tumour_positive_share": "tumor_positive_share"}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (saved as config.json)."""

    dataset: str
    out: str
    stage: Stage = "liver"
    epochs: int = D.EPOCHS
    batch_size: int = D.BATCH_SIZE
    learning_rate: float = D.LEARNING_RATE
    image_size: int = D.IMAGE_SIZE
    base_filters: int = D.BASE_FILTERS
    depth: int = D.DEPTH
    recipe: str = D.RECIPE
    window: tuple[float, float] = (-100.0, 400.0)
    loss: str = D.LOSS
    fraction: float = D.FRACTION
    val_fraction: float = 0.2
    seed: int = D.SEED
    augment: bool = True
    tumour_positive_share: float = D.TUMOUR_POSITIVE_SHARE  # tumour stage: share of samples from slices with tumour
    synth_lesions: float = D.SYNTH_LESIONS  # tumour stage, window25d: share of samples given synthetic lesions
    liver_lesions: float = 0.0  # liver stage, window25d: same, lesions that stay liver (tumours are liver)
    early_stopping: int = D.EARLY_STOPPING  # patience in epochs without val Dice gain; 0 = off
    reduce_lr: int = 3  # patience before halving the learning rate; 0 = off
    min_lr: float = 1e-6
    precision: str = D.PRECISION
    strategy: str = D.STRATEGY
    threshold: float = 0.5  # the starting threshold; see calibrate
    calibrate: bool = True  # at the end: choose the threshold on the validation patients (core.training.threshold)
    batch_log_seconds: float = 1.0  # throttle of batch records and events
    export_onnx: bool = True  # at the end: model.onnx and a Dice-checked model.int8.onnx
    calibration_slices: int = 32  # int8 calibration slices (core.training.quantize.CALIBRATION_SLICES)
    train_cases: tuple[str, ...] = ()  # with val_cases: the split (CT and label-map cases); else seeded
    val_cases: tuple[str, ...] = ()
    real_share: float = 0.0  # > 0: share of samples from real CT cases, the rest rendered from label maps
    silver_share: float = -1.0  # in [0, 1]: share of the real-CT samples from silver-labelled cases (else by slices)
    geometry: str = "flips"  # augmentation: "flips" (notebooks) or "anatomical" (core.transforms.augment)
    steps_per_epoch: int = 0  # 0: one pass over the training slices
    # "plateau" (halve after reduce_lr epochs without gain), "cosine" (over the epochs) or
    # "cosine_time" (over max_minutes: for a fixed time budget, e.g. a lent GPU machine)
    lr_schedule: str = "plateau"
    max_minutes: float = 0.0  # > 0: stop after the epoch that reaches this many minutes (this invocation)
    label: str = ""  # the model card's label (e.g. "real CT: 3D-IRCADb-01 ...")
    loader_workers: int = D.LOADER_WORKERS  # threads building training batches (more on a GPU machine's many cores)
    loader_processes: bool = False  # worker processes instead of threads (rendering holds the GIL often)
    init_from: str = ""  # start from this model's weights (a .keras file of the same architecture)
    neighbour_mm: float | None = None  # 2.5D neighbours this many mm apart (None: adjacent slices)
    liver_hu_max: float | None = None  # a brighter liver is shifted down to this (core.transforms.preprocess)
    thick_slices: float = 0.0  # with neighbour_mm: share of samples shown as a thicker scan (core.training.loader)
    phases: float = 0.0  # share of real-CT samples given another contrast phase, noise or kernel
    low_contrast: float = 0.0  # share of rendered / synthetic tumours 8-25 HU from the liver (core.training.loader)
    l2sp: float = 0.0  # with init_from: pull the kernels towards the start weights (core.model.losses.pull_towards)
    # with init_from: BatchNormalization kept as the start model has it (statistics, scale and shift; run in
    # inference mode), so a few cases cannot move the normalisation that every other scanner depends on
    freeze_norm: bool = False
    blend: float = 1.0  # with init_from: the best model becomes start + blend * (trained - start) (core.training.blend)

    def __post_init__(self):
        problems = []
        if self.stage not in STAGES:
            problems.append(f"stage must be one of {STAGES}")
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {tuple(LOSSES)}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}")
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {STRATEGIES}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            problems.append("epochs, batch size and learning rate must be positive")
        if not 0 < self.fraction <= 1:
            problems.append("fraction must be in (0, 1]")
        if not 0 <= self.synth_lesions <= 1 or not 0 <= self.liver_lesions <= 1:
            problems.append("synth_lesions and liver_lesions must be in [0, 1]")
        if not all(0 <= v <= 1 for v in (self.thick_slices, self.phases, self.low_contrast)):
            problems.append("thick_slices, phases and low_contrast must be in [0, 1]")
        if self.neighbour_mm is not None and (self.recipe != "window25d" or not self.neighbour_mm > 0):
            problems.append("neighbour_mm needs the window25d recipe and a positive distance")
        if self.l2sp < 0 or (self.l2sp and not self.init_from):
            problems.append("l2sp must be >= 0 and needs init_from (the weights to stay near)")
        if self.freeze_norm and not self.init_from:
            problems.append("freeze_norm needs init_from (the statistics to keep)")
        if not 0 < self.blend <= 1 or (self.blend < 1 and not self.init_from):
            problems.append("blend must be in (0, 1] and, below 1, needs init_from (the weights to blend with)")
        if self.thick_slices and self.neighbour_mm is None:
            problems.append("thick_slices needs neighbour_mm")
        if self.image_size % (2 ** self.depth):
            problems.append(f"image size {self.image_size} must be divisible by 2**depth = {2 ** self.depth}")
        if self.geometry not in GEOMETRIES:
            problems.append(f"geometry must be one of {GEOMETRIES}")
        if self.lr_schedule not in ("plateau", "cosine", "cosine_time"):
            problems.append("lr_schedule must be 'plateau', 'cosine' or 'cosine_time'")
        if self.lr_schedule == "cosine_time" and self.max_minutes <= 0:
            problems.append("lr_schedule 'cosine_time' needs max_minutes > 0")
        if not 0 <= self.real_share < 1:
            problems.append("real_share must be in [0, 1)")
        if self.silver_share > 1:
            problems.append("silver_share must be at most 1 (negative: in proportion to the slices)")
        if bool(self.train_cases) != bool(self.val_cases):
            problems.append("give both train_cases and val_cases, or neither")
        if set(self.train_cases) & set(self.val_cases):
            both = sorted(set(self.train_cases) & set(self.val_cases))
            problems.append(f"patients both in training and validation: {both}")
        if problems:
            raise TrainingError("invalid training options: " + "; ".join(problems))

    def to_dict(self) -> dict:
        """config.json's form: the fields, named as :data:`CONFIG_KEYS` says where it names them."""
        return {CONFIG_KEYS.get(k, k): v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        field_of = {key: f for f, key in CONFIG_KEYS.items()}
        d = {field_of.get(k, k): v for k, v in d.items()}
        d = {k: (tuple(v) if k in ("window", "train_cases", "val_cases") else v) for k, v in d.items() if k in known}
        d.setdefault("synth_lesions", 0.0)  # a saved config without the key trained without synthetic lesions
        return cls(**d)

    def preprocessing(self) -> Preprocessing:
        window = cast("tuple[float, float]", tuple(self.window))
        return Preprocessing(self.recipe, window, self.image_size, 3, self.neighbour_mm, self.liver_hu_max)


@dataclass
class RunResult:
    """How a run ended."""

    run_dir: str
    status: str  # "completed", "early_stopped", "time_budget" (max_minutes reached) or "cancelled"
    epochs_done: int
    best_epoch: int
    best_val_dice: float
    model_path: str | None
    history: list = field(default_factory=list)


def _make_datasets(cfg: TrainConfig, split: Split, progress, cancel):
    pre = cfg.preprocessing()
    share = cfg.synth_lesions if cfg.stage == "tumor" else cfg.liver_lesions
    synth = share if pre.recipe == "window25d" else 0.0
    train = SlicePipeline(cfg.dataset, split.train, cfg.stage, pre, cfg.fraction, cfg.augment, cfg.seed,
                          progress, cancel, synth_lesions=synth, geometry=cfg.geometry,
                          thick_slices=cfg.thick_slices, phases=cfg.phases, low_contrast=cfg.low_contrast)
    val = eval_pipeline(cfg.dataset, split.val, cfg.stage, pre, cfg.seed, progress, cancel)
    return (*make_batches(cfg, train, val), train, val)


def _model_json(cfg: TrainConfig, best: dict, data: dict) -> dict:
    keras = load_keras()
    return {
        "format": "liverseg-model", "version": 1, "stage": cfg.stage,
        "input_size": cfg.image_size, "channels": 3,
        "preprocessing": cfg.preprocessing().to_dict(), "threshold": cfg.threshold,
        "architecture": {"name": "resunet", "base_filters": cfg.base_filters, "depth": cfg.depth},
        "backend": keras.backend.backend(), "keras": keras.__version__, "precision": cfg.precision,
        "data": data, "best": best, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "label": cfg.label,
    }


def resume_epochs(saved: int, asked: int, keep_plan: bool = False) -> int:
    """The epochs a resumed run plans, decided here only: the asked number, so a resume may extend
    a run (and ``liverseg train --resume --epochs N`` may end it sooner); ``keep_plan``: never fewer
    than the ``saved`` plan (the default-model recipe, whose plan follows --scale / --max-minutes)."""
    return max(saved, asked) if keep_plan else asked


def make_split(cfg: TrainConfig) -> Split:
    """The run's patient split: ``train_cases``/``val_cases`` when given, else a seeded split of the CT cases."""
    if not cfg.train_cases:
        return split_cases(list_cases(cfg.dataset), cfg.val_fraction, 0.0, cfg.seed)
    known = set(list_cases(cfg.dataset, "all"))
    missing = [c for c in cfg.train_cases + cfg.val_cases if c not in known]
    if missing:
        raise TrainingError(f"{cfg.dataset}: no case(s) {missing} in this dataset")
    return Split(tuple(cfg.train_cases), tuple(cfg.val_cases), (), cfg.seed)


def data_summary(cfg: TrainConfig, split: Split, train_pipe, val_pipe) -> dict:
    """model.json's ``data``: patients by kind (real CT / label map) and where they came from."""
    cases = read_manifest(cfg.dataset)["cases"]

    def kind(ids, k):
        return [c for c in ids if cases.get(c, {}).get("kind", "ct") == k]
    return {"dataset": str(cfg.dataset), "train_patients": list(split.train), "val_patients": list(split.val),
            "train_ct": kind(split.train, "ct"), "train_labelmaps": kind(split.train, "labelmap"),
            "val_ct": kind(split.val, "ct"), "val_labelmaps": kind(split.val, "labelmap"),
            "sources": sorted({cases[c].get("source", "") for c in split.train + split.val if c in cases}),
            "train_slices": len(train_pipe), "val_slices": len(val_pipe), "fraction": cfg.fraction,
            "real_share": cfg.real_share, "silver_share": cfg.silver_share,
            **({"init_from": cfg.init_from} if cfg.init_from else {})}


def train(config: TrainConfig, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
          resume: bool = False) -> RunResult:
    """Train one stage's ResUNet; see the module docstring for the run folder.

    Args:
        config: the options (ignored on resume except ``out``: the run's own config.json is used).
        progress: receives ``Progress("train", batch, batches)`` and :class:`EpochEvent` per epoch.
        cancel: stops within one batch; ``last.keras`` stays usable.
        resume: continue the run in ``config.out`` from its last completed epoch.

    Raises:
        TrainingError: bad options or run folder, NaN loss.
    """
    keras = load_keras()


    run = Path(config.out)
    if resume:
        if not runs.has_config(run):
            raise TrainingError(f"{run}: nothing to resume (no {runs.CONFIG})")
        cfg = TrainConfig.from_dict(runs.read_config(run))
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "out": str(run)})
        state = RunState.read(run)
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in runs.read_split(run).items()}
        split = Split(**fields)
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "epochs": resume_epochs(cfg.epochs, config.epochs)})
    else:
        cfg = config
        if run.exists() and any(run.iterdir()):
            raise TrainingError(f"{run}: run folder is not empty; use --resume to continue it or choose another")
        run.mkdir(parents=True, exist_ok=True)
        split = make_split(cfg)
        runs.write_split(run, json.loads(split.to_json()))
        state = RunState()
    runs.write_config(run, cfg.to_dict())
    done_epochs = state.epoch
    runs.rewrite_metrics(run, done_epochs)

    if cfg.precision != "float32":
        keras.mixed_precision.set_global_policy(cfg.precision)
    try:
        train_ds, val_ds, train_pipe, val_pipe = _make_datasets(cfg, split, progress, cancel)
        train_ds.set_epoch(done_epochs)
        strategy = distribution_strategy(cfg.strategy, TrainingError)
        scope = strategy.scope() if strategy else NullScope()
        with scope:
            if done_epochs and (run / runs.LAST_MODEL).exists():
                model = load_model(run / runs.LAST_MODEL, compile=True)
            else:
                keras.utils.set_random_seed(cfg.seed)
                model = build_resunet(ResUNetConfig(cfg.image_size, 3, cfg.base_filters, cfg.depth),
                                      name=f"resunet_{cfg.stage}")
                if cfg.init_from:
                    try:
                        model.set_weights(_start_weights(cfg))
                    except ValueError as exc:
                        raise TrainingError(f"{cfg.init_from}: cannot start from this model: {exc}") from None
                if cfg.freeze_norm:
                    freeze_normalisation(model)
                model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=LOSSES[cfg.loss],
                              metrics=[dice_metric(cfg.threshold), iou_metric(cfg.threshold)])
            if cfg.l2sp:  # not saved with the model: applied again on resume
                pull_towards(model, _start_weights(cfg), cfg.l2sp)
            if not model.optimizer.built:
                # Built here, eagerly: Keras builds it inside the first traced step on TensorFlow,
                # and a step that creates variables is traced twice (~10 s of a small run).
                model.optimizer.build(model.trainable_variables)
        if keras.backend.backend() == "tensorflow" and strategy is None and cfg.image_size >= XLA_MIN_SIZE:
            # Keras' "auto" leaves XLA off for this model on TensorFlow; on a 2-core CPU XLA trains
            # the ResUNet 1.56-1.8x faster at 128 px (docs/BENCHMARKS.md). Below XLA_MIN_SIZE the
            # compilation (tens of seconds) costs more than a small model's whole run saves.
            model.jit_compile = True
        if state.lr is not None:
            model.optimizer.learning_rate.assign(state.lr)
        data = data_summary(cfg, split, train_pipe, val_pipe)
        cbs = run_callbacks(run, cfg, state, data, progress, cancel, save_model_atomic, _model_json)
        callbacks = list(cbs.keras)
        if keras.backend.backend() == "tensorflow":
            callbacks.append(keras.callbacks.TensorBoard(str(run / runs.TENSORBOARD), update_freq="epoch"))
        spent = bool(cfg.max_minutes) and state.seconds >= 60 * cfg.max_minutes  # a resume after the budget
        cbs.halt.out_of_time = cbs.halt.out_of_time or (spent and done_epochs < cfg.epochs)
        if done_epochs < cfg.epochs and not state.stopped_early and not spent:
            check(cancel)
            # shuffle=False: the batches' order is already drawn from (seed, epoch) (callbacks.make_batches);
            # Keras' own shuffle of a PyDataset would draw it from Python's global random state
            model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, initial_epoch=done_epochs,
                      callbacks=callbacks, verbose=0, shuffle=False)
    finally:
        if cfg.precision != "float32":
            keras.mixed_precision.set_global_policy("float32")
    halt, st = cbs.halt, cbs.state
    if halt.nan:
        raise TrainingError(f"{run}: loss became NaN at epoch {halt.nan[0]}, batch {halt.nan[1]}; "
                            f"lower the learning rate (last good model: {run / runs.LAST_MODEL})")
    status = ("cancelled" if halt.cancelled else "early_stopped" if st.stopped_early
              else "time_budget" if halt.out_of_time else "completed")
    best_model = run / runs.MODEL
    if cfg.blend < 1 and status != "cancelled" and best_model.exists():
        blend_run_model(run, cfg.init_from, cfg.blend)
    if cfg.calibrate and status != "cancelled" and best_model.exists():
        calibrate_threshold(run, progress, cancel)
    if cfg.export_onnx and status != "cancelled" and best_model.exists():
        export_after_training(run, progress, cancel, cfg.calibration_slices)
    return RunResult(str(run), status, st.epoch, st.best_epoch,
                     float("nan") if st.best_val_dice is None else st.best_val_dice,
                     str(best_model) if best_model.exists() else None,
                     [r for r in runs.read_metrics(run) if r.get("type") == "epoch"])


def freeze_normalisation(model) -> int:
    """Make every BatchNormalization layer of ``model`` untrainable (Keras then runs it in inference
    mode: its moving statistics stay too). Before ``compile``. Returns how many."""
    norm = load_keras().layers.BatchNormalization
    frozen = 0
    for layer in model.layers:  # the ResUNet is one functional graph: no nested models
        if isinstance(layer, norm):
            layer.trainable = False
            frozen += 1
    return frozen


def _start_weights(cfg: TrainConfig) -> list:
    """The weights of ``cfg.init_from`` (the model a fine-tune starts from)."""
    return load_model(cfg.init_from, compile=False).get_weights()


def export_after_training(run: Path, progress=None, cancel=None, calibration_slices: int = 32) -> None:
    """model.onnx and model.int8.onnx for a finished run; a failure is recorded in model.json
    (``"onnx_error"``) and logged, never raised: the Keras model stays the result."""
    try:
        export_onnx(run, progress=progress, cancel=cancel)
        quantize_int8(run, n_slices=calibration_slices, progress=progress, cancel=cancel)
        runs.drop_card_entry(run, "onnx_error")
    except ModelError as exc:
        log.warning("%s: ONNX export after training failed: %s", run, exc)
        runs.update_card(run, onnx_error=str(exc))
