"""Saving and loading models safely, with their ``model.json`` metadata.

``.keras`` files are loaded in Keras safe mode (no arbitrary Lambda code), with
only this project's registered objects allowed. Saves are atomic.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from ..runtime.atomic import default_mode
from ..runtime.errors import ModelError, one_line  # noqa: F401 (ModelError: importable from here too)
from ..runtime.ml_backend import load_keras


def custom_objects() -> dict:
    from .losses import bce_dice_loss, make_metric_classes, soft_dice_loss  # lite edition: not bundled
    return {"soft_dice_loss": soft_dice_loss, "bce_dice_loss": bce_dice_loss,
            "OverlapMetric": make_metric_classes()}


def save_model_atomic(model, path: str | os.PathLike, include_optimizer: bool = True) -> None:
    """Save ``model`` to ``path`` (.keras) through a temp file and a rename.

    ``include_optimizer=False`` saves the network alone, in float32 (:func:`float32_copy`):
    what inference needs, about a third of the size with Adam; resuming a run needs the
    optimizer and the training precision (``last.keras``).
    """
    path = Path(path)
    if not include_optimizer:
        model = float32_copy(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _float32_policies(cfg):
    """A layer config tree with every mixed-precision dtype policy replaced by float32."""
    if isinstance(cfg, dict):
        if cfg.get("class_name") == "DTypePolicy" and str(cfg.get("config", {}).get("name", "")).startswith("mixed"):
            return {**cfg, "config": {**cfg["config"], "name": "float32"}}
        return {k: _float32_policies(v) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [_float32_policies(v) for v in cfg]
    return cfg


def float32_copy(model):
    """The model for inference: not compiled, every layer in float32 (the same weights).

    A model trained in mixed precision (``mixed_bfloat16`` on a GPU) computes in bfloat16,
    which ONNX Runtime's CPU kernels and int8 quantisation do not take; its variables are
    float32 already, so the copy computes the same function at full precision.
    """
    keras = load_keras()
    config = _float32_policies(model.get_config())
    copy = keras.Model.from_config(config, custom_objects=custom_objects())
    copy.set_weights(model.get_weights())
    return copy


def load_model(path: str | os.PathLike, compile: bool = True):
    """Load a ``.keras`` model in safe mode.

    Raises:
        ModelError: the file is missing, not a Keras model, or unsafe.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    keras = load_keras()
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects(), compile=compile, safe_mode=True)
    except Exception as exc:  # keras raises many types for corrupt/unsafe files
        raise ModelError(f"{path}: cannot load model ({one_line(exc, 200)})") from None


# -- models with their metadata -------------------------------------------------------------

from dataclasses import dataclass, field  # noqa: E402

from ..transforms.preprocess import Preprocessing  # noqa: E402
from .card import CARD, MODEL, ONNX_FILE, card_path, find_card, stage_folder  # noqa: E402

LEGACY_META = {  # the Colab notebooks' contract for their .h5 models
    "format": "liverseg-model", "version": 1, "stage": None, "input_size": 256, "channels": 3,
    "preprocessing": {"recipe": "notebook", "window": [-100.0, 400.0], "size": 256, "channels": 3},
    "threshold": 0.5, "label": "legacy notebook model (Keras 2 HDF5)",
}


@dataclass
class SegModel:
    """A model with the contract it was trained under.

    Attributes:
        meta: model.json contents (or the legacy defaults for a notebook .h5).
        path: the model file.
        model: the Keras model (input [B, S, S, C], output [B, S, S, 1] probabilities), loaded
            on first use when :func:`load_seg_model` was asked for a lazy model: running it
            through ONNX Runtime then never imports Keras (~2 s of TensorFlow).
    """

    meta: dict
    path: str
    _model: object = field(default=None, repr=False)
    pre: Preprocessing = field(init=False)

    def __post_init__(self):
        self.pre = Preprocessing.from_dict(self.meta["preprocessing"])

    @property
    def model(self):
        if self._model is None:
            self._model = _checked(Path(self.path), load_model(self.path, compile=False), self.meta)
        return self._model

    @property
    def stage(self) -> str:
        return self.meta.get("stage") or "?"

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))

    def describe(self) -> str:
        best = self.meta.get("best", {}).get("val_dice")
        return (f"{self.stage} model, {self.pre.size} px, {self.pre.recipe}"
                + (f", val Dice {best:.3f}" if isinstance(best, (int, float)) else "")
                + (f" ({self.meta['label']})" if self.meta.get("label") else ""))


