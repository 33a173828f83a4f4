"""The backends' C++ start-up lines stay off the terminal unless LIVERSEG_DEBUG / --verbose."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# absl / TensorFlow C++ log lines: "I0000 00:00:1795854339.184007   17010 cudart_stub.cc:31] ..."
CPP_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]|absl::InitializeLog", re.M)


def _run(code: str, **env) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "LIVERSEG_DEBUG"}
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=e, capture_output=True, text=True,
                          timeout=300)


def test_silenced_stderr_hides_descriptor_two_and_restores_it():
    code = ("import os\nfrom core.runtime.quiet import silenced_stderr\n"
            "with silenced_stderr():\n    os.write(2, b'hidden ')\nos.write(2, b'shown')\n")
    p = _run(code)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "shown"
    p = _run(code, LIVERSEG_DEBUG="1")
    assert p.stderr == "hidden shown"


def test_python_errors_inside_still_surface():
    code = ("from core.runtime.quiet import silenced_stderr\n"
            "with silenced_stderr():\n    raise ValueError('visible problem')\n")
    p = _run(code)
    assert p.returncode == 1
    assert "ValueError: visible problem" in p.stderr


def test_keras_on_tensorflow_starts_quietly():
    code = ("import numpy as np\nfrom core.runtime.ml_backend import load_keras\nkeras = load_keras()\n"
            "layer = keras.layers.Dense(2)\n"
            "print(keras.backend.backend(), tuple(layer(np.ones((1, 3), 'float32')).shape))\n")
    p = _run(code, KERAS_BACKEND="tensorflow")
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["tensorflow", "(1,", "2)"]
    assert not CPP_LOG.search(p.stderr), p.stderr[-2000:]
    assert "cuInit" not in p.stderr


def test_cli_verbose_flag_sets_debug(monkeypatch):
    from app import cli
    monkeypatch.delenv("LIVERSEG_DEBUG", raising=False)
    assert cli.take_verbose(["info", "--verbose", "x"]) == ["info", "x"]
    assert os.environ.get("LIVERSEG_DEBUG") == "1"
    monkeypatch.delenv("LIVERSEG_DEBUG", raising=False)
    assert cli.take_verbose(["info", "x"]) == ["info", "x"]
    assert "LIVERSEG_DEBUG" not in os.environ
