"""The runners of one cascade: the device and each model's engine, chosen once.

:func:`prepare_runners` resolves the device (:func:`core.inference.devices.resolve_device`) and opens
a :class:`core.inference.engines.Runner` per model; :func:`core.inference.cascade.segment` runs them.
Whoever segments many studies with the same models keeps the :class:`CascadeRunners` (the study
session does, :func:`core.study.session.cascade_runners`), so ONNX Runtime sessions are opened and
JAX forwards compiled once, not per study.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..model.card import CARD, INT8_FILE, MODEL, ONNX_FILE
from ..runtime.choices import Engine
from .devices import Device, resolve_device
from .engines.runner import Runner, open_runner


@dataclass(frozen=True)
class CascadeRunners:
    """What runs a cascade.

    Attributes:
        device: where the Keras backend runs (the ONNX engines say their own in ``engine_text``).
        engine: the engine asked for ("auto", "keras", "onnx", "onnx-int8").
        liver, tumour: the runners (``tumour`` None for a liver-only cascade).
        liver_model, tumour_model: the :class:`core.model.io.SegModel` objects they run.
    """

    device: Device
    engine: Engine
    liver: Runner
    tumour: Runner | None
    liver_model: object
    tumour_model: object = None

    @property
    def batch_size(self) -> int:
        return self.liver.batch


def prepare_runners(liver_model, tumour_model=None, engine: Engine = "auto", device: str | None = None,
                    batch_size: int | None = None) -> CascadeRunners:
    """Choose the device once and open both models' runners.

    Args:
        liver_model, tumour_model: loaded :class:`core.model.io.SegModel` (tumour optional).
        engine: see :data:`core.inference.engines.ENGINES`.
        device: None (the GPU when the backend sees one), "cpu" or "gpu".
        batch_size: slices per call (default: the device's, 8 on CPU, 32 on GPU).

    Raises:
        LiverSegError: "gpu" asked for without one; ModelError: an engine that cannot run.
    """
    dev = resolve_device(device)
    liver = open_runner(liver_model, engine, dev, batch_size)
    tumour = open_runner(tumour_model, engine, dev, batch_size) if tumour_model is not None else None
    return CascadeRunners(dev, engine, liver, tumour, liver_model, tumour_model)


def model_version(seg_model) -> tuple:
    """The files a model's runner depends on, with their modification times (a re-export or a new
    threshold makes a new version, so a kept runner is not used for it)."""
    if seg_model is None:
        return ()
    path = Path(seg_model.path)
    out = []
    for p in {path, *(path.parent / n for n in (MODEL, CARD, ONNX_FILE, INT8_FILE))}:
        try:
            out.append((p.name, p.stat().st_mtime_ns))
        except OSError:
            pass
    return tuple(sorted(out))
