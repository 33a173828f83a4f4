"""The run folder and the model card: their file names, reading and writing, in one place.

A training run's folder (:func:`core.training.trainer.train`) holds:
    config.json    the run's :class:`core.training.trainer.TrainConfig`
    split.json     the patient-level split (seeded)
    metrics.jsonl  one JSON object per line: throttled ``batch`` records and one
                   ``epoch`` record per epoch (epoch, loss, dice, val_loss,
                   val_dice, lr, seconds, ...)
    state.json     where the run stands (last completed epoch, best, counters)
    last.keras     the model after the last completed epoch (for --resume)
    model.keras    the best model by validation Dice
    model.json     its card: stage, input, preprocessing, threshold (chosen on the
                   validation patients at the end, see core.training.threshold), backend,
                   data summary, best validation metrics, date; later the ``onnx``,
                   ``int8`` (with its ``calibration``), ``card`` and ``label`` entries
    model.onnx, model.int8.onnx, calibration.npz
                   the ONNX export, its Dice-gated int8 version and the int8
                   calibration slices (core.training.onnx_export, core.training.quantize)
    tensorboard/   TensorBoard logs (TensorFlow backend)
A model folder (a finished run, or a shipped ``resources/models/*``) holds ``model.keras``
with its card ``model.json`` and, optionally, the ONNX files.

Every file here is replaced atomically (:mod:`core.runtime.atomic`), and ``metrics.jsonl`` is
only appended to (or rewritten atomically on resume), so a run killed at any moment
(even ``kill -9``) resumes from its last completed epoch with the same curves.

**The card of a model file** (:func:`card_path`, the one rule every module uses):
``model.keras`` and ``last.keras`` have ``model.json`` of their folder (the run and model
folder layout, and every shipped model); any other file ``foo.keras`` or ``foo.h5`` has
``foo.json`` beside it, never a ``model.json`` that happens to lie in the same folder (that
card describes the folder's ``model.keras``). A notebook ``.h5`` without ``foo.json`` has no
card (the loader gives it the notebooks' contract).

This module imports neither Keras nor Qt: the library, the engines and the GUI's curves
read run folders without loading a backend.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..runtime.atomic import atomic_open, write_json
from ..runtime.errors import ModelError, one_line

CONFIG = "config.json"
SPLIT = "split.json"
METRICS = "metrics.jsonl"
STATE = "state.json"
LAST_MODEL = "last.keras"
MODEL = "model.keras"
CARD = "model.json"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
CALIBRATION_FILE = "calibration.npz"
TENSORBOARD = "tensorboard"
FOLDER_MODELS = (MODEL, LAST_MODEL)  # the model files whose card is the folder's model.json
STAGE_FOLDERS = ("liver", "tumor")  # a work folder's model folders, one per stage (liverseg finetune --out)


# -- the model card ---------------------------------------------------------------------------

def card_path(model_file: str | os.PathLike) -> Path:
    """The card of a model file (see the module docstring): ``model.json`` for ``model.keras``
    and ``last.keras``, ``foo.json`` for any other ``foo.keras`` / ``foo.h5``."""
    p = Path(model_file)
    return p.with_name(CARD) if p.name in FOLDER_MODELS else p.with_suffix(".json")


def _card_file(where: str | os.PathLike) -> Path:
    p = Path(where)
    return p / CARD if p.is_dir() else card_path(p)


def has_card(where: str | os.PathLike) -> bool:
    """Whether a model folder (or a model file) has its card."""
    return _card_file(where).is_file()


def read_card(where: str | os.PathLike) -> dict:
    """The card of a model folder or of a model file (:func:`card_path`).

    Raises:
        ModelError: no card, or it is not readable JSON.
    """
    return _read_card_file(_card_file(where))


def _read_card_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model card") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable model metadata ({one_line(exc, 100)})") from None


def find_card(model_file: str | os.PathLike) -> dict | None:
    """The card of a model file, or None when it has none.

    Raises:
        ModelError: the card exists but is not readable JSON.
    """
    path = card_path(model_file)
    return _read_card_file(path) if path.is_file() else None


def write_card(folder: str | os.PathLike, card: dict) -> None:
    """Replace a model folder's ``model.json`` (atomically)."""
    write_json(Path(folder) / CARD, card)


