"""Saving and loading models safely, with their ``model.json`` metadata.

``.keras`` files are loaded in Keras safe mode (no arbitrary Lambda code), with
only this project's registered objects allowed. Saves are atomic.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import LiverSegError, one_line


class ModelError(LiverSegError):
    """A model file is missing, corrupt, unsafe or does not fit."""


def custom_objects() -> dict:
    from .losses import bce_dice_loss, make_metric_classes, soft_dice_loss
    return {"soft_dice_loss": soft_dice_loss, "bce_dice_loss": bce_dice_loss,
            "OverlapMetric": make_metric_classes()}


def save_model_atomic(model, path: str | os.PathLike) -> None:
    """Save ``model`` to ``path`` (.keras) through a temp file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_model(path: str | os.PathLike, compile: bool = True):
    """Load a ``.keras`` model in safe mode.

    Raises:
        ModelError: the file is missing, not a Keras model, or unsafe.
    """
    import keras
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects(), compile=compile, safe_mode=True)
    except Exception as exc:  # keras raises many types for corrupt/unsafe files
        raise ModelError(f"{path}: cannot load model ({one_line(exc, 200)})") from None
