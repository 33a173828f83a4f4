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


def core_import_graph() -> dict[str, set[str]]:
    """Module -> the core modules it imports (at the top or inside functions: a lazy import is
    still a dependency), from the source."""
    def name(path: Path) -> str:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    files = {name(p): p for p in (ROOT / "core").rglob("*.py")}

    def resolve(target: str) -> str:
        while target and target not in files:
            target = target.rpartition(".")[0]
        return target

    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {resolve(t) for t in targets if t == "core" or t.startswith("core.")}
        graph[mod] = {d for d in deps if d and d != mod and not mod.startswith(d + ".")}
    return graph


def test_core_modules_import_each_other_without_cycles():
    graph = core_import_graph()
    assert "core.inference" in graph and "core.engines" in graph
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


GROUND = {"core.errors", "core.atomic", "core.preprocess", "core.runs"}


def test_the_model_is_the_ground_floor():
    """core/model (network, losses, loading) imports only the ground-floor helpers: nothing from
    inference, engines, training, pipeline, dataset or phantom."""
    graph = core_import_graph()
    for mod, deps in graph.items():
        if mod == "core.model" or mod.startswith("core.model."):
            upward = {d for d in deps if not d.startswith("core.model")} - GROUND - {"core"}
            assert not upward, f"{mod} imports {sorted(upward)} (core/model must stay the ground floor)"
    for mod in GROUND:  # and the ground floor itself imports nothing above it
        assert graph[mod] <= GROUND | {"core.jobs"}, (mod, graph[mod])
