"""Tiny deterministic 'models' for inference tests: a 1x1 convolution thresholding HU.

With the window25d recipe the middle channel is (HU + 100) / 500; the model outputs
sigmoid(60 * (that - t)), i.e. ~1 above ``hu_threshold`` and ~0 below. The result of
the cascade is then known in advance, which lets tests check geometry exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.runtime.ml_backend import load_keras


def threshold_model(folder: Path, stage: str, hu_threshold: float, size: int = 32) -> Path:
    keras = load_keras()  # as the app loads it: TensorFlow's start-up lines kept quiet
    folder.mkdir(parents=True, exist_ok=True)
    inp = keras.Input((size, size, 3))
    out = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32")(inp)
    m = keras.Model(inp, out)
    t = (hu_threshold + 100.0) / 500.0
    m.layers[-1].set_weights([np.array([0.0, 60.0, 0.0], np.float32).reshape(1, 1, 3, 1),
                              np.array([-60.0 * t], np.float32)])
    m.save(folder / "model.keras")
    meta = {"format": "liverseg-model", "version": 1, "stage": stage, "input_size": size, "channels": 3,
            "preprocessing": {"recipe": "window25d", "window": [-100.0, 400.0], "size": size, "channels": 3},
            "threshold": 0.5, "best": {"val_dice": 1.0}, "label": "test threshold model"}
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def cube_volume(z=12, size=64):
    """-1000 HU background, a 'liver' cube at 200 HU, a 'tumour' cube at 320 HU inside it."""
    hu = np.full((z, size, size), -1000, np.int16)
    label = np.zeros(hu.shape, np.uint8)
    hu[2:10, 16:48, 8:40] = 200
    label[2:10, 16:48, 8:40] = 1
    hu[4:8, 24:32, 16:24] = 320
    label[4:8, 24:32, 16:24] = 2
    return hu, label
