"""ONNX export of a trained model, checked against Keras, and ONNX Runtime sessions.

``export_onnx(model_dir)`` writes ``model.onnx`` next to ``model.keras`` (atomically),
runs both on phantom slices prepared with the model's own preprocessing, refuses the
file when they differ by more than ``tolerance``, and records the export in the card
``model.json`` (``"onnx"``; file names and card writes: :mod:`core.runs`). The conversion is
Keras' own ``model.export(format="onnx")`` (tf2onnx on the TensorFlow backend, ``torch.onnx``
on the PyTorch backend).

ONNX files are loaded with :func:`open_session`, which checks the input and output
shapes against ``model.json`` just as :func:`core.model.io.load_seg_model` does.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ..inference.engines.ort import available_providers, open_session, run_session  # noqa: F401 (re-exported)
from ..model.card import INT8_FILE, ONNX_FILE, drop_card_entry, model_folder, read_card, update_card
from ..model.io import find_model_file, load_seg_model
from ..runtime.atomic import default_mode, file_sha256
from ..runtime.errors import ModelError, one_line
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..runtime.ml_backend import load_keras
from ..synthetic.phantom import make_phantom
from ..transforms.preprocess import normalised_stack, stack_channels

TOLERANCE = 1e-4


def forget_int8(folder: Path) -> None:
    """Drop the int8 record, then the file (in that order: a record never names a missing or newer file)."""
    drop_card_entry(folder, "int8")
    with contextlib.suppress(OSError):
        os.unlink(folder / INT8_FILE)


def phantom_inputs(pre, n: int = 8, seed: int = 7) -> np.ndarray:
    """``n`` slices of a phantom through the liver, as model input [n, S, S, C] (float32)."""
    case = make_phantom(seed, max(n + 4, 16), 256)
    norm = normalised_stack(case.hu, pre, dz=case.spacing[0])
    zs = np.linspace(2, case.hu.shape[0] - 3, n).round().astype(int)
    return stack_channels(norm, zs, pre)


def _fsync_replace(tmp: str, final: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, default_mode())
    os.replace(tmp, final)


@contextlib.contextmanager
def temp_beside(final: Path, suffix: str = ".onnx"):
    """A temp file name in ``final``'s folder, removed unless it was renamed onto ``final``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _keras_to_onnx(model, x: np.ndarray, tmp: str) -> None:
    keras = load_keras()
    model(x[:1], training=False)  # Keras exports only models that have been called
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            model.export(tmp, format="onnx", verbose=False)
    except ImportError as exc:
        raise ModelError(f"ONNX export on the {keras.backend.backend()} backend needs {exc.name or exc} "
                         f"(pip install tf2onnx onnx)") from None
    except Exception as exc:
        raise ModelError(f"ONNX export failed on the {keras.backend.backend()} backend "
                         f"({one_line(exc, 200)})") from None


def export_onnx(path: str | os.PathLike, tolerance: float = TOLERANCE, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None) -> dict:
    """Export a model folder's ``model.keras`` to ``model.onnx`` and check it.

    Returns:
        The ``"onnx"`` record written into model.json (file, max_abs_diff, backend, date).

    Raises:
        ModelError: no model, the export failed, or ONNX and Keras disagree by more
            than ``tolerance`` (then no ``model.onnx`` is left behind).
    """
    keras = load_keras()

    folder = model_folder(path)
    seg = load_seg_model(find_model_file(folder), read_card(folder).get("stage"))
    report(progress, "onnx", 0, 3, "exporting")
    x = phantom_inputs(seg.pre)
    final = folder / ONNX_FILE
    t = time.perf_counter()
    with temp_beside(final) as tmp:
        _keras_to_onnx(seg.model, x, tmp)
        check(cancel)
        report(progress, "onnx", 1, 3, "checking against Keras")
        ref = np.asarray(keras.ops.convert_to_numpy(seg.model.predict_on_batch(x)), np.float32)[..., 0]
        got = run_session(open_session(tmp, seg.pre.size), x)
        diff = float(np.abs(ref - got).max())
        if not diff < tolerance:
            raise ModelError(f"{folder}: ONNX output differs from Keras by {diff:.2e} (limit {tolerance:.0e}); "
                             f"model.onnx not written")
        forget_int8(folder)  # quantised from the previous export: no longer valid
        _fsync_replace(tmp, final)
    record = {"file": ONNX_FILE, "keras_sha256": file_sha256(Path(seg.path)), "max_abs_diff": diff,
              "tolerance": tolerance, "checked_slices": int(len(x)),
              "backend": keras.backend.backend(), "seconds": round(time.perf_counter() - t, 2),
              "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    update_card(folder, onnx=record)
    report(progress, "onnx", 3, 3, f"model.onnx written (max difference {diff:.1e})")
    return record
