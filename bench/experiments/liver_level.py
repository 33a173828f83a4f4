"""A liver brighter than the tumour stage ever saw: the stage's input with and without ``liver_hu_max``.

The tumour stage judges a lesion against the liver around it; a portal-venous liver at 175 HU
(HCC_015's strong bolus) lies above every liver the recipe renders (90-130 HU) or holds as expert
CT (103 and 120 HU). With ``liver_hu_max`` (:func:`core.transforms.preprocess.liver_level_shift`)
the stage sees such a liver shifted down to that level. Each ``--levels`` value (``none``: no
shift) is set on the tumour model in memory and the whole cascade segments each named case of a
dataset, scored per case in 3D; ``--brighten L:T`` also scores every case with its liver L HU and its
tumours T HU brighter (a stronger bolus; smoothed one pixel at the edges), ``0:0`` being the case
as it is.

    .venv/bin/python bench/experiments/liver_level.py --work WORK --dataset WORK/dataset \\
        --cases HCC_015_19981101_s103 3Dircadb1.17 --levels none 130 --brighten 0:0 40:30 60:40 80:50
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="a work folder with liver/ and tumor/ models")
    ap.add_argument("--dataset", required=True, help="dataset holding the cases to score")
    ap.add_argument("--cases", nargs="+", required=True)
    ap.add_argument("--levels", nargs="+", default=["none", "130"], help="liver_hu_max values; none: no shift")
    ap.add_argument("--brighten", nargs="+", default=["0:0"], help="LIVER:TUMOUR HU added (0:0: as is)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--out", help="JSON report")
    args = ap.parse_args()

    from core.datasets.dataset import load_case
    from core.evaluation.metrics import dice, lesion_detection
    from core.inference.cascade import segment
    from core.inference.runners import prepare_runners
    from core.model.io import load_seg_model
    from core.synthetic.acquisition import shift_structures
    work = Path(args.work)
    liver = load_seg_model(work / "liver", "liver", lazy=True)
    arms = {}
    for level in args.levels:
        tm = load_seg_model(work / "tumor", "tumor", lazy=True)
        tm.pre = replace(tm.pre, liver_hu_max=None if level == "none" else float(level))
        arms[level] = (tm, prepare_runners(liver, tm, args.engine, None, None))
    rows: dict = {}
    for case_id in args.cases:
        case = load_case(args.dataset, case_id)
        hu, truth = np.asarray(case.hu), np.asarray(case.label)
        for spec in args.brighten:
            dl, dt = (float(v) for v in spec.split(":"))
            vol = SimpleNamespace(hu=shift_structures(hu, truth, {1: dl, 2: dt}), spacing=case.spacing)
            for level, (tm, runners) in arms.items():
                seg = segment(vol, liver, tm, runners=runners)
                det = lesion_detection(seg.label == 2, truth == 2, case.spacing)
                row = {"liver_dice": round(dice(seg.label > 0, truth > 0), 4),
                       "tumour_dice": round(dice(seg.label == 2, truth == 2), 4) if (truth == 2).any() else None,
                       "lesions_found": f"{det['hits']}/{det['true_lesions']}", "false_lesions": det["false_positives"],
                       "shift_hu": seg.info.get("tumor_hu_shift", 0.0)}
                rows.setdefault(case_id, {}).setdefault(spec, {})[level] = row
                print(f"{case_id:24s} +{spec:7s} liver_hu_max {level:5s} " + json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
