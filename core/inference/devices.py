"""Which device the Keras backend would run on, without importing Keras when the answer is plain.

Importing Keras (and with it TensorFlow) costs ~2 s; a CPU-only PC running both models through
ONNX Runtime never needs it. :func:`gpu_possible` answers from the operating system alone when no
GPU driver is installed; only when one is does :func:`default_device` ask the backend itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional


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


def default_device() -> tuple[Optional[str], str]:
    """(keras device string or None, a description), the GPU when the backend sees one."""
    if not gpu_possible():
        return "cpu:0", f"{backend_name()} CPU"
    from ..runtime.edition import keras_available
    if not keras_available():  # the lite edition: ONNX Runtime only
        return "cpu:0", f"{backend_name()} CPU (Keras not installed)"
    import keras
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf
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
    return (None, f"{backend} GPU") if gpus else ("cpu:0", f"{backend} CPU")
