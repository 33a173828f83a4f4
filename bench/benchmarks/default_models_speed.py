"""The whole patient-17 job with the default models against the demo models, as a user runs it.

    .venv/bin/python bench/benchmarks/default_models_speed.py [--runs 3] [--engine auto]

Each run is a fresh ``liverseg predict`` process (start, load DICOM, both networks,
post-processing, NIfTI written) on patient 17 (119 x 512 x 512, from ../shared), alternating
the default models (``ircadb-*``: no model flags) and the demo models (``demo-*``). Prints the
median wall time of each, the cascade's own timings from the JSON report, and the ratio
default / demo (goal: at or under 1, i.e. the default models are no slower than the demo ones).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "3Dircadb1.17" / "PATIENT_DICOM.zip"
MODELS = ROOT / "resources" / "models"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engine", default="auto")
    args = ap.parse_args()
    if not SHARED.is_file():
        sys.exit(f"{SHARED} is absent: this benchmark needs the shared patient 17")
    sets = {"default": [], "demo": ["--liver-model", str(MODELS / "demo-liver"),
                                    "--tumor-model", str(MODELS / "demo-tumor")]}
    walls = {k: [] for k in sets}
    parts = {k: [] for k in sets}
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(SHARED) as z:
            z.extractall(tmp)
        dicom = Path(tmp) / "PATIENT_DICOM"
        for i in range(args.runs):
            for name, flags in sets.items():
                out, rep = Path(tmp) / f"{name}{i}.nii.gz", Path(tmp) / f"{name}{i}.json"
                t = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "app", "predict", str(dicom), "--out", str(out),
                                    "--report", str(rep), "--engine", args.engine, *flags],
                                   cwd=ROOT, capture_output=True, text=True)
                walls[name].append(time.perf_counter() - t)
                if r.returncode:
                    sys.exit(r.stderr[-2000:])
                timings = json.loads(rep.read_text())["timings_s"]
                parts[name].append(timings)
                print(f"{name:8s} run {i + 1}: {walls[name][-1]:.2f} s wall, cascade {timings['total']:.2f} s "
                      f"({', '.join(f'{k} {v:.2f}' for k, v in timings.items() if k != 'total')})", flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    cas = {k: statistics.median(p["total"] for p in v) for k, v in parts.items()}
    print(f"\npatient 17, engine {args.engine}, median of {args.runs}: default models {med['default']:.2f} s "
          f"(cascade {cas['default']:.2f} s), demo models {med['demo']:.2f} s (cascade {cas['demo']:.2f} s); "
          f"ratio default / demo: whole job {med['default'] / med['demo']:.2f}, "
          f"cascade {cas['default'] / cas['demo']:.2f}")


if __name__ == "__main__":
    main()
