"""The heavy boundary: Keras and TensorFlow are imported only through core.runtime.ml_backend, and
importing core changes nothing in the process until they are."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BOUNDARY = "core/runtime/ml_backend.py"
# light modules a notebook user imports to open, view and measure a study
LIGHT = ("core", "core.io.dicom", "core.study.session", "core.inference.cascade", "core.catalog.library",
         "core.evaluation.metrics", "core.followup.compare", "core.runtime.settings")


def _probe(code: str, **env: str) -> dict:
    e = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL")}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=e, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    return json.loads(out.splitlines()[-1])


SNAPSHOT = ("import os, sys, json\n"
            "def snap():\n"
            "    return {'env': dict(os.environ), 'meta_path': [type(f).__name__ for f in sys.meta_path]}\n")


def test_importing_core_sets_no_variable_and_installs_no_hook():
    code = SNAPSHOT + (f"before = snap()\nimport {', '.join(LIGHT)}\nafter = snap()\n"
                       "print(json.dumps({'same': before == after, 'hooks': after['meta_path']}))")
    got = _probe(code)
    assert got["same"], got
    assert "_QuietFinder" not in got["hooks"]


def test_loading_keras_sets_the_defaults_once_and_a_users_setting_wins():
    code = SNAPSHOT + ("from core.runtime import ml_backend\n"
                       "ml_backend.prepare(); ml_backend.prepare()\n"
                       "s = snap()\n"
                       "print(json.dumps({'onednn': s['env'].get('TF_ENABLE_ONEDNN_OPTS'),"
                       " 'log': s['env'].get('TF_CPP_MIN_LOG_LEVEL'),"
                       " 'hooks': s['meta_path'].count('_QuietFinder')}))")
    assert _probe(code) == {"onednn": "0", "log": "2", "hooks": 1}
    assert _probe(code, TF_ENABLE_ONEDNN_OPTS="1")["onednn"] == "1"


def test_keras_and_tensorflow_are_imported_only_at_the_boundary():
    """Everywhere else in core/ and app/: ``keras = load_keras()`` inside the function that needs it."""
    bad = []
    for path in sorted(p for d in ("core", "app") for p in (ROOT / d).rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name == BOUNDARY:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            bad += [f"{name}:{node.lineno} imports {m}" for m in mods if m.split(".")[0] in ("keras", "tensorflow")]
    assert not bad, "use core.runtime.ml_backend.load_keras() / load_tensorflow():\n" + "\n".join(bad)