def update_card(folder: str | os.PathLike, **entries) -> dict:
    """Merge ``entries`` into a model folder's ``model.json``, keeping every other key (atomic)."""
    card = _read_card_file(Path(folder) / CARD)
    card.update(entries)
    write_card(folder, card)
    return card


def drop_card_entry(folder: str | os.PathLike, key: str) -> bool:
    """Remove ``key`` from ``model.json`` (rewritten only when it was there); True when it was."""
    card = _read_card_file(Path(folder) / CARD)
    if card.pop(key, None) is None:
        return False
    write_card(folder, card)
    return True


def model_folder(path: str | os.PathLike) -> Path:
    """The folder holding ``model.keras`` and ``model.json`` for a run folder or a model file.

    A work folder holding one model folder per stage (see :func:`stage_folder`) gives its only one.

    Raises:
        ModelError: there is no ``model.json`` there, nor in exactly one stage folder.
    """
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if not (folder / CARD).is_file():
        return stage_folder(folder, None, lambda f: (f / CARD).is_file(), f"no {CARD} (not a trained model folder)")
    return folder


def stage_folder(folder: Path, stage: str | None, holds, missing: str) -> Path:
    """The model folder inside a work folder holding one per stage (``liverseg finetune --out W``
    writes ``W/liver`` and ``W/tumor``): ``stage``'s, or without a stage the only one there, so
    that such a work folder can be given where a model folder is asked for.

    ``holds(folder)``: whether a folder holds a model. ``missing``: what the error says ``folder``
    lacks itself.

    Raises:
        ModelError: no such stage folder, or several without a stage to choose; the message names
            the stage folders to give instead, where there are some.
    """
    held = [s for s in STAGE_FOLDERS if (folder / s).is_dir() and holds(folder / s)]
    if stage in held or (stage is None and len(held) == 1):
        return folder / (stage or held[0])
    if not held:
        raise ModelError(f"{folder}: {missing}")
    choices = " or ".join(str(folder / s) for s in held)
    if stage is None:
        raise ModelError(f"{folder}: {missing}; it holds a model per stage: give {choices}")
    raise ModelError(f"{folder}: {missing}, nor a {stage}/ folder with one; it holds {', '.join(held)}/ "
                     f"({choices}), not a {stage} model")


# -- config, split and state ------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def has_config(run: str | os.PathLike) -> bool:
    return (Path(run) / CONFIG).is_file()


def read_config(run: str | os.PathLike) -> dict:
    """``config.json`` as saved (a dict; :meth:`core.training.trainer.TrainConfig.from_dict` makes it a config)."""
    return _read_json(Path(run) / CONFIG)


def write_config(run: str | os.PathLike, config: dict) -> None:
    write_json(Path(run) / CONFIG, config)


def read_split(run: str | os.PathLike) -> dict:
    """``split.json``: {"train": [...], "val": [...], "test": [...], "seed": n}."""
    return _read_json(Path(run) / SPLIT)


def write_split(run: str | os.PathLike, split: dict) -> None:
    write_json(Path(run) / SPLIT, split)


def read_state(run: str | os.PathLike) -> dict:
    """``state.json``, or ``{"epoch": 0}`` when the run has not completed an epoch yet."""
    path = Path(run) / STATE
    return _read_json(path) if path.exists() else {"epoch": 0}


def write_state(run: str | os.PathLike, state: dict) -> None:
    write_json(Path(run) / STATE, state)


