"""core.runtime.settings: the saved engine and Keras backend choice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.runtime.settings import Settings, apply_backend, installed_backends, load_settings, save_settings

ROOT = Path(__file__).resolve().parents[3]


def test_round_trip_and_defaults(tmp_path):
    p = tmp_path / "cfg" / "settings.json"
    assert load_settings(p) == Settings()
    save_settings(Settings(engine="onnx-int8", keras_backend="torch"), p)
    assert load_settings(p) == Settings("onnx-int8", "torch")
    p.write_text("{not json")
    assert load_settings(p) == Settings()  # a bad file never stops the app
    p.write_text('{"engine": "warp-drive"}')
    assert load_settings(p) == Settings()
    with pytest.raises(ValueError, match="engine must be one of"):
        Settings(engine="x")


def test_environment_wins_over_the_setting(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert apply_backend(Settings(keras_backend="torch")) == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    assert apply_backend(Settings(keras_backend="torch")) == "torch" and os.environ["KERAS_BACKEND"] == "torch"
    assert "tensorflow" in installed_backends()


def test_saved_backend_is_used_by_the_command(tmp_path):
    """``liverseg`` applies the saved backend before Keras is imported (the Windows GPU route: PyTorch)."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    save_settings(Settings(keras_backend="torch"), tmp_path / "LiverSegStudio" / "settings.json")
    code = ("import os, sys, app.cli\ntry:\n    app.cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ['KERAS_BACKEND'], 'keras' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ["torch", "False"]  # chosen, and Keras not imported yet
