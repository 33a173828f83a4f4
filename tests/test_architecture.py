"""Architecture rules: core is GUI-free, never imports app, and loads TensorFlow lazily."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUI = ("PySide6", "pyqtgraph", "PyQt5", "PyQt6", "shiboken6")
HEAVY = ("tensorflow", "keras", "jax", "torch")


def loaded_after(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_core_loads_no_qt():
    mods = loaded_after("import core, core.dicom, core.dataset, core.ircadb, core.phantom, core.cli, core.archive")
    bad = [m for m in mods if m.split(".")[0] in GUI]
    assert not bad, f"core imported GUI modules: {bad[:5]}"


def test_core_dicom_loads_no_tensorflow():
    mods = loaded_after("import core.dicom, core.dataset, core.ircadb, core.phantom")
    bad = [m for m in mods if m.split(".")[0] in HEAVY]
    assert not bad, f"importing core.dicom loaded {bad[:5]}"


def test_cli_info_loads_neither():
    mods = loaded_after("import app.cli")
    bad = [m for m in mods if m.split(".")[0] in GUI + HEAVY]
    assert not bad, f"the liverseg entry point imported {bad[:5]} before any command ran"


def test_core_source_never_imports_app_or_gui():
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                assert top != "app" and top not in GUI, f"{path.relative_to(ROOT)} imports {n}"
