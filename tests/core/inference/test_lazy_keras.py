"""Keras is imported only when a Keras model actually runs: ONNX Runtime on a CPU needs none of it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.model.io import load_seg_model
from core.runtime.errors import ModelError

ROOT = Path(__file__).resolve().parents[3]

SEGMENT_WITH_DEFAULTS = r"""
import json, sys
from types import SimpleNamespace
from core.inference.cascade import segment
from core.catalog.library import default_models
from core.model.io import load_seg_model
from core.synthetic.phantom import make_phantom
ph = make_phantom(4, 24, 128)
l, t = default_models()
seg = segment(SimpleNamespace(hu=ph.hu, spacing=ph.spacing), load_seg_model(l.path, "liver", lazy=True),
              load_seg_model(t.path, "tumor", lazy=True))
print(json.dumps({"heavy": sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules),
                  "engines": seg.info["engines"], "liver": int((seg.label > 0).sum())}))
"""


def test_the_default_models_segment_through_onnx_runtime_without_importing_keras():
    pytest.importorskip("onnxruntime")
    env = {k: v for k, v in os.environ.items() if k != "LIVERSEG_ASSUME_GPU"}
    p = subprocess.run([sys.executable, "-c", SEGMENT_WITH_DEFAULTS], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    from core.inference.devices import gpu_possible
    if gpu_possible():  # a GPU driver here: the backend is rightly asked whether it sees the GPU
        pytest.skip("this machine has a GPU driver; the no-Keras path is for CPU-only machines")
    assert all("ONNX Runtime" in e for e in r["engines"].values()), r
    assert r["heavy"] == [], f"imported {r['heavy']} although ONNX Runtime ran both models"
    assert r["liver"] > 0


def test_a_lazy_model_loads_its_keras_model_on_first_use(tmp_path):
    from tests.core.models import threshold_model
    folder = threshold_model(tmp_path / "m", "liver", 60)
    m = load_seg_model(folder, "liver", lazy=True)
    assert m._model is None and m.pre.size == 32 and m.threshold == 0.5
    x = np.zeros((1, 32, 32, 3), np.float32)
    assert m.model.predict_on_batch(x).shape == (1, 32, 32, 1)
    assert m._model is m.model  # loaded once
    with pytest.raises(ModelError, match="not a tumor model"):
        load_seg_model(folder, "tumor", lazy=True)
    (tmp_path / "m" / "model.keras").write_bytes(b"not a zip archive")
    with pytest.raises(ModelError, match="cannot load model"):
        load_seg_model(folder, "liver", lazy=True)
    (tmp_path / "m" / "model.keras").write_bytes((tmp_path / "m" / "model.json").read_bytes())
    with pytest.raises(ModelError, match="cannot load model"):
        load_seg_model(folder, "liver", lazy=True)
