"""The repository's rooms: bench/ in its three folders, and README's map naming every package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_ROOMS = {"benchmarks", "recipes", "experiments"}


def test_bench_scripts_live_in_benchmarks_recipes_or_experiments():
    loose = sorted(p.name for p in (ROOT / "bench").glob("*.py"))
    assert not loose, f"put these in bench/benchmarks, bench/recipes or bench/experiments: {loose}"
    rooms = {p.name for p in (ROOT / "bench").iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert rooms == BENCH_ROOMS, rooms
    readme = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    for room in BENCH_ROOMS:
        for script in (ROOT / "bench" / room).glob("*.py"):
            assert f"`{script.name}`" in readme, f"bench/README.md does not name {room}/{script.name}"


def test_readme_map_names_every_core_package_and_module():
    """Each core package has a row in README's map, and the row names each of its modules."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(core/[a-z_]+/)` \| (.*)$", readme, re.M))
    for pkg in sorted(p for p in (ROOT / "core").iterdir() if (p / "__init__.py").exists()):
        row = rows.get(f"core/{pkg.name}/")
        assert row is not None, f"README's map has no row for core/{pkg.name}/"
        for mod in sorted(pkg.glob("*.py")):
            if mod.stem != "__init__":
                assert f"`{mod.stem}`" in row, f"README's row for core/{pkg.name}/ does not name `{mod.stem}`"


def test_bench_imports_of_bench_modules_name_files_that_exist():
    """``from bench.recipes.window_driver import ...`` inside a script: the module must exist at that path."""
    bad = []
    for path in sorted((ROOT / "bench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("bench."):
                target = ROOT / (node.module.replace(".", "/") + ".py")
                if not target.is_file():
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
    assert not bad, "\n".join(bad)
