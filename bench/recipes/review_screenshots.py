"""Screenshots of the review panels on a real study (README): segment with the default models, select
the first lesion, then the Results tab and the 3D tab. Needs a display with OpenGL (Xvfb works).

    DISPLAY=:1 .venv/bin/python bench/recipes/review_screenshots.py DICOM_DIR --out docs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dicom")
    ap.add_argument("--out", default=str(ROOT / "docs"))
    args = ap.parse_args()
    from PySide6.QtCore import QTimer

    from bench.recipes.window_driver import open_window, wait
    from core.catalog.library import default_models
    app, w = open_window(Path(args.out) / ".shots.ini")
    w.files.open_path(args.dicom)
    wait(w.studyLoaded)
    liver, tumour = default_models()
    w.segmentation.run_segmentation(liver.path, tumour.path)
    wait(w.summaryUpdated)
    w.results.select(0)
    w.tabs.setCurrentWidget(w.results)
    for _ in range(50):
        app.processEvents()
    out = Path(args.out)
    w.grab().save(str(out / "screenshot-review.png"))
    w.tabs.setCurrentWidget(w.review.tab3d)
    wait(w.jobs._timer.timeout, 3000)
    for _ in range(200):
        app.processEvents()
    QTimer.singleShot(1500, app.quit)
    app.exec()
    w.grab().save(str(out / "screenshot-3d.png"))
    print("wrote", out / "screenshot-review.png", out / "screenshot-3d.png")
    (out / ".shots.ini").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
