"""Training runs: ``train(config, progress, cancel) -> RunResult``.

A run folder holds:
    config.json    the :class:`TrainConfig`
    split.json     the patient-level split (seeded)
    metrics.jsonl  one JSON object per line: throttled ``batch`` records and one
                   ``epoch`` record per epoch (epoch, loss, dice, val_loss,
                   val_dice, lr, seconds, ...)
    state.json     where the run stands (last completed epoch, best, counters)
    last.keras     the model after the last completed epoch (for --resume)
    model.keras    the best model by validation Dice
    model.json     its metadata: stage, input, preprocessing, threshold (chosen on the
                   validation patients at the end, see core.threshold), backend,
                   data summary, best validation metrics, date
    tensorboard/   TensorBoard logs (TensorFlow backend)
Every file is replaced atomically, so a run killed at any moment (even
``kill -9``) resumes from its last completed epoch with the same curves.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

import numpy as np

from .atomic import atomic_open, write_json
from .dataset import list_cases
from .errors import LiverSegError
from .jobs import CancelToken, Progress, ProgressFn, check, report
from .pipeline import STAGES, SlicePipeline, Split, split_cases
from .preprocess import Preprocessing

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multiworker")


class TrainingError(LiverSegError):
    """Training cannot start or cannot go on (NaN loss, bad options, bad run folder)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (saved as config.json)."""

    dataset: str
    out: str
    stage: str = "liver"
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 1e-3
    image_size: int = 256
    base_filters: int = 16
    depth: int = 4
    recipe: str = "window25d"
    window: tuple[float, float] = (-100.0, 400.0)
    loss: str = "bce_dice"
    fraction: float = 1.0
    val_fraction: float = 0.2
    seed: int = 0
    augment: bool = True
    tumor_positive_share: float = 0.5  # tumour stage: share of samples drawn from slices with tumour
    synth_lesions: float = 0.5  # tumour stage, window25d: share of samples given synthetic lesions
    early_stopping: int = 0  # patience in epochs without val Dice gain; 0 = off
    reduce_lr: int = 3  # patience before halving the learning rate; 0 = off
    min_lr: float = 1e-6
    precision: str = "float32"
    strategy: str = "default"
    threshold: float = 0.5  # the starting threshold; see calibrate
    calibrate: bool = True  # at the end: choose the threshold on the validation patients (core.threshold)
    batch_log_seconds: float = 1.0  # throttle of batch records and events
    export_onnx: bool = True  # at the end: model.onnx and a Dice-checked model.int8.onnx

    def __post_init__(self):
        from .model.losses import LOSSES
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
        if not 0 <= self.synth_lesions <= 1:
            problems.append("synth_lesions must be in [0, 1]")
        if self.image_size % (2 ** self.depth):
            problems.append(f"image size {self.image_size} must be divisible by 2**depth = {2 ** self.depth}")
        if problems:
            raise TrainingError("invalid training options: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        d = {k: (tuple(v) if k == "window" else v) for k, v in d.items() if k in known}
        d.setdefault("synth_lesions", 0.0)  # runs saved before synthetic lesions existed had none
        return cls(**d)

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.recipe, tuple(self.window), self.image_size, 3)


@dataclass
class RunResult:
    """How a run ended."""

    run_dir: str
    status: str  # "completed", "early_stopped" or "cancelled"
    epochs_done: int
    best_epoch: int
    best_val_dice: float
    model_path: Optional[str]
    history: list = field(default_factory=list)


@dataclass(frozen=True)
class EpochEvent(Progress):
    """A progress event carrying an epoch record (``record`` is the metrics.jsonl object)."""

    record: dict = field(default_factory=dict)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The complete records of a run's metrics.jsonl (a torn last line is ignored)."""
    path = Path(run_dir) / "metrics.jsonl"
    out = []
    if not path.exists():
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            try:
                out.append(json.loads(line))
            except ValueError:
                break
    return out


