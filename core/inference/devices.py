"""Which device the Keras backend would run on (a :class:`Device`), without importing Keras when the
answer is plain.

Importing Keras (and with it TensorFlow) costs ~2 s; a CPU-only PC running both models through
ONNX Runtime never needs it. :func:`gpu_possible` answers from the operating system alone when no
GPU driver is installed; only when one is does :func:`default_device` ask the backend itself.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..runtime.edition import keras_available
from ..runtime.errors import LiverSegError
from ..runtime.ml_backend import load_keras, load_tensorflow


@dataclass(frozen=True)
class Device:
    """Where the Keras backend runs a model: its GPU (default placement) or the CPU.

    Attributes:
        backend: the Keras backend ("tensorflow", "jax", "torch").
        gpu: True when the backend sees a GPU and runs on it.
        note: why not, where it matters to people (e.g. "Keras not installed").
    """

    backend: str
    gpu: bool = False
    note: str = ""

    @property
    def keras_device(self) -> str | None:
        """For ``keras.device``: None on the GPU (the backend's default placement), else "cpu:0"."""
        return None if self.gpu else "cpu:0"

    @property
    def text(self) -> str:
        """For people: "tensorflow GPU", "jax CPU", "tensorflow CPU (Keras not installed)"."""
        return f"{self.backend} {'GPU' if self.gpu else 'CPU'}" + (f" ({self.note})" if self.note else "")

    @property
    def batch_size(self) -> int:
        """Slices per network call by default: 32 on a GPU, 8 on the CPU."""
        return 32 if self.gpu else 8

    def on_cpu(self) -> Device:
        return Device(self.backend, False, self.note)


def backend_name() -> str:
    """The Keras backend that will be used (KERAS_BACKEND, else Keras's default, TensorFlow)."""
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


def gpu_possible() -> bool:
    """False only when this machine certainly has no GPU a Keras backend could use: no NVIDIA
    driver (Linux: /proc/driver/nvidia, /dev/nvidia0; Windows: nvcuda.dll) and no ROCm device
    (/dev/kfd). macOS and anything unknown say True (the backend is asked)."""
    if os.environ.get("LIVERSEG_ASSUME_GPU") == "1":
        return True
    if sys.platform.startswith("linux"):
        return any(Path(p).exists() for p in ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd"))
    if sys.platform == "win32":
        root = Path(os.environ.get("SystemRoot", r"C:\Windows"))
        return (root / "System32" / "nvcuda.dll").exists()
    return True


def default_device() -> Device:
    """The GPU when the Keras backend sees one, else the CPU."""
    if not gpu_possible():
        return Device(backend_name())
    if not keras_available():  # the lite edition: ONNX Runtime only
        return Device(backend_name(), note="Keras not installed")
    keras = load_keras()
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            tf = load_tensorflow()
            gpus = tf.config.list_physical_devices("GPU")
        elif backend == "jax":
            import jax
            gpus = [d for d in jax.devices() if d.platform == "gpu"]
        elif backend == "torch":
            import torch
            gpus = list(range(torch.cuda.device_count()))
        else:
            gpus = []
    except Exception:  # a broken GPU runtime must not stop CPU inference
        gpus = []
    return Device(backend, bool(gpus))


def resolve_device(request: str | None = None) -> Device:
    """The device for ``--device`` (None: the default, "cpu", or "gpu").

    Raises:
        LiverSegError: "gpu" asked for where the Keras backend sees none, or an unknown request.
    """
    if request not in (None, "cpu", "gpu"):
        raise LiverSegError(f"unknown device {request!r}; use cpu or gpu")
    found = default_device()
    if request == "cpu":
        return found.on_cpu()
    if request == "gpu" and not found.gpu:
        raise LiverSegError("--device gpu: the Keras backend sees no GPU")
    return found
