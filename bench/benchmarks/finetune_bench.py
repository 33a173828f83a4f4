"""Fine-tuning to a new scanner, measured: before/after on the new scanner, and forgetting.

A "new scanner" made from what we have: each real patient of 3D-IRCADb-01 (7 and 17) as a 5 mm,
arterial-like, noisy scan (``core.synthetic.acquisition``, variant "5 mm arterial noisy": the same
transforms as ``bench/benchmarks/real_quality.py``'s proxies). For a test patient T:

1. the base models are leave-one-out models trained without T (``--base WORK``: liver/, tumor/;
   ``liverseg train-default --exclude T``; their cards are checked);
2. they are fine-tuned (``core.training.finetune``, the app's defaults: L2-SP, learning rate 1e-4)
   on the other patient's new-scanner version. Fine-tuning holds one case out to choose the best
   epoch, and there is one other real CT only, so that patient's scan is split in two cases along z
   (upper and lower half); T is never seen;
3. the base and the fine-tuned cascades segment T's new-scanner version (the gain) and T's original
   CT (forgetting), per case, in 3D. With ``--l2sp 0`` as a second arm the same run measures what
   the pull towards the base weights buys.

    .venv/bin/python bench/benchmarks/finetune_bench.py --source ../shared/data --work /tmp/ftb \\
        --base /tmp/loo17 --test 3Dircadb1.17 --minutes 6 --arms 1e-3 0
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

NEW_SCANNER = "5 mm arterial noisy"
PATIENTS = ("3Dircadb1.17", "3Dircadb1.7")


def fmt(x):
    return f"{x:.3f}" if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def lab_dataset(ds: Path, patient: str, out: Path) -> list[str]:
    """``patient``'s new-scanner scan as two lab cases (upper / lower half along z)."""
    from core.datasets.dataset import list_cases, load_case, write_case
    from core.synthetic.acquisition import acquisition_variant
    if (out / "manifest.json").exists() and list_cases(out):
        return list_cases(out)
    v = acquisition_variant(load_case(ds, patient), NEW_SCANNER)
    half = v.hu.shape[0] // 2
    ids = []
    for name, sl in (("upper", slice(half, None)), ("lower", slice(0, half))):
        cid = f"{patient}-{name}"
        write_case(out, replace(v, case_id=cid, hu=v.hu[sl], label=v.label[sl],
                                anatomy=None if v.anatomy is None else v.anatomy[sl]))
        ids.append(cid)
    return ids


def score(case, liver_path, tumour_path, engine):
    from core.evaluation.evaluate import case_report
    from core.inference.cascade import segment
    from core.model.io import load_seg_model
    liver = load_seg_model(liver_path, "liver")
    tumour = load_seg_model(tumour_path, "tumor") if tumour_path else None
    r = case_report(segment(case, liver, tumour, engine=engine).label, case.label, case.spacing)
    return {"liver_dice": r["liver"]["dice"], "tumor_dice": r["tumor"]["dice"] if tumour else None,
            "lesions": f"{r['lesions']['hits']}/{r['lesions']['true_lesions']} (+{r['lesions']['false_positives']})"
            if tumour else "-"}


def fine_tune_arm(cfg, base_paths: dict) -> tuple[dict, float, dict]:
    """Fine-tune (resuming a run already in ``cfg.out``); returns (results, seconds, {stage: model
    path}), the base's path for a stage not fine-tuned."""
    from core.training.finetune import finetune
    t = time.perf_counter()
    results = finetune(cfg, resume=(Path(cfg.out) / cfg.stages[0] / "config.json").exists())
    seconds = time.perf_counter() - t
    return results, seconds, base_paths | {stage: r.model_path for stage, r in results.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, help="3D-IRCADb-01 as downloaded (e.g. ../shared/data)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--base", required=True, help="leave-one-out work folder (liver/, tumor/) trained without --test")
    ap.add_argument("--test", default="3Dircadb1.17", choices=PATIENTS)
    ap.add_argument("--stages", nargs="+", default=["liver", "tumor"], choices=("liver", "tumor"))
    ap.add_argument("--minutes", type=float, default=6.0, help="fine-tune budget, all stages")
    ap.add_argument("--arms", nargs="+", type=float, default=[1e-3, 0.0], help="L2-SP strengths to compare")
    ap.add_argument("--engine", default="keras")
    ap.add_argument("--out", help="JSON report")
    args = ap.parse_args()

    from core.datasets.dataset import load_case
    from core.datasets.ircadb import import_ircadb
    from core.synthetic.acquisition import acquisition_variant
    from core.training.finetune import FinetuneConfig, base_model

    work, base = Path(args.work), Path(args.base)
    ds = work / "dataset"
    import_ircadb(args.source, ds)
    for stage in args.stages:
        from core.model.card import read_card
        trained = set((read_card(base_model(str(base), stage)).get("data") or {}).get("train_patients", []))
        if args.test in trained:
            raise SystemExit(f"{base}/{stage} trained on {args.test}: not a leave-one-out base")
    other = next(p for p in PATIENTS if p != args.test)
    lab = work / f"lab-{other}"
    lab_dataset(ds, other, lab)
    test = load_case(ds, args.test)
    cases = {"new scanner": acquisition_variant(test, NEW_SCANNER), "original": test}
    tumour_base = str(base / "tumor" / "model.keras") if (base / "tumor" / "model.keras").is_file() else None
    base_paths = {"liver": str(base / "liver" / "model.keras"), "tumor": tumour_base}
    rows = {"base": {k: score(c, base_paths["liver"], base_paths["tumor"], args.engine) for k, c in cases.items()}}
    report = {"test": args.test, "lab": other, "new_scanner": NEW_SCANNER, "minutes": args.minutes, "arms": {}}
    for l2sp in args.arms:
        out = work / f"ft-{args.test}-l2sp{l2sp:g}"
        cfg = FinetuneConfig(dataset=str(lab), base=str(base), out=str(out), stages=tuple(args.stages),
                             minutes=args.minutes, l2sp=l2sp, export_onnx=False)
        results, seconds, paths = fine_tune_arm(cfg, base_paths)
        label = f"L2-SP {l2sp:g}"
        rows[label] = {k: score(c, paths["liver"], paths["tumor"], args.engine) for k, c in cases.items()}
        report["arms"][label] = {"seconds": round(seconds, 1), "epochs": {s: r.epochs_done for s, r in results.items()},
                                 "scores": rows[label]}
        print(f"{label}: fine-tuned in {seconds / 60:.1f} min ({args.minutes} min budget)", flush=True)
    report["base"] = rows["base"]
    print(f"\ntest {args.test}, fine-tuned on {other} ({NEW_SCANNER}, two halves), engine {args.engine}")
    print(f"{'models':12s} {'liver new':>10s} {'liver orig':>10s} {'tumour new':>10s} {'tumour orig':>11s}"
          "  lesions new")
    for label, r in rows.items():
        n, o = r["new scanner"], r["original"]
        print(f"{label:12s} {fmt(n['liver_dice']):>10s} {fmt(o['liver_dice']):>10s} {fmt(n['tumor_dice']):>10s} "
              f"{fmt(o['tumor_dice']):>11s}  {n['lesions']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, default=float))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
