"""Accuracy on real CT, leave one patient out: the models never saw the patient they are scored on.

Protocol (issue 13): for each real CT patient P of 3D-IRCADb-01 at hand (17 and 7), the
default-model recipe (``core.recipe``) trains both stages without P (neither its CT nor its
label map), then the cascade segments P's CT as a user's study (``core.inference.segment``,
the default engine) and is scored against P's expert masks per case, in 3D: Dice, ASSD,
RVD, lesion recall and false-positive lesions. No patient is ever scored by a model that
trained on it. The shipped models (trained on every patient) are not scored here: there is
no real patient left to score them on.

    # train the leave-one-out models here (CPU, about 2 hours each) and score them
    .venv/bin/python bench/real_quality.py --source ../shared/data --work /tmp/loo --train
    # or score leave-one-out runs trained elsewhere (bench/real_gpu.py: loo17/, loo7/)
    .venv/bin/python bench/real_quality.py --source ../shared/data --work /tmp/loo --runs RUNS
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HELD_OUT = {"3Dircadb1.17": "loo17", "3Dircadb1.7": "loo7"}


def fmt(x, p=3):
    return f"{x:.{p}f}" if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, help="3D-IRCADb-01 as downloaded (e.g. ../shared/data)")
    ap.add_argument("--work", required=True, help="work folder (dataset, leave-one-out runs)")
    ap.add_argument("--runs", help="folder holding loo17/ and loo7/ run pairs trained elsewhere")
    ap.add_argument("--train", action="store_true", help="train the leave-one-out models here first")
    ap.add_argument("--scale", type=float, default=1.0, help="recipe epochs scale (with --train)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--out", help="JSON report")
    args = ap.parse_args()

    from core.evaluation.evaluate import evaluate_dataset
    from core.datasets.ircadb import import_ircadb
    from core.model.io import load_seg_model
    from core.training.recipe import RecipeConfig, train_default_models

    work = Path(args.work)
    ds = work / "dataset"
    import_ircadb(args.source, ds)
    runs = Path(args.runs) if args.runs else work
    report = {"protocol": "leave one patient out; per case, 3D; models never trained on the scored patient",
              "engine": args.engine, "cases": {}}
    for patient, name in HELD_OUT.items():
        if args.train:
            t = time.perf_counter()
            train_default_models(RecipeConfig(out=str(runs / name), dataset=str(ds), exclude=(patient,),
                                              scale=args.scale), resume=True)
            print(f"{name}: trained in {(time.perf_counter() - t) / 60:.1f} min", flush=True)
        liver_dir, tumor_dir = runs / name / "liver", runs / name / "tumor"
        if not (liver_dir / "model.keras").is_file():
            print(f"{name}: no model in {liver_dir}; skipped", flush=True)
            continue
        liver = load_seg_model(liver_dir, "liver")
        tumor = load_seg_model(tumor_dir, "tumor") if (tumor_dir / "model.keras").is_file() else None
        for m in (liver, tumor):
            trained = set((m.meta.get("data") or {}).get("train_patients", [])) if m else set()
            if patient in trained:
                raise SystemExit(f"{m.path} trained on {patient}: refusing to score it there")
        res = evaluate_dataset(ds, liver, tumor, [patient], engine=args.engine)
        r = res["cases"][patient]
        r["models"] = {"liver": str(liver_dir), "tumor": str(tumor_dir) if tumor else None}
        report["cases"][patient] = r
    print(f"\n{'held-out patient':18s} {'liver Dice':>10s} {'ASSD mm':>8s} {'RVD':>7s} {'tumour Dice':>11s} "
          f"{'ASSD mm':>8s} {'lesions found':>13s} {'false lesions':>13s} {'seconds':>8s}")
    for patient, r in report["cases"].items():
        lv, tu, le = r["liver"], r["tumor"], r["lesions"]
        tumour_dice = fmt(tu["dice"]) if le["true_lesions"] else "- (none)"
        print(f"{patient:18s} {fmt(lv['dice']):>10s} {fmt(lv['assd_mm'], 2):>8s} {fmt(lv['rvd']):>7s} "
              f"{tumour_dice:>11s} {fmt(tu['assd_mm'], 2) if le['true_lesions'] else '-':>8s} "
              f"{le['hits']:>6d} / {le['true_lesions']:<4d} {le['false_positives']:>13d} {r['seconds']:8.1f}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, default=float))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
