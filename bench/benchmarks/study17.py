"""The study the start-up and whole-process benchmarks open: patient 17 of 3D-IRCADb-01 (119 x 512 x
512) from ../shared, else a synthetic 119-slice 512 x 512 DICOM series, or a folder given."""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "3Dircadb1.17" / "PATIENT_DICOM.zip"


def study_folder(tmp: Path, given: str | None) -> tuple[Path, str]:
    if given:
        return Path(given), given
    if SHARED.exists():
        with zipfile.ZipFile(SHARED) as zf:
            zf.extractall(tmp)
        return next(p.parent for p in tmp.rglob("*") if p.is_file()), "3Dircadb1.17 (119 x 512 x 512)"
    from core.synthetic.phantom import make_phantom
    from tests.core.factory import write_series
    ph = make_phantom(17, 119, 512)
    write_series(tmp / "series", ph.hu)
    return tmp / "series", "synthetic 119 x 512 x 512 series"


def study_parser(doc: str) -> argparse.ArgumentParser:
    """The benchmarks' common options: ``--repeat`` (runs, medians) and ``--dicom`` (the study)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dicom", help="DICOM folder to open (default: patient 17 from ../shared, else a phantom)")
    return ap
