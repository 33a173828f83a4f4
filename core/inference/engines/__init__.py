"""Which engine runs a model, and the runners (one interface, :class:`Runner`: ``predict(norm, zs,
cancel, progress, stage) -> probabilities``): Keras on any backend (:mod:`.keras_runner`) or ONNX
Runtime (:mod:`.ort`), chosen per model by :func:`choose_engine` (:mod:`.choice`) when
:func:`open_runner` (:mod:`.runner`) makes the runner. Exporting to ONNX and int8 quantisation live in
:mod:`core.training` (``core.model`` knows nothing of engines).
"""

from __future__ import annotations

from ...runtime.atomic import file_sha256  # noqa: F401
from .choice import (  # noqa: F401
                     ENGINES,
                     GPU_PROVIDERS,
                     EngineChoice,
                     choose_engine,
                     current_meta,
                     engines_line,
                     keras_sha256,
                     onnx_status,
)
from .ort import OrtRunner, available_providers, open_session, run_session  # noqa: F401
from .runner import Runner, open_runner  # noqa: F401
