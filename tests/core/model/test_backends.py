"""One saved model predicts the same on the TensorFlow and PyTorch backends (Keras 3 only, no tf.*)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]

PREDICT = r"""
import sys, json, numpy as np, keras
from core.model.io import load_model
from core.model.losses import dice_metric
m = load_model(sys.argv[1])
x = np.load(sys.argv[2])
y = np.asarray(keras.ops.convert_to_numpy(m(x, training=False)))
d = dice_metric(); d.update_state(y > 0.5, y)
np.save(sys.argv[3], y)
print(json.dumps({"backend": keras.backend.backend(), "dice_self": float(keras.ops.convert_to_numpy(d.result()))}))
"""


def _run_backend(backend: str, model: Path, x: Path, out: Path) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend)
    p = subprocess.run([sys.executable, "-c", PREDICT, str(model), str(x), str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="PyTorch is not installed in .venv: `python3 dev.py test` installs torch==2.13.0 and says "
                           "so when pip cannot")
def test_tensorflow_and_torch_agree(tiny_dataset, tmp_path):
    from core.training.trainer import TrainConfig, train
    train(TrainConfig(dataset=str(tiny_dataset), out=str(tmp_path / "run"), epochs=1, batch_size=8, image_size=32,
                      base_filters=4, depth=2, val_fraction=0.34))
    model = tmp_path / "run" / "model.keras"
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    tf_info = _run_backend("tensorflow", model, tmp_path / "x.npy", tmp_path / "tf.npy")
    torch_info = _run_backend("torch", model, tmp_path / "x.npy", tmp_path / "torch.npy")
    assert tf_info["backend"] == "tensorflow" and torch_info["backend"] == "torch"
    assert tf_info["dice_self"] == pytest.approx(1.0) and torch_info["dice_self"] == pytest.approx(1.0)
    np.testing.assert_allclose(np.load(tmp_path / "torch.npy"), np.load(tmp_path / "tf.npy"), atol=1e-4)
