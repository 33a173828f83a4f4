"""The 3D view's surfaces (core.study.surfaces.label_meshes): seconds for a whole study.

On patient 17's expert labels (119 x 512 x 512) from ../shared when present, else on a synthetic
130 x 512 x 512 label (an ellipsoid liver with two lesions); imports warmed first, median of 5.
The 3D view computes them in a worker after each edit; goal <= 0.5 s.

    .venv/bin/python bench/benchmarks/surfaces_bench.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def study_label():
    src = ROOT.parent / "shared" / "data" / "3Dircadb1.17"
    if src.exists():
        from core.datasets.dataset import load_case
        from core.datasets.ircadb import import_ircadb
        tmp = Path(tempfile.mkdtemp())
        import_ircadb(str(src), str(tmp))
        c = load_case(tmp, "3Dircadb1.17")
        return c.label, c.spacing, "3Dircadb1.17 expert labels"
    lab = np.zeros((130, 512, 512), np.uint8)
    zz, yy, xx = np.ogrid[:130, :512, :512]
    lab[((zz - 65) / 50.) ** 2 + ((yy - 250) / 120.) ** 2 + ((xx - 200) / 150.) ** 2 <= 1] = 1
    lab[((zz - 60) / 8.) ** 2 + ((yy - 250) / 15.) ** 2 + ((xx - 200) / 15.) ** 2 <= 1] = 2
    lab[((zz - 80) / 3.) ** 2 + ((yy - 200) / 5.) ** 2 + ((xx - 150) / 5.) ** 2 <= 1] = 2
    return lab, (2.0, 0.7, 0.7), "synthetic 130 x 512 x 512 label"


def main() -> None:
    from core.study.surfaces import label_meshes
    label, spacing, name = study_label()
    label_meshes(label[:8], spacing)  # imports
    times = []
    for _ in range(5):
        t = time.perf_counter()
        meshes = label_meshes(label, spacing)
        times.append(time.perf_counter() - t)
    tri = sum(len(m.faces) for m in meshes)
    print(f"{name} {label.shape}: {statistics.median(times):.3f} s median of 5 "
          f"({min(times):.3f}-{max(times):.3f}); {len(meshes)} meshes, {tri} triangles")


if __name__ == "__main__":
    main()
