"""The Keras side of a training run: the batches (a ``keras.utils.PyDataset``), the
distribution strategy, and the callbacks (:func:`run_callbacks`) that write the run folder's live
records (metrics.jsonl, state.json, the models, the card; names and formats:
:mod:`core.model.card`), set the learning rate and stop the run.

Keras is imported inside the functions only: importing this module does not load a backend.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..model.card import LAST_MODEL, MODEL, MetricsAppender, RunState, write_card
from ..runtime.errors import LiverSegError
from ..runtime.jobs import CancelToken, Progress, report
from ..runtime.ml_backend import load_keras, load_tensorflow


@dataclass(frozen=True)
class EpochEvent(Progress):
    """A progress event carrying an epoch record (``record`` is the metrics.jsonl object)."""

    record: dict = field(default_factory=dict)


def cosine_lr(base: float, floor: float, epoch: float, epochs: int) -> float:
    """Learning rate of epoch ``epoch`` (0-based; a fraction of ``epochs`` works too) on a cosine
    from ``base`` down to ``floor``."""
    t = epoch / max(1, epochs)
    return float(floor + 0.5 * (base - floor) * (1 + math.cos(math.pi * t)))


def make_batches(cfg, train_pipe, val_pipe):
    """(training batches, validation batches): ``keras.utils.PyDataset`` views of two
    :class:`core.training.loader.SlicePipeline` s for the run options ``cfg`` (a ``TrainConfig``)."""
    keras: Any = load_keras()  # Any: mypy then accepts its classes as bases

    class Batches(keras.utils.PyDataset):
        """Batches of a SlicePipeline; the order depends only on (seed, epoch), so resume replays it."""

        def __init__(self, pipe, shuffle: bool):
            # threads (numpy releases the GIL in its loops) or, with loader_processes, processes
            super().__init__(workers=max(1, cfg.loader_workers) if shuffle else 1,
                             use_multiprocessing=bool(cfg.loader_processes and shuffle))
            self.pipe, self.shuffle, self.epoch = pipe, shuffle, 0
            self._order()

        def _order(self):
            n = len(self.pipe)
            share = cfg.tumour_positive_share if cfg.stage == "tumor" else 0.0
            self.order = (self.pipe.epoch_order(np.random.default_rng([cfg.seed, self.epoch]), share,
                                                cfg.real_share, cfg.steps_per_epoch * cfg.batch_size,
                                                cfg.silver_share)
                          if self.shuffle else np.arange(n))

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self._order()

        def __len__(self):
            return math.ceil(len(self.order) / cfg.batch_size)

        def __getitem__(self, i):
            rows = self.order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            # A generator per (seed, epoch, batch): thread-safe and reproducible.
            return self.pipe.batch(rows, np.random.default_rng([cfg.seed, self.epoch, i]))

        def on_epoch_end(self):
            self.set_epoch(self.epoch + 1)

    return Batches(train_pipe, True), Batches(val_pipe, False)


def distribution_strategy(name: str, error=LiverSegError):
    """The ``tf.distribute`` strategy named by a run's ``strategy`` option (None for "default").

    Raises:
        error: the strategy needs the TensorFlow backend, or (multiworker) TF_CONFIG.
    """
    if name == "default":
        return None
    keras: Any = load_keras()  # Any: mypy then accepts its classes as bases
    if keras.backend.backend() != "tensorflow":
        raise error(f"--strategy {name} needs the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    tf = load_tensorflow()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        raise error("--strategy multiworker needs TF_CONFIG describing the workers")
    return tf.distribute.MultiWorkerMirroredStrategy()


class NullScope:
    """The scope of no distribution strategy."""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@dataclass
class Halt:
    """Why a run stopped before its planned last epoch; shared by the callbacks, read by the trainer."""

    cancel: CancelToken | None = None
    nan: tuple[int, int] | None = None  # (epoch, batch), 1-based, of the first non-finite loss
    cancelled: bool = False
    out_of_time: bool = False  # the time budget (max_minutes) ran out: the run stays resumable

    @property
    def epoch_cut(self) -> bool:
        """The epoch under way was cut short (NaN or cancel): it is never recorded."""
        return self.nan is not None or self.cancelled

    def honour_cancel(self, model) -> bool:
        """Stop training when cancel was asked for; True then."""
        if self.cancel is not None and self.cancel.cancelled:
            self.cancelled = True
            model.stop_training = True
        return self.cancelled


@dataclass
class RunCallbacks:
    """The callbacks of one run (:func:`run_callbacks`) and the run state they update."""

    keras: list  # for ``model.fit``, in the order Keras must call them
    state: RunState
    halt: Halt


def epoch_metrics(logs) -> dict:
    """An epoch's metrics from Keras' logs, as floats (its learning rate is recorded apart)."""
    return {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}


def current_lr(model) -> float:
    """The optimizer's learning rate now."""
    keras: Any = load_keras()  # Any: mypy then accepts its classes as bases
    return float(np.asarray(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))