def _rewrite_metrics(run_dir: Path, keep_through_epoch: int) -> None:
    """Keep only records up to a completed epoch (after a kill mid-epoch), atomically."""
    recs = [r for r in read_metrics(run_dir) if r.get("epoch", 0) <= keep_through_epoch]
    with atomic_open(run_dir / "metrics.jsonl", "w") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")


def _make_datasets(cfg: TrainConfig, split: Split, progress, cancel):
    import keras
    pre = cfg.preprocessing()
    synth = cfg.synth_lesions if cfg.stage == "tumor" and pre.recipe == "window25d" else 0.0
    train = SlicePipeline(cfg.dataset, split.train, cfg.stage, pre, cfg.fraction, cfg.augment, cfg.seed,
                          progress, cancel, synth_lesions=synth)
    val = SlicePipeline(cfg.dataset, split.val, cfg.stage, pre, 1.0, False, cfg.seed, progress, cancel)

    class Batches(keras.utils.PyDataset):
        """Batches of a SlicePipeline; the order depends only on (seed, epoch), so resume replays it."""

        def __init__(self, pipe: SlicePipeline, shuffle: bool):
            super().__init__(workers=2 if shuffle else 1)  # threads: numpy copies release the GIL
            self.pipe, self.shuffle, self.epoch = pipe, shuffle, 0
            self._order()

        def _order(self):
            n = len(self.pipe)
            share = cfg.tumor_positive_share if cfg.stage == "tumor" else 0.0
            self.order = (self.pipe.epoch_order(np.random.default_rng([cfg.seed, self.epoch]), share)
                          if self.shuffle else np.arange(n))

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self._order()

        def __len__(self):
            return math.ceil(len(self.pipe) / cfg.batch_size)

        def __getitem__(self, i):
            rows = self.order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            # A generator per (seed, epoch, batch): thread-safe and reproducible.
            return self.pipe.batch(rows, np.random.default_rng([cfg.seed, self.epoch, i]))

        def on_epoch_end(self):
            self.set_epoch(self.epoch + 1)

    return Batches(train, True), Batches(val, False), train, val


