"""Keras runners: ``predict_on_batch`` on any backend (halving the batch when the device runs out
of memory), or one jitted JAX forward on a GPU. Keras is imported only when one is made."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...runtime.edition import onnx_only_error
from ...runtime.errors import ModelError
from ...runtime.jobs import check, report
from ...runtime.ml_backend import load_keras
from ...transforms.preprocess import stack_channels
from ..devices import Device

log = logging.getLogger(__name__)


class _Runner:
    """Calls a model on batches, halving the batch when the device runs out of memory."""

    def __init__(self, seg_model, choice, batch_size: int, device: str | None):
        self.m, self.choice, self.batch, self.device = seg_model, choice, batch_size, device
        self.engine_text = choice.device

    def _call(self, x: np.ndarray) -> np.ndarray:
        keras = load_keras()
        if self.device:
            with keras.device(self.device):
                y = self.m.model.predict_on_batch(x)
        else:
            y = self.m.model.predict_on_batch(x)
        return np.asarray(keras.ops.convert_to_numpy(y), dtype=np.float32)[..., 0]

    def predict(self, norm: np.ndarray, zs: np.ndarray, cancel, progress, stage: str) -> np.ndarray:
        out = np.empty((len(zs),) + norm.shape[1:], np.float32)
        i = 0
        while i < len(zs):
            check(cancel)
            part = zs[i:i + self.batch]
            try:
                out[i:i + len(part)] = self._call(stack_channels(norm, part, self.m.pre))
            except Exception as exc:  # out of memory on the device: retry smaller
                text = str(exc).lower()
                if self.batch > 1 and ("out of memory" in text or "resource exhausted" in text or "oom" in text):
                    self.batch //= 2
                    log.warning("out of device memory: batch size lowered to %d", self.batch)
                    continue
                raise
            i += len(part)
            report(progress, stage, i, len(zs))
        return out


class _JaxRunner:
    """JAX on a GPU: one jitted forward, every batch put on the device ahead of use (async dispatch),
    results fetched once at the end, instead of a ``predict`` round trip per chunk."""

    def __init__(self, seg_model, choice, batch_size: int):
        import jax
        m = seg_model.model
        self.m, self.choice, self.batch = seg_model, choice, batch_size
        self.engine_text = choice.device
        self.tv = [v.value for v in m.trainable_variables]  # compiled once per runner, which the
        self.ntv = [v.value for v in m.non_trainable_variables]  # session keeps for every study
        self.fwd = jax.jit(lambda tv, ntv, x: m.stateless_call(tv, ntv, x, training=False)[0][..., 0])

    def predict(self, norm: np.ndarray, zs: np.ndarray, cancel, progress, stage: str) -> np.ndarray:
        import jax
        outs = []
        for i in range(0, len(zs), self.batch):
            check(cancel)
            x = jax.device_put(stack_channels(norm, zs[i:i + self.batch], self.m.pre))
            outs.append(self.fwd(self.tv, self.ntv, x))
            report(progress, stage, min(i + self.batch, len(zs)), len(zs))
        if not outs:
            return np.empty((0,) + norm.shape[1:], np.float32)
        return np.concatenate([np.asarray(o, dtype=np.float32) for o in outs])


def make_runner(seg_model, choice, batch_size: int, device: Device):
    """The fastest way to call a model here: a jitted JAX forward on a GPU, else ``predict_on_batch``
    (``choice``: the Keras :class:`core.inference.engines.EngineChoice`).

    Raises:
        ModelError: Keras cannot be imported (the lite edition runs ONNX models only).
    """
    try:
        keras = load_keras()
    except ImportError as exc:
        raise ModelError(onnx_only_error(str(Path(seg_model.path).parent),
                                         f"Keras cannot be imported ({exc})")) from None
    if keras.backend.backend() == "jax" and device.gpu:
        return _JaxRunner(seg_model, choice, batch_size)
    return _Runner(seg_model, choice, batch_size, device.keras_device)
