"""*Add lesion* with one click (core.study.fixes.add_lesion): lesion Dice per lesion.

For every true lesion of a study: the lesion is taken out of the expert label (its voxels set to
liver, as a model that missed it leaves them), one click at the lesion's anchor (its voxel nearest
the centroid) grows it back, and the grown region is scored against the lesion (Dice, volumes,
seconds). Studies: the demo phantom; patient 17 of 3D-IRCADb-01 (its tumours) and patient 7 with
synthetic 3D lesions pasted into its liver (ellipsoids 6-30 mm, 25-60 HU darker or 30-50 HU
brighter than the liver, soft margins, the CT's own noise kept underneath), from ../shared.

    .venv/bin/python bench/benchmarks/add_lesion_bench.py [--source ../shared/data] [--smooth-mm 0 1 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def load_patient(source: Path, patient: str, work: Path):
    from core.datasets.dataset import load_case
    from core.datasets.ircadb import import_ircadb
    import_ircadb(str(source / patient), str(work))
    return load_case(work, patient)


def paste_lesions(hu: np.ndarray, label: np.ndarray, spacing, seed: int = 7, n: int = 6):
    """``n`` soft-edged ellipsoids pasted into the liver of (hu, label): new arrays."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    hu, label = hu.astype(np.float32).copy(), label.copy()
    inner = ndimage.binary_erosion(label == 1, iterations=6)
    sites = np.argwhere(inner)
    liver_hu = float(np.median(hu[label == 1]))
    zz, yy, xx = np.ogrid[tuple(slice(0, s) for s in hu.shape)]
    for _ in range(n):
        c = sites[rng.integers(len(sites))]
        r = rng.uniform(3, 15, 3)  # semi-axes in mm
        d = sum(((g - ci) * s / ri) ** 2 for g, ci, s, ri in zip((zz, yy, xx), c, spacing, r, strict=True))
        inside = (d <= 1) & (label == 1)
        if inside.sum() < 20:
            continue
        delta = rng.uniform(-60, -25) if rng.random() < 0.7 else rng.uniform(30, 50)
        weight = np.clip((1.15 - d) / 0.3, 0, 1)  # a soft margin
        hu += (delta * weight).astype(np.float32) * (label == 1)
        label[inside] = 2
    return np.round(hu).astype(np.int16), label, liver_hu


def score(name: str, hu, label, spacing) -> list[dict]:
    from core.evaluation.metrics import lesion_components
    from core.study.fixes import FixError, add_lesion
    recs, comps = lesion_components(label == 2, spacing, hu)
    rows = []
    for r in recs:
        truth = comps == r["_label"]
        missed = label.copy()
        missed[truth] = 1
        t = time.perf_counter()
        try:
            fix = add_lesion(hu, missed, r["anchor"], spacing)
        except FixError as exc:
            rows.append({"study": name, "ml": r["volume_ml"], "dice": 0.0, "got_ml": 0.0, "s": 0.0, "note": str(exc)})
            continue
        s = time.perf_counter() - t
        got = np.zeros(label.shape, bool)
        got.reshape(-1)[fix.flat] = True
        dice = 2 * (got & truth).sum() / (got.sum() + truth.sum())
        rows.append({"study": name, "ml": r["volume_ml"], "dice": float(dice),
                     "got_ml": got.sum() * float(np.prod(spacing)) / 1000, "s": s, "note": ""})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--smooth-mm", type=float, nargs="+", default=None, help="compare SMOOTH_MM values")
    ap.add_argument("--band", nargs="+", default=None,
                    help="compare BAND values: 'one-sided' (the default rule) or a fraction, e.g. 0.5")
    args = ap.parse_args()
    import core.study.fixes as fixes
    from core.synthetic.demo import demo_case
    studies = []
    c = demo_case()
    studies.append(("phantom", c.hu, c.label, c.spacing))
    source = Path(args.source)
    with tempfile.TemporaryDirectory() as tmp:
        if (source / "3Dircadb1.17").exists():
            p17 = load_patient(source, "3Dircadb1.17", Path(tmp) / "ds")
            studies.append(("3Dircadb1.17", p17.hu, p17.label, p17.spacing))
            p7 = load_patient(source, "3Dircadb1.7", Path(tmp) / "ds")
            hu7, lab7, _ = paste_lesions(p7.hu, p7.label, p7.spacing)
            studies.append(("3Dircadb1.7 + pasted", hu7, lab7, p7.spacing))
        else:
            print(f"{source}: no 3D-IRCADb-01 here; the phantom only")
    variants = [(sm, b) for sm in (args.smooth_mm or [fixes.SMOOTH_MM])
                for b in (args.band or [fixes.BAND])]
    for sm, band in variants:
        fixes.SMOOTH_MM = sm
        fixes.BAND = None if band in (None, "one-sided") else float(band)
        print(f"\nSMOOTH_MM = {sm}, BAND = {fixes.BAND or 'one-sided'}")
        print(f"{'study':22s} {'lesion mL':>9s} {'grown mL':>9s} {'Dice':>6s} {'s':>5s}")
        all_rows = []
        for name, hu, label, spacing in studies:
            for r in score(name, hu, label, spacing):
                all_rows.append(r)
                print(f"{r['study']:22s} {r['ml']:9.2f} {r['got_ml']:9.2f} {r['dice']:6.3f} {r['s']:5.2f} {r['note']}")
        d = [r["dice"] for r in all_rows]
        print(f"median Dice {np.median(d):.3f}, mean {np.mean(d):.3f}, >= 0.75: {sum(x >= 0.75 for x in d)} / {len(d)}")


if __name__ == "__main__":
    main()
