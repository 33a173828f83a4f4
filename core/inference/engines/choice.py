"""Which engine runs a model: Keras (any backend, GPU when it sees one) or ONNX Runtime.

``auto`` picks, per model:

1. Keras when its backend sees a GPU (TensorFlow on Linux, PyTorch or JAX elsewhere);
2. else ONNX Runtime with a GPU execution provider when one is installed
   (``onnxruntime-gpu``: CUDA; ``onnxruntime-directml``: any DirectX 12 GPU on Windows);
3. else the int8 model on the CPU when its Dice check passed (model.json ``int8.validated``);
4. else the fp32 ONNX model on the CPU;
5. else Keras on the CPU (no ONNX file, onnxruntime missing, or the ONNX file is stale:
   exported from another ``model.keras`` than the one beside it now).

In the lite edition (no Keras installed, :mod:`core.runtime.edition`) steps 1 and 5 and ``keras`` fail
with a one-line :class:`ModelError` naming the model folder: that edition runs ONNX models only.

Asking for ``onnx`` or ``onnx-int8`` explicitly fails with a clear error when that file
is missing, stale or (int8) not validated, instead of silently running something else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...model.card import INT8_FILE, ONNX_FILE, find_card
from ...runtime.atomic import cached_sha256
from ...runtime.choices import ENGINES, Engine, RunEngine
from ...runtime.edition import keras_available, onnx_only_error
from ...runtime.errors import ModelError
from ..devices import Device
from .ort import ASKED, available_providers

GPU_PROVIDERS = ("CUDAExecutionProvider", "DmlExecutionProvider")
_PROVIDER_NAMES = {"CUDAExecutionProvider": "CUDA GPU", "DmlExecutionProvider": "DirectML GPU",
                   "CPUExecutionProvider": "CPU"}


@dataclass(frozen=True)
class EngineChoice:
    """What will run one model.

    Attributes:
        engine: "keras", "onnx" or "onnx-int8".
        file: the ONNX file (None for Keras).
        providers: ONNX Runtime execution providers, in order of preference.
        device: for people: "ONNX Runtime int8, CPU", "tensorflow GPU", ...
        reason: why this engine (shown in logs and reports).
    """

    engine: RunEngine
    file: str | None
    providers: tuple[str, ...]
    device: str
    reason: str


def keras_sha256(path: Path) -> str:
    """sha256 of a model file, computed once per file version (path, mtime, size)."""
    return cached_sha256(path)


def current_meta(seg_model) -> dict:
    """The model's card as it is on disk now (an ONNX export may have been added since the model
    was loaded); the loaded one when it has none on disk (a notebook .h5) or it is unreadable."""
    if Path(seg_model.path).suffix == ".keras":
        try:
            card = find_card(seg_model.path)
        except ModelError:
            card = None
        if card is not None:
            return card
    return seg_model.meta


def onnx_status(model_file: str | Path, meta: dict) -> tuple[Path | None, Path | None, str]:
    """(model.onnx or None, validated model.int8.onnx or None, a note on what is missing)."""
    model_file = Path(model_file)
    folder = model_file.parent
    rec = meta.get("onnx") or {}
    onnx = folder / ONNX_FILE
    if not onnx.is_file() or not rec:
        return None, None, "no ONNX export"
    want = rec.get("keras_sha256")
    if want and model_file.is_file() and keras_sha256(model_file) != want:
        return None, None, f"{onnx.name} is stale (exported from an earlier {model_file.name})"
    q = meta.get("int8") or {}
    int8 = folder / INT8_FILE
    if not int8.is_file() or not q:
        return onnx, None, "no int8 model"
    if not q.get("validated"):
        gate = q.get("gate", {})
        return onnx, None, (f"int8 model refused by its Dice check (largest difference "
                            f"{gate.get('max_difference', float('nan')):.4f} > {gate.get('tolerance', 0.01)})")
    return onnx, int8, ""


def choose_engine(requested: Engine, model_file: str | Path, meta: dict, device: Device,
                  providers: Sequence[str] | None = None) -> EngineChoice:
    """Pick the engine for one model (see the module docstring).

    Args:
        requested: one of :data:`ENGINES`.
        model_file: the model's ``.keras`` / ``.h5`` file (ONNX files are looked for beside it).
        meta: its model.json.
        device: what the Keras backend would run on (:class:`core.inference.devices.Device`).
        providers: ONNX Runtime's available providers (default: asked from onnxruntime).

    Raises:
        ModelError: an unknown engine, or an explicitly requested ONNX engine that cannot run.
    """
    if requested not in ENGINES:
        raise ModelError(f"unknown engine {requested!r}; use one of {', '.join(ENGINES)}")
    keras = EngineChoice("keras", None, (), f"Keras, {device.text}", "")
    has_keras = keras_available()
    if requested == "keras":
        if not has_keras:
            raise ModelError(onnx_only_error(str(Path(model_file).parent), "the Keras engine is not installed"))
        return _with(keras, ASKED)
    if requested == "auto" and has_keras and device.gpu:
        return _with(keras, "the Keras backend sees a GPU")
    providers = list(available_providers() if providers is None else providers)
    onnx, int8, note = onnx_status(model_file, meta)
    if not providers:
        note = "onnxruntime is not installed"
        onnx = int8 = None
    gpu = [p for p in GPU_PROVIDERS if p in providers]
    if requested == "onnx-int8":
        if int8 is None:
            raise ModelError(f"{model_file}: cannot run the int8 ONNX model: {note or 'not available'}")
        return EngineChoice("onnx-int8", str(int8), ("CPUExecutionProvider",), "ONNX Runtime int8, CPU",
                            ASKED)
    if requested == "onnx":
        if onnx is None:
            raise ModelError(f"{model_file}: cannot run the ONNX model: {note} (liverseg export-onnx makes it)")
        where = _PROVIDER_NAMES.get(gpu[0], gpu[0]) if gpu else "CPU"
        return EngineChoice("onnx", str(onnx), tuple(gpu) + ("CPUExecutionProvider",),
                            f"ONNX Runtime fp32, {where}", ASKED)
    # auto, no GPU for Keras
    if onnx is not None and gpu:
        return EngineChoice("onnx", str(onnx), tuple(gpu) + ("CPUExecutionProvider",),
                            f"ONNX Runtime fp32, {_PROVIDER_NAMES.get(gpu[0], gpu[0])}",
                            f"no GPU for Keras; ONNX Runtime has {gpu[0]}")
    if int8 is not None:
        return EngineChoice("onnx-int8", str(int8), ("CPUExecutionProvider",), "ONNX Runtime int8, CPU",
                            "no GPU; the int8 model passed its Dice check")
    if onnx is not None:
        return EngineChoice("onnx", str(onnx), ("CPUExecutionProvider",), "ONNX Runtime fp32, CPU",
                            f"no GPU; {note}")
    if not has_keras:
        raise ModelError(onnx_only_error(str(Path(model_file).parent), note))
    return _with(keras, f"no GPU; {note}")


def engines_line(engines: dict) -> str:
    """"liver: ONNX Runtime int8, CPU; tumor: ..." from ``Segmentation.info["engines"]``."""
    return "; ".join(f"{stage}: {desc}" for stage, desc in engines.items())


def _with(choice: EngineChoice, reason: str) -> EngineChoice:
    return EngineChoice(choice.engine, choice.file, choice.providers, choice.device, reason)
