"""Organs joined to the liver by a thin bridge: the cascade with and without cutting them off.

The liver stage's largest component can hold, beside the liver, the right kidney, the duodenum or a
bowel loop touching it (HCC_006 portal-venous, held out: 245 mL of kidney and bowel joined to the
liver's tip). The cascade cuts them off by an opening by reconstruction
(:func:`core.transforms.bridges.cut_bridges`). Each named case of a dataset is segmented by the
whole cascade twice, ``cut_liver_bridges`` off and on, and scored per case in 3D against its labels:
liver and tumour Dice, lesions found, false lesions, the volume cut and the post-processing time.
Score only cases the models never trained on. ``--variants`` also scores each real CT case as other
acquisitions would show it (:data:`core.synthetic.acquisition.VARIANTS`; cases with their anatomy
masks only, i.e. 3D-IRCADb-01's).

    .venv/bin/python bench/experiments/liver_bridges.py --dataset WORK/dataset \\
        --models LO006-007 --cases HCC_006_19990806_s103 HCC_007_19980314_s4_acq3
    .venv/bin/python bench/experiments/liver_bridges.py --dataset WORK/dataset --models LO17 \\
        --cases 3Dircadb1.17 --variants
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help="a work folder with liver/ and tumor/ models")
    ap.add_argument("--dataset", required=True, help="dataset holding the cases to score")
    ap.add_argument("--cases", nargs="+", required=True)
    ap.add_argument("--variants", action="store_true", help="also every acquisition variant of each case")
    ap.add_argument("--engine", default="onnx")
    ap.add_argument("--out", help="JSON report")
    args = ap.parse_args()

    from core.datasets.dataset import load_case
    from core.evaluation.metrics import dice, lesion_detection
    from core.inference.cascade import segment
    from core.inference.runners import prepare_runners
    from core.model.io import load_seg_model
    from core.synthetic.acquisition import VARIANTS, acquisition_variant
    work = Path(args.models)
    liver = load_seg_model(work / "liver", "liver", lazy=True)
    tumour = load_seg_model(work / "tumor", "tumor", lazy=True)
    runners = prepare_runners(liver, tumour, args.engine, None, None)
    rows: dict = {}
    for case_id in args.cases:
        case = load_case(args.dataset, case_id)
        variants = args.variants and getattr(case, "anatomy", None) is not None  # phase variants need the anatomy
        volumes = [("", case)] + ([(v, acquisition_variant(case, v)) for v in VARIANTS if v != "original"]
                                  if variants else [])
        for variant, vol in volumes:
            truth = np.asarray(vol.label)
            name = f"{case_id} {variant}".strip()
            for cut in (False, True):
                seg = segment(vol, liver, tumour, runners=runners, cut_liver_bridges=cut)
                det = lesion_detection(seg.label == 2, truth == 2, vol.spacing)
                row = {"liver_dice": round(dice(seg.label > 0, truth > 0), 4),
                       "tumour_dice": round(dice(seg.label == 2, truth == 2), 4) if (truth == 2).any() else None,
                       "lesions_found": f"{det['hits']}/{det['true_lesions']}", "false_lesions": det["false_positives"],
                       "cut_ml": round(seg.info.get("liver_cut_ml", 0.0), 1),
                       "cut_s": round(seg.timings.get("liver_cut", 0.0), 3)}
                rows.setdefault(name, {})["cut" if cut else "whole"] = row
                print(f"{name:40s} {'cut  ' if cut else 'whole'} " + json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
