"""Viewer speed, offscreen: changing slice with both overlays on a 512 x 512 study (goal <= 16 ms),
and the time from a loaded volume to its first slice on screen (goal <= 1 s).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/benchmarks/viewer_bench.py [--dicom DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "3Dircadb1.17"

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dicom", help="an extracted DICOM folder (default: patient 17 from ../shared, else a phantom)")
    args = ap.parse_args()
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([])
    from app.main_window import MainWindow
    from core.datasets.dataset import load_case
    from core.datasets.ircadb import import_ircadb
    from core.study.study import Study
    with tempfile.TemporaryDirectory() as tmp:
        if SHARED.exists() and not args.dicom:
            import_ircadb(SHARED, Path(tmp) / "ds")
            case = load_case(Path(tmp) / "ds", "3Dircadb1.17")
            study = Study.from_case(case, "patient 17")
            label = case.label.copy()
        else:
            from core.synthetic.phantom import make_phantom
            c = make_phantom(17, 119, 512)
            study = Study(c.hu, c.spacing, name="phantom", reference=c.label)
            label = c.label.copy()
        study.label = label  # both prediction and reference: the heaviest overlay mode
        win = MainWindow()
        win.resize(1400, 900)
        win.show()
        app.processEvents()
        t = time.perf_counter()
        win.files.show_study(study)
        app.processEvents()
        first = time.perf_counter() - t
        win.viewer.set_mode("outlines")
        ax = win.viewer.axial
        times = []
        for k in range(study.shape[0]):
            t = time.perf_counter()
            ax.set_index(k)
            app.processEvents()  # paint
            times.append(time.perf_counter() - t)
        win.jobs.cancel_all()
    med, p95 = statistics.median(times), float(np.percentile(times, 95))
    print(f"study {study.shape}, both overlays + reference outlines, {len(times)} slice changes")
    print(f"first slice shown {first * 1000:.0f} ms after the volume was loaded (goal <= 1000)")
    print(f"slice change: median {med * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (goal <= 16)")


if __name__ == "__main__":
    main()
