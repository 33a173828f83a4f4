"""The repository's rooms: bench/ in its three folders, and README's map naming every package."""

from __future__ import annotations

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