def _strategy(name: str):
    if name == "default":
        return None
    import keras
    if keras.backend.backend() != "tensorflow":
        raise TrainingError(f"--strategy {name} needs the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    import tensorflow as tf
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        raise TrainingError("--strategy multiworker needs TF_CONFIG describing the workers")
    return tf.distribute.MultiWorkerMirroredStrategy()


def _model_json(cfg: TrainConfig, best: dict, data: dict) -> dict:
    import keras
    return {
        "format": "liverseg-model", "version": 1, "stage": cfg.stage,
        "input_size": cfg.image_size, "channels": 3,
        "preprocessing": cfg.preprocessing().to_dict(), "threshold": cfg.threshold,
        "architecture": {"name": "resunet", "base_filters": cfg.base_filters, "depth": cfg.depth},
        "backend": keras.backend.backend(), "keras": keras.__version__, "precision": cfg.precision,
        "data": data, "best": best, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "label": "",
    }


def train(config: TrainConfig, progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
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
    import keras

    from .model.io import load_model, save_model_atomic
    from .model.losses import LOSSES, dice_metric, iou_metric
    from .model.resunet import ResUNetConfig, build_resunet

    run = Path(config.out)
    state_path = run / "state.json"
    if resume:
        if not (run / "config.json").exists():
            raise TrainingError(f"{run}: nothing to resume (no config.json)")
        cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text(encoding="utf-8")))
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "out": str(run)})
        state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {"epoch": 0}
        split = Split(**{k: tuple(v) if isinstance(v, list) else v
                         for k, v in json.loads((run / "split.json").read_text(encoding="utf-8")).items()})
        if config.epochs != cfg.epochs:  # resuming may extend a run
            cfg = TrainConfig.from_dict({**cfg.to_dict(), "epochs": config.epochs})
    else:
        cfg = config
        if run.exists() and any(run.iterdir()):
            raise TrainingError(f"{run}: run folder is not empty; use --resume to continue it or choose another")
        run.mkdir(parents=True, exist_ok=True)
        split = split_cases(list_cases(cfg.dataset), cfg.val_fraction, 0.0, cfg.seed)
        write_json(run / "split.json", json.loads(split.to_json()))
        state = {"epoch": 0}
    write_json(run / "config.json", cfg.to_dict())
    done_epochs = int(state.get("epoch", 0))
    _rewrite_metrics(run, done_epochs)

    if cfg.precision != "float32":
        keras.mixed_precision.set_global_policy(cfg.precision)
    try:
        train_ds, val_ds, train_pipe, val_pipe = _make_datasets(cfg, split, progress, cancel)
        train_ds.set_epoch(done_epochs)
        strategy = _strategy(cfg.strategy)
        scope = strategy.scope() if strategy else _NullScope()
        with scope:
            if done_epochs and (run / "last.keras").exists():
                model = load_model(run / "last.keras", compile=True)
            else:
                keras.utils.set_random_seed(cfg.seed)
                model = build_resunet(ResUNetConfig(cfg.image_size, 3, cfg.base_filters, cfg.depth),
                                      name=f"resunet_{cfg.stage}")
                model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=LOSSES[cfg.loss],
                              metrics=[dice_metric(cfg.threshold), iou_metric(cfg.threshold)])
        if "lr" in state:
            model.optimizer.learning_rate.assign(state["lr"])
        data = {"dataset": str(cfg.dataset), "train_patients": list(split.train), "val_patients": list(split.val),
                "train_slices": len(train_pipe), "val_slices": len(val_pipe), "fraction": cfg.fraction}
        recorder = _build_recorder_class()(run, cfg, state, data, progress, cancel, save_model_atomic)
        callbacks = [recorder]
        if keras.backend.backend() == "tensorflow":
            callbacks.append(keras.callbacks.TensorBoard(str(run / "tensorboard"), update_freq="epoch"))
        if done_epochs < cfg.epochs and not state.get("stopped_early"):
            check(cancel)
            model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, initial_epoch=done_epochs,
                      callbacks=callbacks, verbose=0)
    finally:
        if cfg.precision != "float32":
            keras.mixed_precision.set_global_policy("float32")
    if recorder.nan:
        raise TrainingError(f"{run}: loss became NaN at epoch {recorder.nan[0]}, batch {recorder.nan[1]}; "
                            f"lower the learning rate (last good model: {run / 'last.keras'})")
    st = recorder.state
    status = "cancelled" if recorder.cancelled else ("early_stopped" if st.get("stopped_early") else "completed")
    if cfg.calibrate and status != "cancelled" and (run / "model.keras").exists():
        from .threshold import calibrate_threshold
        calibrate_threshold(run, progress, cancel)
    if cfg.export_onnx and status != "cancelled" and (run / "model.keras").exists():
        export_after_training(run, progress, cancel)
    return RunResult(str(run), status, int(st.get("epoch", 0)), int(st.get("best_epoch", 0)),
                     float(st.get("best_val_dice", float("nan"))),
                     str(run / "model.keras") if (run / "model.keras").exists() else None,
                     [r for r in read_metrics(run) if r.get("type") == "epoch"])


