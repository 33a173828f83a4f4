"""Loading speed: core.io.dicom.load_series vs SimpleITK's ImageSeriesReader.

Extracts patient 17 of 3D-IRCADb-01 (../shared/data/3Dircadb1.17) into a temp
folder, then times both readers alternately on the same files, ``--repeat``
times each, after one warm-up each. Prints the medians and the ratio last
(ours / SimpleITK; the goal is <= 1.2).

    .venv/bin/python bench/benchmarks/load_bench.py [--repeat 15] [--dicom DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "3Dircadb1.17" / "PATIENT_DICOM.zip"


def load_ours(folder: str) -> np.ndarray:
    from core.io.dicom import load_series
    return load_series(folder).hu


def load_sitk(folder: str) -> np.ndarray:
    import SimpleITK as sitk
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    return sitk.GetArrayFromImage(reader.Execute())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--dicom", help="an extracted DICOM folder (default: patient 17 from ../shared)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dicom
        if folder is None:
            if not SHARED.exists():
                sys.exit(f"{SHARED} not found: pass --dicom DIR")
            with zipfile.ZipFile(SHARED) as z:
                z.extractall(tmp)
            folder = str(Path(tmp) / "PATIENT_DICOM")
        a, b = load_ours(folder), load_sitk(folder)  # warm-up, and a correctness check
        assert a.shape == b.shape and np.array_equal(a, b.astype(a.dtype)), "readers disagree"
        ours, sitk_t = [], []
        for _ in range(args.repeat):
            for fn, acc in ((load_ours, ours), (load_sitk, sitk_t)):
                t = time.perf_counter()
                fn(folder)
                acc.append(time.perf_counter() - t)
        mo, ms = statistics.median(ours), statistics.median(sitk_t)
        print(f"volume {a.shape} int16, {args.repeat} alternating runs each")
        print(f"core.io.dicom.load_series   median {mo * 1000:7.1f} ms  (min {min(ours) * 1000:.1f})")
        print(f"SimpleITK ImageSeriesReader median {ms * 1000:7.1f} ms  (min {min(sitk_t) * 1000:.1f})")
        print(f"ratio ours/SimpleITK: {mo / ms:.2f}")


if __name__ == "__main__":
    main()
