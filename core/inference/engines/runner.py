"""The :class:`Runner` protocol, and :func:`open_runner`, which chooses a model's engine once and
makes the runner that holds everything it needs (an ONNX Runtime session, a jitted JAX forward).

A runner belongs to whoever made it (:class:`core.inference.runners.CascadeRunners`, held by the
study session across studies); nothing is cached on the model objects.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from ...runtime.choices import Engine
from ...runtime.jobs import CancelToken, ProgressFn
from ..devices import Device
from .choice import EngineChoice, choose_engine, current_meta
from .keras_runner import make_runner
from .ort import OrtRunner

log = logging.getLogger(__name__)


class Runner(Protocol):
    """Runs one model on slices of one study.

    Attributes:
        choice: the engine chosen for the model.
        engine_text: what ran, for people (may differ from ``choice.device`` after a fallback).
        batch: slices per call.
    """

    choice: EngineChoice
    engine_text: str
    batch: int

    def predict(self, norm: np.ndarray, zs: np.ndarray, cancel: CancelToken | None,
                progress: ProgressFn | None, stage: str) -> np.ndarray:
        """Probabilities [len(zs), S, S] of the slices ``zs`` of the normalised stack ``norm``."""
        ...


def open_runner(seg_model, engine: Engine, device: Device, batch_size: int | None = None) -> Runner:
    """Choose the engine for ``seg_model`` (:func:`choose_engine`) and make its runner.

    Raises:
        ModelError: the engine cannot run (see :func:`choose_engine`), or Keras is missing.
    """
    choice = choose_engine(engine, seg_model.path, current_meta(seg_model), device)
    log.info("%s model: %s (%s)", seg_model.stage, choice.device, choice.reason)
    batch = batch_size or device.batch_size
    if choice.engine == "keras":
        return make_runner(seg_model, choice, batch, device)
    return OrtRunner(seg_model, choice, batch)