def export_after_training(run: Path, progress=None, cancel=None) -> None:
    """model.onnx and model.int8.onnx for a finished run; a failure is recorded in model.json
    (``"onnx_error"``) and logged, never raised: the Keras model stays the result."""
    from .model.io import ModelError
    from .model.onnx_export import export_onnx, read_meta, update_meta
    from .model.quantize import quantize_int8
    try:
        export_onnx(run, progress=progress, cancel=cancel)
        quantize_int8(run, progress=progress, cancel=cancel)
        meta = read_meta(run)
        if meta.pop("onnx_error", None) is not None:
            write_json(run / "model.json", meta)
    except ModelError as exc:
        log.warning("%s: ONNX export after training failed: %s", run, exc)
        update_meta(run, onnx_error=str(exc))


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@functools.lru_cache(maxsize=None)
def _build_recorder_class():
    import keras

    class Recorder(keras.callbacks.Callback):
        """Writes metrics.jsonl, state.json and the models; sends events; honours cancel."""

        def __init__(self, run: Path, cfg: TrainConfig, state: dict, data: dict, progress, cancel, save):
            super().__init__()
            self.run, self.cfg, self.state, self.data = run, cfg, dict(state), data
            self.progress, self.cancel, self.save = progress, cancel, save
            self.nan = None
            self.cancelled = False
            self._last_batch_log = 0.0
            self._epoch_start = 0.0
            self._metrics = open(run / "metrics.jsonl", "a", encoding="utf-8")

        def _append(self, rec: dict, sync: bool = False) -> None:
            self._metrics.write(json.dumps(rec) + "\n")
            self._metrics.flush()
            if sync:
                os.fsync(self._metrics.fileno())

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            loss = float(logs.get("loss", float("nan")))
            if not math.isfinite(loss):
                self.nan = (self._epoch + 1, batch + 1)
                self.model.stop_training = True
                return
            if self.cancel is not None and self.cancel.cancelled:
                self.cancelled = True
                self.model.stop_training = True
                return
            now = time.perf_counter()
            if now - self._last_batch_log >= self.cfg.batch_log_seconds:
                self._last_batch_log = now
                rec = {"type": "batch", "epoch": self._epoch + 1, "batch": batch + 1, "loss": loss,
                       "dice": float(logs.get("dice", float("nan"))), "time": time.time()}
                self._append(rec)
                total = self.params.get("steps") if self.params else None
                report(self.progress, "train", batch + 1, int(total or 0),
                       f"epoch {self._epoch + 1}/{self.cfg.epochs} loss {loss:.4f}")

        def on_epoch_end(self, epoch, logs=None):
            if self.nan or self.cancelled:
                return  # an incomplete epoch is never recorded
            logs = dict(logs or {})
            lr = float(np.asarray(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
            rec = {"type": "epoch", "epoch": epoch + 1, "lr": lr,
                   "seconds": round(time.perf_counter() - self._epoch_start, 3), "time": time.time()}
            rec.update({k: float(v) for k, v in logs.items() if k != "learning_rate"})
            st = self.state
            val = rec.get("val_dice", float("nan"))
            improved = math.isfinite(val) and val > st.get("best_val_dice", -1.0) + 1e-4
            self.save(self.model, self.run / "last.keras")
            if improved:
                st.update(best_val_dice=val, best_epoch=epoch + 1, wait=0, lr_wait=0)
                self.save(self.model, self.run / "model.keras")
                best = {k: rec[k] for k in ("val_dice", "val_iou", "val_loss", "dice", "loss") if k in rec}
                best["epoch"] = epoch + 1
                write_json(self.run / "model.json", _model_json(self.cfg, best, self.data))
            else:
                st["wait"] = st.get("wait", 0) + 1
                st["lr_wait"] = st.get("lr_wait", 0) + 1
            if self.cfg.reduce_lr and st.get("lr_wait", 0) >= self.cfg.reduce_lr and lr > self.cfg.min_lr:
                lr = max(self.cfg.min_lr, lr / 2)
                self.model.optimizer.learning_rate.assign(lr)
                st["lr_wait"] = 0
            if self.cfg.early_stopping and st.get("wait", 0) >= self.cfg.early_stopping:
                st["stopped_early"] = True
                self.model.stop_training = True
            st.update(epoch=epoch + 1, lr=lr)
            self._append(rec, sync=True)
            write_json(self.run / "state.json", st)
            if self.progress is not None:
                self.progress(EpochEvent("epoch", epoch + 1, self.cfg.epochs, f"val Dice {val:.4f}", rec))
            if self.cancel is not None and self.cancel.cancelled:
                self.cancelled = True
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            self._metrics.close()

    return Recorder
