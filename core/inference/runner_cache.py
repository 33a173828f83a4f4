"""The models and cascade runners kept between segmentations, in one object its owner holds.

Opening an ONNX Runtime session or compiling a Keras forward takes seconds; the GUI, ``liverseg
predict`` and a batch run segment many studies with the same models, so the loaded models and their
:class:`core.inference.runners.CascadeRunners` are kept. A :class:`RunnerCache` keys them by what
they depend on: each model's file path and stage, and for the runners the engine, device and batch
size asked for and the model files' modification times (a re-export or a new threshold gets new
runners). :mod:`core.study.session` owns the process-wide one (``RUNNER_CACHE``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..model.io import load_seg_model
from ..runtime.choices import Engine, Stage
from .runners import model_version, prepare_runners

if TYPE_CHECKING:
    from .runners import CascadeRunners

KEEP_RUNNERS = 4  # the runner sets kept, most recently used last


def _model_key(model) -> tuple:
    """A loaded model's file (as an absolute path) and version; () for none."""
    if model is None:
        return ()
    return (str(Path(model.path).absolute()), model_version(model))


class RunnerCache:
    """Loaded models by (path, stage) and prepared cascade runners by models, engine, device, batch
    size and model file versions (the :data:`KEEP_RUNNERS` most recently used)."""

    def __init__(self, keep: int = KEEP_RUNNERS) -> None:
        self.keep = keep
        self._models: dict[tuple[str, str], object] = {}
        self._runners: dict[tuple, CascadeRunners] = {}

    def model(self, model, stage: Stage):
        """A :class:`core.model.io.SegModel`: ``model`` itself when already loaded, else loaded from
        its path once per (path, stage) (lazily: Keras only if a Keras engine runs it)."""
        if model is None or not isinstance(model, (str, os.PathLike)):
            return model
        key = (str(model), stage)
        if key not in self._models:
            self._models[key] = load_seg_model(model, stage, lazy=True)
        return self._models[key]

    def get(self, liver, tumour=None, engine: Engine = "auto", device: str | None = None,
            batch_size: int | None = None) -> CascadeRunners:
        """The runners of these models (paths or loaded models), engine, device and batch size:
        the kept ones when nothing they depend on changed, else prepared now and kept. Runners kept
        for other model objects of the same files are not handed out for these (a runner set runs
        exactly the models it was prepared with)."""
        liver_m = self.model(liver, "liver")
        tumour_m = self.model(tumour, "tumor") if tumour else None
        key = (_model_key(liver_m), _model_key(tumour_m), engine, device, batch_size)
        runners = self._runners.pop(key, None)
        if runners is None or runners.liver_model is not liver_m or runners.tumour_model is not tumour_m:
            runners = prepare_runners(liver_m, tumour_m, engine, device, batch_size)
        self._runners[key] = runners
        while len(self._runners) > self.keep:
            del self._runners[next(iter(self._runners))]
        return runners

    def clear(self) -> None:
        """Forget every model and runner kept (their sessions close when nothing else holds them)."""
        self._models.clear()
        self._runners.clear()

    def __len__(self) -> int:
        return len(self._runners)