def run_callbacks(run: Path, cfg, state: RunState, data: dict, progress, cancel, save, model_json) -> RunCallbacks:
    """The callbacks that write a run's folder, change its learning rate and stop it.

    Args:
        run: the run folder; cfg: its ``TrainConfig``; state: where it stands (updated in place).
        data: the card's ``data`` entry; save: ``save(model, path, include_optimizer=True)``;
        model_json: ``model_json(cfg, best, data)``, the card.
        progress, cancel: the run's progress function and cancel token.

    In Keras' order: :class:`Checkpoint` (the models, the card, the patience counters),
    :class:`Schedule` (the learning rate, which needs the counters), :class:`Stop` (NaN, cancel,
    early stop, time budget) and :class:`Record` (metrics.jsonl, state.json, the events), which
    records what the others decided; a cancel asked for while an epoch validates is honoured
    once it is recorded.
    """
    classes = _callback_classes()
    # cosine_time and the time budget count the training time of every invocation: a resumed run
    # goes on where its clock stopped (state.seconds, the completed epochs)
    started = time.perf_counter() - state.seconds
    halt = Halt(cancel)
    keras_callbacks = [classes.Checkpoint(run, cfg, state, halt, data, save, model_json),
                       classes.Schedule(cfg, state, halt, started),
                       classes.Stop(cfg, state, halt, started),
                       classes.Record(run, cfg, state, halt, progress, started)]
    return RunCallbacks(keras_callbacks, state, halt)


