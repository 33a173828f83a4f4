"""Which engine runs a model, and the runners (one interface: ``predict(norm, zs, cancel, progress,
stage) -> probabilities``): Keras on any backend (:mod:`.keras_runner`) or ONNX Runtime
(:mod:`.ort`), chosen per model by :func:`choose_engine` (:mod:`.choice`). Exporting to ONNX
(:mod:`.onnx_export`) and int8 quantisation (:mod:`.quantize`) live here too, above the model
(``core.model`` knows nothing of engines).
"""

from __future__ import annotations

import logging
from typing import Optional

from ...runtime.atomic import file_sha256  # noqa: F401
from .choice import (ENGINES, GPU_PROVIDERS, EngineChoice, choose_engine, current_meta, engines_line,  # noqa: F401
                     keras_sha256, onnx_status)
from .ort import OrtRunner, available_providers, open_session, run_session  # noqa: F401

log = logging.getLogger(__name__)


def runner_for(seg_model, engine: str, batch_size: int, device: Optional[str], keras_device: str):
    """(runner, :class:`core.inference.engines.EngineChoice`) for one model."""
    choice = choose_engine(engine, seg_model.path, current_meta(seg_model), keras_device)
    log.info("%s model: %s (%s)", seg_model.stage, choice.device, choice.reason)
    if choice.engine == "keras":
        from .keras_runner import make_runner
        return make_runner(seg_model, batch_size, device), choice
    return OrtRunner(seg_model, choice, batch_size), choice


def prepare(seg_model, engine: str = "auto") -> EngineChoice:
    """Get a model ready to run before the study is there (e.g. while its DICOM series loads):
    choose its engine and open its ONNX Runtime session (cached on the model), or load the Keras
    model. Returns the choice; :func:`core.inference.cascade.segment` then finds everything ready."""
    from ..devices import default_device
    dev, desc = default_device()
    runner, choice = runner_for(seg_model, engine, 8, dev, desc)
    if choice.engine == "keras":
        seg_model.model  # noqa: B018 (loads it)
    return choice
