"""Start-up: launch to a window that takes input, and to the first slice of a 119-slice study.

Runs ``liverseg gui STUDY --quit --timings T.json`` ``--repeat`` times (cold-ish: a fresh process
each time, the OS file cache warm), alternating with the floor: a bare PySide6 process that shows
an empty window and quits at its first event-loop turn. Prints the medians, the ratio ours / floor,
and whether any heavy ML module (TensorFlow, Keras, JAX, PyTorch) was loaded before the first
slice was on screen (the goal: none; window <= 1.5 s, first slice <= 2.5 s on the 2-core CPU).

The study is patient 17 of 3D-IRCADb-01 (119 x 512 x 512) when ../shared is there, else a
119-slice 512 x 512 synthetic DICOM series.

    .venv/bin/python bench/benchmarks/startup_bench.py [--repeat 5] [--dicom DIR] [--exe BUNDLE/liverseg]

``--exe``: time an installed bundle's ``liverseg`` instead of the source tree (the full and the
lite variant, docs/INSTALLERS.md).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from study17 import study_folder, study_parser  # noqa: E402

FLOOR = r"""
import os, sys, time, json
t0 = float(os.environ["LIVERSEG_LAUNCH_T"])
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
w = QMainWindow(); w.resize(1200, 800); w.show()
def done():
    print(json.dumps({"window_ready_s": time.time() - t0})); app.quit()
QTimer.singleShot(0, done)
app.exec()
"""


def env() -> dict:
    e = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
             LIVERSEG_LAUNCH_T=repr(time.time()))
    return e


def run_ours(folder: Path, out: Path, exe: str | None = None) -> dict:
    out.unlink(missing_ok=True)
    cmd = [exe] if exe else [sys.executable, "-m", "app"]
    p = subprocess.run(cmd + ["gui", str(folder), "--quit", "--timings", str(out)],
                       cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    if p.returncode != 0 or not out.exists():
        raise SystemExit(f"the app failed to start (exit {p.returncode}):\n{p.stderr[-2000:]}")
    return json.loads(out.read_text())


def run_floor() -> float:
    p = subprocess.run([sys.executable, "-c", FLOOR], env=env(), capture_output=True, text=True, timeout=120,
                       check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])["window_ready_s"]


def main() -> None:
    ap = study_parser(__doc__)
    ap.add_argument("--exe", help="a bundle's liverseg executable (default: this source tree)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, what = study_folder(Path(tmp), args.dicom)
        first_launch = run_ours(folder, Path(tmp) / "warm.json", args.exe)  # warms the OS file cache
        ours, floor = [], []
        for _ in range(args.repeat):
            ours.append(run_ours(folder, Path(tmp) / "t.json", args.exe))
            floor.append(run_floor())
    win = statistics.median(r["window_ready_s"] for r in ours)
    first = statistics.median(r["first_slice_s"] for r in ours)
    bare = statistics.median(floor)
    heavy = sorted({m for r in ours for m in r.get("first_slice_heavy_modules", []) + r.get(
        "window_ready_heavy_modules", [])})
    print(f"study: {what}; {args.repeat} starts each, medians; {args.exe or 'source tree'}")
    print(f"  first launch (file cache cold-ish) window {first_launch['window_ready_s']:.2f} s, "
          f"first slice {first_launch['first_slice_s']:.2f} s")
    print(f"  bare PySide6 window (floor)      {bare:6.2f} s")
    print(f"  LiverSeg window takes input      {win:6.2f} s   goal <= 1.5 s   ratio to floor {win / bare:.2f}")
    print(f"  first slice of the study shown   {first:6.2f} s   goal <= 2.5 s   ratio to floor {first / bare:.2f}")
    print(f"  heavy ML modules loaded by then: {', '.join(heavy) if heavy else 'none'}")


if __name__ == "__main__":
    main()
