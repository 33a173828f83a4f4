"""Accuracy on real CT, leave one patient out: the models never saw the patient they are scored on.

Protocol: for each real CT patient P of 3D-IRCADb-01 at hand (17 and 7), the
default-model recipe (``core.recipe``) trains both stages without P (neither its CT nor its
label map), then the cascade segments P's CT as a user's study (``core.inference.cascade.segment``,
the default engine) and is scored against P's expert masks per case, in 3D: Dice, ASSD,
RVD, lesion recall and false-positive lesions. No patient is ever scored by a model that
trained on it. The shipped models (trained on every patient) are not scored here: there is
no real patient left to score them on.

Acquisition proxies: each held-out patient is also scored as other scanners would
show it (``core.synthetic.acquisition.VARIANTS``: 2.5 / 5 mm slices, arterial- and unenhanced-like phases,
noise, and a 5 mm arterial noisy scan), built at run time from its own CT and expert masks.

    # train the leave-one-out models here (CPU, about 2 hours each) and score them
    .venv/bin/python bench/benchmarks/real_quality.py --source ../shared/data --work /tmp/loo --train
    # or score leave-one-out runs trained elsewhere (bench/recipes/real_gpu.py: loo17/, loo7/)
    .venv/bin/python bench/benchmarks/real_quality.py --source ../shared/data --work /tmp/loo --runs RUNS
    # several model sets side by side, one patient, every variant (LABEL=WORK holds liver/, tumor/)
    .venv/bin/python bench/benchmarks/real_quality.py --source ../shared/data --work /tmp/loo \\
        --models before=/tmp/loo/base17 after=/tmp/loo/new17 --patients 3Dircadb1.17
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

HELD_OUT = {"3Dircadb1.17": "loo17", "3Dircadb1.7": "loo7"}


def fmt(x, p=3):
    return f"{x:.{p}f}" if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def load_pair(work: Path, patient: str, liver_only: bool):
    """The (liver, tumour) models of a leave-one-out work folder; refuses any trained on ``patient``."""
    from core.model.io import load_seg_model
    liver_dir, tumour_dir = work / "liver", work / "tumor"
    if not (liver_dir / "model.keras").is_file():
        return None, None
    liver = load_seg_model(liver_dir, "liver")
    tumour = (load_seg_model(tumour_dir, "tumor")
              if not liver_only and (tumour_dir / "model.keras").is_file() else None)
    for m in (liver, tumour):
        trained = set((m.meta.get("data") or {}).get("train_patients", [])) if m else set()
        if patient in trained:
            raise SystemExit(f"{m.path} trained on {patient}: refusing to score it there")
    return liver, tumour


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, help="3D-IRCADb-01 as downloaded (e.g. ../shared/data)")
    ap.add_argument("--work", required=True, help="work folder (dataset, leave-one-out runs)")
    ap.add_argument("--runs", help="folder holding loo17/ and loo7/ run pairs trained elsewhere")
    ap.add_argument("--models", nargs="+", metavar="LABEL=WORK",
                    help="model sets to compare side by side (each WORK holds liver/ and tumor/)")
    ap.add_argument("--patients", nargs="+", default=list(HELD_OUT), help="held-out patients to score")
    ap.add_argument("--variants", nargs="+", help="acquisition variants (default: all of "
                                                  "core.synthetic.acquisition.VARIANTS)")
    ap.add_argument("--liver-only", action="store_true", help="score the liver stage only")
    ap.add_argument("--train", action="store_true", help="train the leave-one-out models here first")
    ap.add_argument("--scale", type=float, default=1.0, help="recipe epochs scale (with --train)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--out", help="JSON report")
    args = ap.parse_args()

    from core.datasets.dataset import load_case
    from core.datasets.ircadb import import_ircadb
    from core.evaluation.evaluate import case_report
    from core.inference.cascade import segment
    from core.synthetic.acquisition import VARIANTS, acquisition_variant
    from core.training.recipe import RecipeConfig, train_default_models

    work = Path(args.work)
    ds = work / "dataset"
    import_ircadb(args.source, ds)
    runs = Path(args.runs) if args.runs else work
    variants = args.variants or list(VARIANTS)
    report = {"protocol": "leave one patient out; per case, 3D; models never trained on the scored patient",
              "engine": args.engine, "variants": variants, "cases": {}}
    rows = []
    for patient in args.patients:
        name = HELD_OUT.get(patient, "loo" + patient.split(".")[-1])
        if args.train:
            t = time.perf_counter()
            train_default_models(RecipeConfig(out=str(runs / name), dataset=str(ds), exclude=(patient,),
                                              scale=args.scale), resume=True)
            print(f"{name}: trained in {(time.perf_counter() - t) / 60:.1f} min", flush=True)
        sets = dict(m.split("=", 1) for m in args.models) if args.models else {name: str(runs / name)}
        models = {label: load_pair(Path(w), patient, args.liver_only) for label, w in sets.items()}
        case = load_case(ds, patient)
        for variant in variants:
            v = acquisition_variant(case, variant)
            for label, (liver, tumour) in models.items():
                if liver is None:
                    print(f"{label}: no liver model; skipped", flush=True)
                    continue
                seg = segment(v, liver, tumour, engine=args.engine)
                r = case_report(seg.label, v.label, v.spacing)
                r["seconds"] = seg.timings.get("total", 0.0)
                r["engines"] = seg.info.get("engines")
                report["cases"].setdefault(patient, {}).setdefault(variant, {})[label] = r
                rows.append((patient, variant, label, r, tumour is not None))
                print(f"{patient} {variant:20s} {label:10s} liver {fmt(r['liver']['dice'])}", flush=True)
    print(f"\n{'patient':13s} {'variant':20s} {'models':10s} {'liver Dice':>10s} {'ASSD mm':>8s} {'RVD':>7s} "
          f"{'tumour Dice':>11s} {'lesions found':>13s} {'false lesions':>13s} {'seconds':>8s}")
    for patient, variant, label, r, has_tumour in rows:
        lv, tu, le = r["liver"], r["tumor"], r["lesions"]
        tumour_dice = (fmt(tu["dice"]) if le["true_lesions"] else "- (none)") if has_tumour else "-"
        found = f"{le['hits']:>6d} / {le['true_lesions']:<4d}" if has_tumour else f"{'-':>13s}"
        false = f"{le['false_positives']:>13d}" if has_tumour else f"{'-':>13s}"
        print(f"{patient:13s} {variant:20s} {label:10s} {fmt(lv['dice']):>10s} {fmt(lv['assd_mm'], 2):>8s} "
              f"{fmt(lv['rvd']):>7s} {tumour_dice:>11s} {found} {false} {r['seconds']:8.1f}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, default=float))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
