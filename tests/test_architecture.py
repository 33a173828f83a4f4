"""Architecture rules: core is GUI-free, never imports app, and loads TensorFlow lazily; the GUI has no mixins."""

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
    mods = loaded_after("import core, core.io.dicom, core.datasets.dataset, core.datasets.ircadb, "
                        "core.synthetic.phantom, core.cli.commands, core.io.archive")
    bad = [m for m in mods if m.split(".")[0] in GUI]
    assert not bad, f"core imported GUI modules: {bad[:5]}"


def test_core_dicom_loads_no_tensorflow():
    mods = loaded_after("import core.io.dicom, core.datasets.dataset, core.datasets.ircadb, core.synthetic.phantom")
    bad = [m for m in mods if m.split(".")[0] in HEAVY]
    assert not bad, f"importing core.io.dicom loaded {bad[:5]}"


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


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a dependency graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (cycle := visit(d)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_core_modules_import_each_other_without_cycles():
    graph = core_import_graph()
    assert "core.inference.cascade" in graph and "core.inference.engines" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# The stages of core, bottom to top: a package imports only packages of lower layers (never one of
# its own layer, nor one above). app stands on top of all of them (core never imports it, above).
LAYERS = [
    ("runtime",),                 # errors, jobs, atomic writes, edition, labels, choices, user settings
    ("io", "transforms", "pacs"), # files in and out (and to and from a PACS); array transforms shared by
                                  # training and inference
    ("model", "datasets"),        # the network, its loading, the run folder and model card; the dataset folder
    ("synthetic", "inference", "catalog"),  # phantoms and rendered CT; the cascade and its engines; the
                                  # model catalogue (bundled and user models, sharing one as a zip)
    ("evaluation",),              # metrics and the per-case evaluation of the cascade
    ("training", "study"),        # training runs; one open study (CLI and GUI)
    ("followup",),                # two studies of one patient compared: registration, matching, RECIST
    ("cli",),                     # the command line
]
LAYER = {pkg: i for i, names in enumerate(LAYERS) for pkg in names}


def package_of(mod: str) -> str:
    return mod.split(".")[1] if mod.count(".") else ""


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for mod, deps in core_import_graph().items():
        if mod != "core":
            graph.setdefault(package_of(mod), set()).update(package_of(d) for d in deps if d != "core")
    return {p: deps - {p} for p, deps in graph.items()}


def test_every_core_module_lives_in_a_stage_package():
    loose = sorted(m for m in core_import_graph() if m != "core" and package_of(m) not in LAYER)
    assert not loose, f"modules outside the stage packages of LAYERS: {loose}"
    assert (ROOT / "core" / "__init__.py").exists()
    assert sorted(p.name for p in (ROOT / "core").glob("*.py")) == ["__init__.py"], "core/ holds only packages"


def test_packages_import_only_lower_layers():
    graph = core_import_graph()
    for mod, deps in sorted(graph.items()):
        if mod == "core":
            continue
        pkg = package_of(mod)
        for d in sorted(deps - {"core"}):
            dp = package_of(d)
            assert dp == pkg or LAYER[dp] < LAYER[pkg], (
                f"{mod} imports {d}: core.{pkg} (layer {LAYER[pkg]}) may import only lower layers, "
                f"not core.{dp} (layer {LAYER[dp]})")


def test_io_and_transforms_never_import_training_or_inference():
    graph = package_graph()
    for pkg in ("io", "transforms"):
        assert not graph[pkg] & {"training", "inference", "study", "cli"}, (pkg, graph[pkg])
        assert graph[pkg] <= {"runtime"}, (pkg, graph[pkg])


def test_only_the_command_line_imports_followup():
    """core/followup stands on study, evaluation, io, transforms and runtime; of core, only the
    command line stands on it (the GUI, in app/, may too)."""
    graph = package_graph()
    users = sorted(p for p, deps in graph.items() if "followup" in deps)
    assert users == ["cli"], users
    assert graph["followup"] <= {"study", "evaluation", "io", "transforms", "runtime"}, graph["followup"]


def test_packages_import_each_other_without_cycles():
    cycle = find_cycle(package_graph())
    assert cycle is None, "package cycle: " + " -> ".join(cycle)


# errors, atomic writes, the card format, the preprocessing contract (channels at mm positions), Keras
GROUND = {"core.runtime.errors", "core.runtime.atomic", "core.model.card", "core.transforms.preprocess",
          "core.transforms.zsample", "core.runtime.ml_backend", "core.runtime.quiet"}


def test_the_model_is_the_ground_floor():
    """core/model (network, losses, loading) imports only the ground-floor helpers (errors, atomic
    writes, the card format, the preprocessing contract): nothing from inference, engines,
    training, the loader, datasets or the phantom."""
    graph = core_import_graph()
    for mod, deps in graph.items():
        if mod == "core.model" or mod.startswith("core.model."):
            upward = {d for d in deps if not d.startswith("core.model")} - GROUND - {"core"}
            assert not upward, f"{mod} imports {sorted(upward)} (core/model must stay the ground floor)"
    for mod in GROUND:  # and the ground floor itself imports nothing above it
        assert graph[mod] <= GROUND | {"core.runtime.jobs"}, (mod, graph[mod])


def test_every_source_file_is_at_most_400_lines():
    files = [*ROOT.glob("*.py"), *(p for d in ("core", "app", "bench", "tests") for p in (ROOT / d).rglob("*.py"))]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"split these files (400 lines at most): {long}"


def app_classes() -> dict[str, list[str]]:
    """``module.Class`` -> its base classes as written, for every class defined in app/."""
    classes = {}
    for path in (ROOT / "app").rglob("*.py"):
        mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                classes[f"{mod}.{node.name}"] = [ast.unparse(b) for b in node.bases]
    return classes


def test_the_main_window_has_no_mixins():
    """MainWindow assembles controllers (app/controllers), each given what it uses: its only base
    is QMainWindow, so what a part of the window depends on is stated, not inherited."""
    assert app_classes()["app.main_window.MainWindow"] == ["QMainWindow"]


def test_no_app_class_inherits_from_several_classes():
    """No mixins anywhere in app/: every class has at most one base (a Qt class or one of ours)."""
    several = {name: bases for name, bases in app_classes().items() if len(bases) > 1}
    assert not several, f"one base per class (no mixins): {several}"


def test_controllers_take_what_they_use_not_the_window():
    """The controllers never import the main window: they receive WindowServices and the panels."""
    for path in (ROOT / "app" / "controllers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n.split(".")[-1] == "main_window" for n in names), f"{path.name} imports the main window"


def test_widgets_show_and_controllers_act():
    """app/widgets never import a controller nor the main window (a widget such as the follow-up
    comparison window shows and emits signals; its controller runs the jobs), and of app/ only
    the follow-up controller, its window and the worker functions use core.followup."""
    users = set()
    for path in (ROOT / "app").rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if rel.startswith("app/widgets/"):
                assert not any("controllers" in n or n.split(".")[-1] == "main_window" for n in names), (rel, names)
            if any(n.startswith("core.followup") for n in names):
                users.add(rel)
    assert users <= {"app/controllers/followup.py", "app/widgets/compare_view.py", "app/background.py"}, users


# Imports of our own modules sit at the top of the module; only these entry points, kept light on
# purpose, import them inside functions (module -> why).
LAZY_OWN_IMPORTS = {
    "app/cli.py": "the liverseg entry point: the GUI, the GL probe and the Keras backend load per command",
    "app/main.py": "the GUI start (app/cli.py's default command): Qt and the window load inside run_gui",
    "core/cli/commands.py": "imported by app/cli.py at start: each command loads its own modules when it runs",
    "core/cli/pacs.py": "imported by core/cli/commands.py at start: the PACS commands load their modules when run",
    "core/cli/train.py": "imported by core/cli/commands.py at start: the training commands load theirs when run",
    "core/cli/compare.py": "imported by core/cli/commands.py at start: the compare command loads its modules when run",
}
# The heavy libraries: imported inside the functions that need them, never at a module's top.
LAZY_HEAVY = ("keras", "tensorflow", "onnxruntime", "torch", "jax", "tf2onnx", "onnx", "pynetdicom", "SimpleITK")


def imports_by_place(path: Path) -> list[tuple[bool, int, str]]:
    """(inside a function, line, module) of every import of ``path``; relative imports as ".name"."""
    out: list[tuple[bool, int, str]] = []

    def walk(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((inside, child.lineno, a.name) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                out.append((inside, child.lineno, "." * child.level + (child.module or "")))
            walk(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    walk(ast.parse(path.read_text(encoding="utf-8")), False)
    return out


def source_files() -> dict[str, Path]:
    return {p.relative_to(ROOT).as_posix(): p for d in ("core", "app") for p in sorted((ROOT / d).rglob("*.py"))}


def lite_excluded() -> tuple[str, ...]:
    """The project's modules the lite bundle leaves out (build_lite.EXCLUDES)."""
    sys.path.insert(0, str(ROOT))
    try:
        import build_lite
    finally:
        sys.path.remove(str(ROOT))
    return tuple(e for e in build_lite.EXCLUDES if e.split(".")[0] in ("core", "app"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(name: str, importer: str, mod: str) -> str:
    """``mod`` as imported by the module ``importer`` (file ``name``), relative imports resolved."""
    if not mod.startswith("."):
        return mod
    level = len(mod) - len(mod.lstrip("."))
    pkg = importer if name.endswith("__init__.py") else importer.rpartition(".")[0]
    base = pkg.split(".")[:len(pkg.split(".")) - level + 1]
    return ".".join(base + ([mod.lstrip(".")] if mod.lstrip(".") else []))


def test_own_modules_are_imported_at_the_top():
    files = source_files()
    assert set(LAZY_OWN_IMPORTS) <= set(files), set(LAZY_OWN_IMPORTS) - set(files)
    lite = lite_excluded()

    def boundary(name: str, mod: str) -> bool:  # a module the lite bundle leaves out: imported when used
        full = absolute(name, module_name(files[name]), mod)
        return any(full == e or full.startswith(e + ".") for e in lite)

    bad = [f"{name}:{line} imports {mod} inside a function" for name, path in files.items()
           if name not in LAZY_OWN_IMPORTS for inside, line, mod in imports_by_place(path)
           if inside and (mod.startswith(".") or mod.split(".")[0] in ("core", "app")) and not boundary(name, mod)]
    assert not bad, "move these imports to the module's top (or, for an entry point kept light, " \
                    "add it to LAZY_OWN_IMPORTS with the reason):\n" + "\n".join(bad)


def test_heavy_libraries_are_imported_only_inside_functions():
    bad = [f"{name}:{line} imports {mod} at the module's top" for name, path in source_files().items()
           for inside, line, mod in imports_by_place(path) if not inside and mod.split(".")[0] in LAZY_HEAVY]
    assert not bad, "\n".join(bad)


def top_level_targets(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import outside functions, ``from m import n`` also as ``m.n`` (a
    submodule ``n``, as in ``from .. import jobs``)."""
    out: list[tuple[int, str]] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(child, ast.Import):
                out.extend((child.lineno, a.name) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                mod = "." * child.level + (child.module or "")
                out.append((child.lineno, mod))
                sep = "" if mod.endswith(".") else "."
                out.extend((child.lineno, mod + sep + a.name) for a in child.names)
            walk(child)

    walk(ast.parse(path.read_text(encoding="utf-8")))
    return out


def test_the_lite_bundle_never_imports_what_it_leaves_out_at_a_modules_top():
    """From the entry points, through every import at a module's top, no module the lite bundle
    leaves out (build_lite.EXCLUDES) is reached: they are imported inside the functions that need
    them, which the lite edition refuses first (training, PACS, the 3D view, registration)."""
    files = {module_name(p): p for p in (ROOT / "core").rglob("*.py")} | \
            {module_name(p): p for p in (ROOT / "app").rglob("*.py")}
    lite = lite_excluded()

    def left_out(mod: str) -> bool:
        return any(mod == e or mod.startswith(e + ".") for e in lite)

    bad, seen, todo = [], set(), ["app.cli", "app.main", "app.main_window"]
    while todo:
        mod = todo.pop()
        if mod in seen or mod not in files or left_out(mod):
            continue
        seen.add(mod)
        name = files[mod].relative_to(ROOT).as_posix()
        for line, target in top_level_targets(files[mod]):
            target = absolute(name, mod, target)
            if left_out(target):
                bad.append(f"{name}:{line} imports {target}")
            while target and target not in files:
                target = target.rpartition(".")[0]
            todo.append(target)
    assert not bad, "the lite bundle leaves these out; import them inside the function that needs them:\n" \
                    + "\n".join(bad)