def _h5_has_code(path: Path) -> bool:
    """True when a legacy HDF5 model config holds Lambda layers (arbitrary code)."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            cfg = f.attrs.get("model_config")
    except OSError as exc:
        raise ModelError(f"{path}: not an HDF5 Keras model ({one_line(exc, 120)})") from None
    if cfg is None:
        raise ModelError(f"{path}: HDF5 file holds no Keras model (weights only?)")
    text = cfg.decode() if isinstance(cfg, bytes) else str(cfg)
    return '"Lambda"' in text or "'Lambda'" in text


def _keras_installed() -> bool:
    """Whether Keras can be imported (not in the lite edition; core.runtime.edition says the same, but
    core.model stays the ground floor and imports nothing above it)."""
    if "keras" in sys.modules:
        return sys.modules["keras"] is not None
    try:
        return importlib.util.find_spec("keras") is not None
    except (ImportError, ValueError):
        return False


def onnx_only_folder(folder: Path) -> bool:
    """A model folder without its model.keras but with its card and ONNX export (how the lite
    edition ships its models: ONNX Runtime runs them, Keras never does)."""
    return (folder / CARD).is_file() and (folder / ONNX_FILE).is_file()


def _folder_model(folder: Path) -> Path | None:
    for name in (MODEL, "model.h5"):
        if (folder / name).is_file():
            return folder / name
    if onnx_only_folder(folder):
        return folder / MODEL  # absent: the card and the ONNX files beside it are what runs
    return None


def find_model_file(path: Path, stage: str | None = None) -> Path:
    """The model file ``path`` names: the file itself, a folder's ``model.keras`` (or ``model.h5``),
    or for a work folder with a model folder per stage (a fine-tune's ``--out``: ``liver/``,
    ``tumor/``) that of ``stage``, or without a stage its only one.

    Raises:
        ModelError: a folder with no model, or whose stage folders do not single one out (the message
            names the folder to give).
    """
    if not path.is_dir():
        return path
    found = _folder_model(path)
    if found is None:
        inner = stage_folder(path, stage, lambda f: _folder_model(f) is not None, f"no {MODEL} in this folder")
        found = _folder_model(inner)
        assert found is not None, inner  # stage_folder gives a folder that holds a model
    return found


def _checked(p: Path, model, meta: dict):
    """``model`` after checking its input and output shapes against the card."""
    ishape, oshape = tuple(model.input_shape), tuple(model.output_shape)
    size = int(meta.get("input_size", 0))
    if len(ishape) != 4 or ishape[1] != ishape[2] or ishape[3] != 3 or (size and ishape[1] != size):
        raise ModelError(f"{p}: unexpected input shape {ishape}; expected (None, S, S, 3) with S = {size}")
    if len(oshape) != 4 or tuple(oshape[1:3]) != tuple(ishape[1:3]) or oshape[3] != 1:
        raise ModelError(f"{p}: unexpected output shape {oshape}; expected (None, {ishape[1]}, {ishape[2]}, 1)")
    return model


def load_seg_model(path: str | os.PathLike, stage: str | None = None, lazy: bool = False) -> SegModel:
    """Load a segmentation model: a run folder, a ``.keras`` file, a notebook ``.h5``, or a work folder
    with a model folder per stage (its ``stage`` one; :func:`find_model_file`).

    The model's card (:func:`core.model.card.card_path`: ``model.json`` for ``model.keras``,
    ``foo.json`` for ``foo.keras``) gives its preprocessing and threshold; a legacy ``.h5``
    without one gets the notebooks' contract (256 x 256 x 3, notebook recipe, 0.5).

    ``lazy``: for a ``.keras`` file, read only the card now and load the Keras model when it is
    first used (a corrupt or unsafe archive, or a wrong shape, is then reported at that point).
    Always lazy where Keras is not installed (the lite edition: ONNX Runtime runs the model), and
    for a folder with only its card and ONNX files (:func:`onnx_only_folder`).

    Raises:
        ModelError: missing, corrupt or unsafe file; unexpected input or output shape;
            a model of the other stage.
    """
    p = find_model_file(Path(path), stage)
    onnx_only = p.name == MODEL and not p.exists() and onnx_only_folder(p.parent)
    if not p.is_file() and not onnx_only:
        raise ModelError(f"{p}: no such model file")
    if p.suffix.lower() in (".h5", ".hdf5"):
        if not _keras_installed():
            raise ModelError(f"{p}: a notebook .h5 model needs Keras, which this edition (LiverSeg Studio lite) "
                             f"lacks: it runs ONNX models only (model.onnx beside a model.keras and model.json)")
        if _h5_has_code(p):
            raise ModelError(f"{p}: the model contains Lambda layers (arbitrary code); refused")
        keras = load_keras()
        try:
            model = keras.saving.load_model(p, custom_objects=custom_objects(), compile=False)
        except Exception as exc:
            raise ModelError(f"{p}: cannot load legacy HDF5 model ({one_line(exc, 200)})") from None
        meta = find_card(p)
        meta = dict(LEGACY_META, stage=stage) if meta is None else meta
    elif lazy or onnx_only or not _keras_installed():  # loaded when first used (never, when ONNX Runtime runs it)
        if not onnx_only and not zipfile.is_zipfile(p):
            raise ModelError(f"{p}: cannot load model (not a .keras archive)")
        model = None
        meta = find_card(p)
    else:
        model = load_model(p, compile=False)
        meta = find_card(p)
    if meta is None:
        raise ModelError(f"{p}: no {card_path(p).name} beside it (its preprocessing is unknown)")
    if model is not None:
        _checked(p, model, meta)
    if stage and meta.get("stage") and meta["stage"] != stage:
        raise ModelError(f"{p}: this is a {meta['stage']} model, not a {stage} model")
    meta.setdefault("stage", stage)
    return SegModel(meta, str(p), model)
