"""The heavy boundary: the one way the project imports Keras and TensorFlow.

``keras = load_keras()`` (and ``tf = load_tensorflow()``) inside the function that needs them, never
``import keras`` at a module's top: opening and viewing a study never waits for the ML stack, and
the lite edition, which has none, still imports every module it ships.

Before the first import, :func:`prepare` sets what must be set before TensorFlow loads (a user's own
setting wins) and keeps the backends' C++ start-up lines off the terminal (:mod:`.quiet`):

- ``TF_ENABLE_ONEDNN_OPTS=0``: TensorFlow 2.20/2.21 corrupt the heap in some oneDNN CPU kernels
  while training (tensorflow/tensorflow#117700, #123109: "double free or corruption", reproduced
  with the ResUNet);
- ``TF_CPP_MIN_LOG_LEVEL=2``: TensorFlow's informational C++ log lines.

Importing ``core`` (or any light module of it) changes nothing: no environment variable, no import
hook. Only loading the ML stack through this module does, once.
"""

from __future__ import annotations

import os
from typing import Any

from . import quiet

ENV_DEFAULTS = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}


def prepare() -> None:
    """Environment defaults and the quiet import hook (idempotent: both steps are)."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    quiet.install()


def load_keras() -> Any:
    """``keras``, imported the project's way (:func:`prepare` first); typed ``Any`` so that classes
    defined on its bases (callbacks, metrics) type-check like the module itself."""
    prepare()
    import keras

    return keras


def load_tensorflow() -> Any:
    """``tensorflow``, imported the project's way (:func:`prepare` first)."""
    prepare()
    import tensorflow

    return tensorflow
