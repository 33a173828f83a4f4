"""A screenshot of the main window after *Segment* on a study, as a user sees it (the real window, the
ML stack loaded, the default models unless named). Needs a display (Xvfb works).

    DISPLAY=:1 .venv/bin/python bench/recipes/app_screenshot.py STUDY --out shot.png [--acquisition N] \\
        [--liver-model DIR --tumor-model DIR]

STUDY is a DICOM folder or a volume file; ``--acquisition`` picks one acquisition of a series that
holds several (the choice a user makes in the series dialog).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--out", required=True)
    ap.add_argument("--acquisition", type=int)
    ap.add_argument("--liver-model")
    ap.add_argument("--tumor-model", dest="tumour_model")
    args = ap.parse_args()
    from PySide6.QtCore import QTimer

    from bench.recipes.window_driver import open_window, wait
    from core.catalog.library import default_models
    ini = Path(args.out).with_suffix(".ini")
    app, w = open_window(ini)

    def choose(cts):
        if args.acquisition is None:
            return 0
        return next(i for i, s in enumerate(cts) if s.acquisition == args.acquisition)

    w.files.open_path(args.study, choose=choose)
    wait(w.studyLoaded)
    liver, tumour = default_models()
    w.segmentation.run_segmentation(args.liver_model or liver.path, args.tumour_model or tumour.path)
    wait(w.summaryUpdated)
    w.tabs.setCurrentWidget(w.results)
    QTimer.singleShot(1500, app.quit)
    app.exec()
    w.grab().save(args.out)
    ini.unlink(missing_ok=True)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
