"""ONNX Runtime: the execution providers here, a checked session, and the runner (the same
``predict(norm, zs, cancel, progress, stage)`` interface as the Keras runners)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...runtime.errors import ModelError, one_line
from ...runtime.jobs import check, report
from ...transforms.preprocess import stack_channels


def available_providers() -> list[str]:
    """ONNX Runtime's execution providers here ([] when onnxruntime is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def open_session(path: str | os.PathLike, size: int, providers: Optional[Sequence[str]] = None,
                 threads: int = 0):
    """An ONNX Runtime session for a segmentation model, its shapes checked.

    Raises:
        ModelError: onnxruntime missing, the file unreadable, or shapes other than
            [B, size, size, 3] -> [B, size, size, 1].
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("onnxruntime is not installed (pip install onnxruntime)") from None
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX file")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    try:
        sess = ort.InferenceSession(str(path), opts, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"{path}: cannot load ONNX model ({one_line(exc, 200)})") from None
    ins, outs = sess.get_inputs(), sess.get_outputs()
    ishape = tuple(ins[0].shape) if len(ins) == 1 else ()
    oshape = tuple(outs[0].shape) if len(outs) == 1 else ()
    if len(ishape) != 4 or tuple(ishape[1:]) != (size, size, 3):
        raise ModelError(f"{path}: unexpected ONNX input shape {ishape}; expected (B, {size}, {size}, 3)")
    if len(oshape) != 4 or tuple(oshape[1:]) != (size, size, 1):
        raise ModelError(f"{path}: unexpected ONNX output shape {oshape}; expected (B, {size}, {size}, 1)")
    return sess


def run_session(sess, x: np.ndarray) -> np.ndarray:
    """Probabilities [B, S, S] for inputs [B, S, S, C]."""
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0][..., 0]


class OrtRunner:
    """Calls an ONNX Runtime session on batches (the same interface as the Keras runners)."""

    def __init__(self, seg_model, choice, batch_size: int):
        """``choice``: the :class:`core.engines.EngineChoice` naming the ONNX file and providers."""
        cache = seg_model.__dict__.setdefault("_ort_sessions", {})
        key = (choice.file, choice.providers, Path(choice.file).stat().st_mtime_ns)  # a re-export is a new key
        if key not in cache:  # created once per model and engine (and file version), reused by every study
            cache[key] = open_session(choice.file, seg_model.pre.size, choice.providers)
        self.sess, self.m, self.batch = cache[key], seg_model, batch_size

    def predict(self, norm: np.ndarray, zs: np.ndarray, cancel, progress, stage: str) -> np.ndarray:
        out = np.empty((len(zs),) + norm.shape[1:], np.float32)
        for i in range(0, len(zs), self.batch):
            check(cancel)
            part = zs[i:i + self.batch]
            out[i:i + len(part)] = run_session(self.sess, stack_channels(norm, part, self.m.pre))
            report(progress, stage, i + len(part), len(zs))
        return out