@functools.cache
def _callback_classes() -> SimpleNamespace:
    """The Keras callback classes (created lazily: importing this module does not import Keras)."""
    keras: Any = load_keras()  # Any: mypy then accepts its classes as bases

    class Checkpoint(keras.callbacks.Callback):
        """After every epoch last.keras; when validation Dice improved, model.keras and its card;
        the patience counters (``wait``, ``lr_wait``)."""

        def __init__(self, run: Path, cfg, state: RunState, halt: Halt, data: dict, save, model_json):
            super().__init__()
            self.run, self.cfg, self.state, self.halt = run, cfg, state, halt
            self.data, self.save, self.model_json = data, save, model_json

        def on_epoch_end(self, epoch, logs=None):
            if self.halt.epoch_cut:
                return
            metrics = epoch_metrics(logs)
            st = self.state
            val = metrics.get("val_dice", float("nan"))
            best_so_far = -1.0 if st.best_val_dice is None else st.best_val_dice
            improved = math.isfinite(val) and val > best_so_far + 1e-4
            self.save(self.model, self.run / LAST_MODEL)
            if improved:
                st.best_val_dice, st.best_epoch, st.wait, st.lr_wait = val, epoch + 1, 0, 0
                self.save(self.model, self.run / MODEL, include_optimizer=False)
                best = {k: metrics[k] for k in ("val_dice", "val_iou", "val_loss", "dice", "loss") if k in metrics}
                best["epoch"] = epoch + 1
                write_card(self.run, self.model_json(self.cfg, best, self.data))
            else:
                st.wait += 1
                st.lr_wait += 1

    class Schedule(keras.callbacks.Callback):
        """The learning rate: a cosine over the epochs or over the time budget (set as each epoch
        begins), or halved after ``reduce_lr`` epochs without a gain (``plateau``); ``state.lr``."""

        def __init__(self, cfg, state: RunState, halt: Halt, started: float):
            super().__init__()
            self.cfg, self.state, self.halt, self.started = cfg, state, halt, started

        def on_epoch_begin(self, epoch, logs=None):
            cfg = self.cfg
            if cfg.lr_schedule == "cosine":  # a function of the epoch alone: resume replays it
                self.model.optimizer.learning_rate.assign(cosine_lr(cfg.learning_rate, cfg.min_lr, epoch, cfg.epochs))
            elif cfg.lr_schedule == "cosine_time":  # over max_minutes of training time
                frac = (time.perf_counter() - self.started) / (60 * cfg.max_minutes)
                self.model.optimizer.learning_rate.assign(cosine_lr(cfg.learning_rate, cfg.min_lr, min(frac, 1.0), 1))

        def on_epoch_end(self, epoch, logs=None):
            if self.halt.epoch_cut:
                return
            cfg, st = self.cfg, self.state
            lr = current_lr(self.model)
            if cfg.lr_schedule == "plateau" and cfg.reduce_lr and st.lr_wait >= cfg.reduce_lr and lr > cfg.min_lr:
                lr = max(cfg.min_lr, lr / 2)
                self.model.optimizer.learning_rate.assign(lr)
                st.lr_wait = 0
            st.lr = lr

    class Stop(keras.callbacks.Callback):
        """Stops training on a non-finite loss or a cancel (within a batch), after ``early_stopping``
        epochs without a gain, or before an epoch that would end past the time budget (``max_minutes``
        of training time, resumes included: another epoch as long as the last would pass it)."""

        def __init__(self, cfg, state: RunState, halt: Halt, started: float):
            super().__init__()
            self.cfg, self.state, self.halt, self.started = cfg, state, halt, started
            self._epoch = 0
            self._seconds_before = time.perf_counter() - started  # the clock at the last epoch's end

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if not math.isfinite(float((logs or {}).get("loss", float("nan")))):
                self.halt.nan = (self._epoch + 1, batch + 1)
                self.model.stop_training = True
                return
            self.halt.honour_cancel(self.model)

        def on_epoch_end(self, epoch, logs=None):
            if self.halt.epoch_cut:
                return
            cfg = self.cfg
            if cfg.early_stopping and self.state.wait >= cfg.early_stopping:
                self.state.stopped_early = True
                self.model.stop_training = True
            elapsed = time.perf_counter() - self.started
            last = elapsed - self._seconds_before
            self._seconds_before = elapsed
            if cfg.max_minutes and epoch + 1 < cfg.epochs and elapsed + last > 60 * cfg.max_minutes:
                self.halt.out_of_time = True  # the run stays resumable: state.json says where it stands
                self.model.stop_training = True

    class Record(keras.callbacks.Callback):
        """Appends the batch (throttled) and epoch records to metrics.jsonl, writes state.json,
        sends the progress events; a cut epoch is never recorded."""

        def __init__(self, run: Path, cfg, state: RunState, halt: Halt, progress, started: float):
            super().__init__()
            self.run, self.cfg, self.state, self.halt, self.progress = run, cfg, state, halt, progress
            self.started = started
            self._last_batch_log = 0.0
            self._epoch, self._epoch_start, self._lr = 0, 0.0, float("nan")
            self._metrics = MetricsAppender(run)

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()
            self._epoch = epoch
            self._lr = current_lr(self.model)  # after Schedule set it: the rate of this epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.halt.epoch_cut:
                return
            logs = logs or {}
            now = time.perf_counter()
            if now - self._last_batch_log >= self.cfg.batch_log_seconds:
                self._last_batch_log = now
                loss = float(logs.get("loss", float("nan")))
                rec = {"type": "batch", "epoch": self._epoch + 1, "batch": batch + 1, "loss": loss,
                       "dice": float(logs.get("dice", float("nan"))), "time": time.time()}
                self._metrics.append(rec)
                total = self.params.get("steps") if self.params else None
                report(self.progress, "train", batch + 1, int(total or 0),
                       f"epoch {self._epoch + 1}/{self.cfg.epochs} loss {loss:.4f}")

        def on_epoch_end(self, epoch, logs=None):
            if self.halt.epoch_cut:
                return
            rec = {"type": "epoch", "epoch": epoch + 1, "lr": self._lr,
                   "seconds": round(time.perf_counter() - self._epoch_start, 3), "time": time.time()}
            rec.update(epoch_metrics(logs))
            self.state.epoch = epoch + 1
            self.state.seconds = time.perf_counter() - self.started
            self._metrics.append(rec, sync=True)  # on disk before state.json says the epoch is done
            self.state.write(self.run)
            if self.progress is not None:
                val = rec.get("val_dice", float("nan"))
                self.progress(EpochEvent("epoch", epoch + 1, self.cfg.epochs, f"val Dice {val:.4f}", rec))
            self.halt.honour_cancel(self.model)

        def on_train_end(self, logs=None):
            self._metrics.close()

    return SimpleNamespace(Checkpoint=Checkpoint, Schedule=Schedule, Stop=Stop, Record=Record)