@dataclass
class RunState:
    """``state.json`` as a value: where a run stands after its last completed epoch.

    The training callbacks (:mod:`core.training.callbacks`) update it and the trainer reads it;
    :meth:`from_dict` / :meth:`to_dict` keep the file as every version wrote it (the keys below,
    ``best_*`` only once validation Dice improved, ``stopped_early`` only when true, unknown keys
    kept as read), so a run folder resumes whichever version wrote it, and earlier versions read it too.
    """

    epoch: int = 0  # the last completed epoch (1-based; 0: none yet)
    best_val_dice: float | None = None  # the best validation Dice so far (None: none yet)
    best_epoch: int = 0
    wait: int = 0  # epochs without a gain (early stopping's patience)
    lr_wait: int = 0  # the same, since the plateau schedule last halved the learning rate
    stopped_early: bool = False
    lr: float | None = None  # the learning rate the next epoch starts with
    seconds: float = 0.0  # training time of the completed epochs, over every invocation (time budgets)
    extra: dict = field(default_factory=dict)  # keys this version does not know

    @classmethod
    def from_dict(cls, d: dict) -> RunState:
        d = dict(d)
        best = d.pop("best_val_dice", None)
        lr = d.pop("lr", None)
        return cls(epoch=int(d.pop("epoch", 0)), best_val_dice=None if best is None else float(best),
                   best_epoch=int(d.pop("best_epoch", 0)), wait=int(d.pop("wait", 0)),
                   lr_wait=int(d.pop("lr_wait", 0)), stopped_early=bool(d.pop("stopped_early", False)),
                   lr=None if lr is None else float(lr), seconds=float(d.pop("seconds", 0.0)), extra=d)

    def to_dict(self) -> dict:
        out: dict = {"epoch": self.epoch}
        if self.best_val_dice is not None:
            out.update(best_val_dice=self.best_val_dice, best_epoch=self.best_epoch)
        out.update(wait=self.wait, lr_wait=self.lr_wait)
        if self.stopped_early:
            out["stopped_early"] = True
        if self.lr is not None:
            out["lr"] = self.lr
        if self.seconds:
            out["seconds"] = round(self.seconds, 3)
        return {**self.extra, **out}

    @classmethod
    def read(cls, run: str | os.PathLike) -> RunState:
        """The run's ``state.json`` (:func:`read_state`) as a value."""
        return cls.from_dict(read_state(run))

    def write(self, run: str | os.PathLike) -> None:
        """Replace the run's ``state.json`` (atomically)."""
        write_state(run, self.to_dict())


# -- metrics.jsonl ----------------------------------------------------------------------------

def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The complete records of a run's metrics.jsonl (a torn last line is ignored)."""
    path = Path(run_dir) / METRICS
    out: list[dict] = []
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


def rewrite_metrics(run_dir: str | os.PathLike, keep_through_epoch: int) -> None:
    """Keep only records up to a completed epoch (after a kill mid-epoch), atomically."""
    run_dir = Path(run_dir)
    recs = [r for r in read_metrics(run_dir) if r.get("epoch", 0) <= keep_through_epoch]
    with atomic_open(run_dir / METRICS, "w") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")


class MetricsAppender:
    """Appends records to a run's metrics.jsonl, one JSON object per line, flushed at once."""

    def __init__(self, run_dir: str | os.PathLike):
        self._fh: IO[str] = open(Path(run_dir) / METRICS, "a", encoding="utf-8")

    def append(self, record: dict, sync: bool = False) -> None:
        """Write one record; ``sync``: also to the disk (an epoch record, before state.json says it is done)."""
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        if sync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


class MetricsFollower:
    """Reads a growing metrics.jsonl incrementally; starts over when the file is rewritten (resume)."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / METRICS
        self.offset = 0
        self.inode: tuple[int, int] | None = None
        self.records: list[dict] = []

    def poll(self) -> bool:
        """Read what was appended; True when records changed."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        key = (st.st_ino, st.st_dev)
        if key != self.inode or st.st_size < self.offset:  # replaced atomically or truncated: reload
            self.inode, self.offset, self.records = key, 0, []
        if st.st_size == self.offset:
            return False
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n") + 1  # a torn last line waits for the next poll
        if end == 0:
            return False
        for line in chunk[:end].splitlines():
            try:
                self.records.append(json.loads(line))
            except ValueError:
                pass
        self.offset += end
        return True

    def epochs(self) -> list[dict]:
        by_epoch = {}
        for r in self.records:
            if r.get("type") == "epoch":
                by_epoch[r["epoch"]] = r  # after a resume the latest record of an epoch wins
        return [by_epoch[k] for k in sorted(by_epoch)]

    def batches(self) -> list[dict]:
        return [r for r in self.records if r.get("type") == "batch"]
