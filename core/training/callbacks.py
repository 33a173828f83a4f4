"""The Keras side of a training run: the batches (a ``keras.utils.PyDataset``), the
distribution strategy, and the callback that writes the run folder's live records
(metrics.jsonl, state.json, the models, the card; names and formats: :mod:`core.runtime.runs`)
after every batch and epoch.

Keras is imported inside the functions only: importing this module does not load a backend.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..runtime.errors import LiverSegError
from ..runtime.jobs import Progress, report
from ..runtime.runs import LAST_MODEL, MODEL, MetricsAppender, write_card, write_state


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
    import keras

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
            share = cfg.tumor_positive_share if cfg.stage == "tumor" else 0.0
            self.order = (self.pipe.epoch_order(np.random.default_rng([cfg.seed, self.epoch]), share,
                                                cfg.real_share, cfg.steps_per_epoch * cfg.batch_size)
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
    import keras
    if keras.backend.backend() != "tensorflow":
        raise error(f"--strategy {name} needs the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    import tensorflow as tf
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


@functools.lru_cache(maxsize=None)
def build_recorder_class():
    """The Keras callback class of a run (created lazily: importing this module does not import Keras)."""
    import keras

    class Recorder(keras.callbacks.Callback):
        """Writes metrics.jsonl, state.json, the models and the card; sends events; honours cancel,
        the time budget (``max_minutes``) and the cosine learning-rate schedule."""

        def __init__(self, run: Path, cfg, state: dict, data: dict, progress, cancel, save, model_json):
            super().__init__()
            self.run, self.cfg, self.state, self.data = run, cfg, dict(state), data
            self.progress, self.cancel, self.save, self.model_json = progress, cancel, save, model_json
            self.nan = None
            self.cancelled = False
            self.out_of_time = False
            self._started = time.perf_counter()
            self._last_batch_log = 0.0
            self._epoch_start = 0.0
            self._metrics = MetricsAppender(run)

        def _append(self, rec: dict, sync: bool = False) -> None:
            self._metrics.append(rec, sync)

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()
            self._epoch = epoch
            if self.cfg.lr_schedule == "cosine":  # a function of the epoch alone: resume replays it
                lr = cosine_lr(self.cfg.learning_rate, self.cfg.min_lr, epoch, self.cfg.epochs)
                self.model.optimizer.learning_rate.assign(lr)
            elif self.cfg.lr_schedule == "cosine_time":  # over max_minutes of this invocation
                frac = (time.perf_counter() - self._started) / (60 * self.cfg.max_minutes)
                lr = cosine_lr(self.cfg.learning_rate, self.cfg.min_lr, min(frac, 1.0), 1)
                self.model.optimizer.learning_rate.assign(lr)

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
            self.save(self.model, self.run / LAST_MODEL)
            if improved:
                st.update(best_val_dice=val, best_epoch=epoch + 1, wait=0, lr_wait=0)
                self.save(self.model, self.run / MODEL, include_optimizer=False)
                best = {k: rec[k] for k in ("val_dice", "val_iou", "val_loss", "dice", "loss") if k in rec}
                best["epoch"] = epoch + 1
                write_card(self.run, self.model_json(self.cfg, best, self.data))
            else:
                st["wait"] = st.get("wait", 0) + 1
                st["lr_wait"] = st.get("lr_wait", 0) + 1
            if (self.cfg.lr_schedule == "plateau" and self.cfg.reduce_lr
                    and st.get("lr_wait", 0) >= self.cfg.reduce_lr and lr > self.cfg.min_lr):
                lr = max(self.cfg.min_lr, lr / 2)
                self.model.optimizer.learning_rate.assign(lr)
                st["lr_wait"] = 0
            if self.cfg.early_stopping and st.get("wait", 0) >= self.cfg.early_stopping:
                st["stopped_early"] = True
                self.model.stop_training = True
            elapsed = time.perf_counter() - self._started
            if self.cfg.max_minutes and epoch + 1 < self.cfg.epochs and elapsed >= 60 * self.cfg.max_minutes:
                self.out_of_time = True  # the run stays resumable: state.json says where it stands
                self.model.stop_training = True
            st.update(epoch=epoch + 1, lr=lr)
            self._append(rec, sync=True)
            write_state(self.run, st)
            if self.progress is not None:
                self.progress(EpochEvent("epoch", epoch + 1, self.cfg.epochs, f"val Dice {val:.4f}", rec))
            if self.cancel is not None and self.cancel.cancelled:
                self.cancelled = True
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            self._metrics.close()

    return Recorder
