"""The run folder's live records: metrics.jsonl, state.json, the models, and the Keras callback
that writes them after every batch and epoch (see :mod:`core.training` for the folder layout)."""

from __future__ import annotations

import functools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_open, write_json
from .jobs import Progress, report


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


def rewrite_metrics(run_dir: Path, keep_through_epoch: int) -> None:
    """Keep only records up to a completed epoch (after a kill mid-epoch), atomically."""
    recs = [r for r in read_metrics(run_dir) if r.get("epoch", 0) <= keep_through_epoch]
    with atomic_open(run_dir / "metrics.jsonl", "w") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")


def cosine_lr(base: float, floor: float, epoch: float, epochs: int) -> float:
    """Learning rate of epoch ``epoch`` (0-based; a fraction of ``epochs`` works too) on a cosine
    from ``base`` down to ``floor``."""
    t = epoch / max(1, epochs)
    return float(floor + 0.5 * (base - floor) * (1 + math.cos(math.pi * t)))


@functools.lru_cache(maxsize=None)
def build_recorder_class():
    """The Keras callback class of a run (created lazily: importing this module does not import Keras)."""
    import keras

    class Recorder(keras.callbacks.Callback):
        """Writes metrics.jsonl, state.json and the models; sends events; honours cancel, the
        time budget (``max_minutes``) and the cosine learning-rate schedule."""

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
            self._metrics = open(run / "metrics.jsonl", "a", encoding="utf-8")

        def _append(self, rec: dict, sync: bool = False) -> None:
            self._metrics.write(json.dumps(rec) + "\n")
            self._metrics.flush()
            if sync:
                os.fsync(self._metrics.fileno())

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
            self.save(self.model, self.run / "last.keras")
            if improved:
                st.update(best_val_dice=val, best_epoch=epoch + 1, wait=0, lr_wait=0)
                self.save(self.model, self.run / "model.keras", include_optimizer=False)
                best = {k: rec[k] for k in ("val_dice", "val_iou", "val_loss", "dice", "loss") if k in rec}
                best["epoch"] = epoch + 1
                write_json(self.run / "model.json", self.model_json(self.cfg, best, self.data))
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
            write_json(self.run / "state.json", st)
            if self.progress is not None:
                self.progress(EpochEvent("epoch", epoch + 1, self.cfg.epochs, f"val Dice {val:.4f}", rec))
            if self.cancel is not None and self.cancel.cancelled:
                self.cancelled = True
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            self._metrics.close()

    return Recorder
