"""A screenshot of *File > Compare with earlier study* on a real pair, as a user sees it: the
follow-up opened and segmented in the main window, the earlier study picked (the acquisition a user
picks in the series dialog), segmented with the default models and compared. Needs a display (Xvfb).

    DISPLAY=:1 .venv/bin/python bench/recipes/compare_screenshot.py BASELINE FOLLOWUP --out shot.png \\
        [--baseline-acquisition N] [--followup-acquisition N] [--row K]

``--row`` selects lesion row K of the table (default: the first, the largest baseline lesion) so
both views show it. The PNG is reduced to 256 colours (the docs keep it small).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("baseline")
    ap.add_argument("followup")
    ap.add_argument("--out", required=True)
    ap.add_argument("--baseline-acquisition", type=int)
    ap.add_argument("--followup-acquisition", type=int)
    ap.add_argument("--row", type=int, default=0)
    args = ap.parse_args()
    from bench.recipes.window_driver import open_window, wait
    from core.catalog.library import default_models
    ini = Path(args.out).with_suffix(".ini")
    app, w = open_window(ini)

    def settle(until, seconds=600.0):
        end = time.time() + seconds
        while not until() and time.time() < end:
            app.processEvents()
            time.sleep(0.02)

    def choose(acquisition):
        return lambda cts: 0 if acquisition is None else next(
            i for i, s in enumerate(cts) if s.acquisition == acquisition)

    w.files.open_path(args.followup, choose=choose(args.followup_acquisition))
    wait(w.studyLoaded)
    liver, tumour = default_models()
    w.segmentation.run_segmentation(liver.path, tumour.path)
    wait(w.summaryUpdated)
    settle(lambda: not w.jobs.busy)
    f = w.followup
    f.models = lambda: (liver.path, tumour.path)
    f.compare_with(args.baseline, choose=choose(args.baseline_acquisition))
    settle(lambda: f.window is not None and not w.jobs.busy)
    cw = f.window
    cw.resize(1600, 950)
    cw.table.selectRow(args.row)
    cw.show_row(args.row)
    settle(lambda: False, 1.5)
    img = cw.grab().toImage()
    tmp = Path(args.out).with_suffix(".full.png")
    img.save(str(tmp))
    from PIL import Image
    Image.open(tmp).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(args.out, optimize=True)
    tmp.unlink()
    ini.unlink(missing_ok=True)
    c = f.comparison
    print("wrote", args.out, f"({Path(args.out).stat().st_size // 1024} KB)")
    print(f"RECIST 1.1 {c.recist.category}, mRECIST {c.mrecist.category}, registration {c.registration.kind}")


if __name__ == "__main__":
    main()
