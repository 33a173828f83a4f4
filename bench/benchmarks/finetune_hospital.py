"""Fine-tuning on one hospital's cases: its next patient before and after, and what the defaults forget.

A lab's proxy built from HCC-TACE-Seg (one hospital; silver labels from
``resources/training-labels/hcc-tace-seg``, never expert truth):

1. the lab corrected one study of each of three patients (:data:`LAB_CHOICE` of every patient but
   the next one; with HCC_015 next: portal-venous, arterial, portal-venous) and fine-tunes the
   models it has (``--base``, e.g. the 2026-12-03 defaults, which never saw HCC-TACE-Seg) on them,
   as ``liverseg finetune`` does: one case held out to choose the epoch and the threshold, the same
   time budget for every arm;
2. its next patient (``--next``; HCC_015 by default, its arterial and portal-venous series; HCC_007,
   its six series, unenhanced 10 mm included), in no lab case, is segmented by the base and by each
   arm's fine-tuned cascade and scored per series, in 3D, against its silver labels: the gain;
3. patient 17 of 3D-IRCADb-01 (expert labels, another hospital, its original CT) is scored the same
   way: what the fine-tune kept. The shipped defaults trained on patient 17, so for them this row
   measures forgetting, not accuracy on an unseen patient.

Each arm is a set of :class:`core.training.finetune.FinetuneConfig` options (:data:`ARMS`).

    .venv/bin/python bench/benchmarks/finetune_hospital.py --dataset RUN/dataset --work /tmp/fth \\
        --base resources/models --minutes 5 --arms l2sp frozen-norm

``--dataset`` is a liverseg dataset that holds the HCC-TACE-Seg series and 3Dircadb1.17 as CT cases
(``liverseg train-default ... --hcc ...`` writes one into its ``--out`` folder, ``dataset/``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.benchmarks.finetune_bench import fine_tune_arm, fmt, score  # noqa: E402 (after the path)

# The one corrected series each patient brings to the lab set (two portal-venous, two arterial), and
# each patient's series scored when it is the next one (every series with a silver liver label).
LAB_CHOICE = {"HCC_006": "HCC_006_19990806_s103", "HCC_007": "HCC_007_19971227_s4_acq2",
              "HCC_009": "HCC_009_19980215_s103", "HCC_015": "HCC_015_19981101_s4"}
PATIENT_SERIES = {
    "HCC_006": ("HCC_006_19990806_s103",),
    "HCC_007": ("HCC_007_19971227_s4_acq2", "HCC_007_19971227_s4_acq3", "HCC_007_19980314_s4_acq1",
                "HCC_007_19980314_s4_acq3", "HCC_007_19971227_s2", "HCC_007_19980314_s2"),
    "HCC_009": ("HCC_009_19980215_s103", "HCC_009_19980215_s2"),
    "HCC_015": ("HCC_015_19981101_s4", "HCC_015_19981101_s103"),
}


def rotation(next_patient: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The lab's series (one of each other patient) and the next patient's series."""
    if next_patient not in PATIENT_SERIES:
        raise SystemExit(f"--next: {next_patient!r} is none of {', '.join(PATIENT_SERIES)}")
    lab = tuple(s for p, s in LAB_CHOICE.items() if p != next_patient)
    return lab, PATIENT_SERIES[next_patient]


LAB_SERIES, NEXT_SERIES = rotation("HCC_015")  # the first proxy measured (2026-12-07)
KEPT = ("3Dircadb1.17",)
ARMS: dict[str, dict] = {
    # the product's defaults (L2-SP 1e-3, learning rate 1e-4; a blend since 2026-12-07, 0.7 now, and for
    # the liver stage the recipe's synthetic lesions since the seventh session; earlier runs lacked them)
    "l2sp": {},
    "l2sp-unblended": {"blend": 1.0},
    "no-lesions-unblended": {"liver_lesions": 0.0, "blend": 1.0},  # the fine-tune before 2026-12-07
    "plain": {"l2sp": 0.0},
    "frozen-norm": {"freeze_norm": True},
    "frozen-norm-strong-l2sp": {"freeze_norm": True, "l2sp": 1e-2},
    "frozen-norm-lr3e-5": {"freeze_norm": True, "learning_rate": 3e-5},
    "lesions": {"liver_lesions": 0.3},  # the recipe's lesions, explicitly (the default since they were measured)
    "lesions-acquisition": {"liver_lesions": 0.3, "acquisition": True},  # and its thick slices and phases
}


def lab_dataset(source: Path, out: Path, series: tuple[str, ...] = LAB_SERIES) -> list[str]:
    """The lab's cases (``series``) copied from ``source`` into a dataset of their own."""
    from core.datasets.dataset import list_cases, load_case, write_case
    have = set(list_cases(out)) if (out / "manifest.json").is_file() else set()
    if have - set(series):
        raise SystemExit(f"{out} holds another lab set ({', '.join(sorted(have))}): use another --work")
    for name in series:
        if name not in have:
            write_case(out, load_case(source, name))
    return list_cases(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="dataset with the HCC-TACE-Seg series and 3Dircadb1.17")
    ap.add_argument("--work", required=True, help="scratch folder: the lab dataset and each arm's fine-tune")
    ap.add_argument("--base", default="default", help="'default' (this installation's) or a run folder")
    ap.add_argument("--stages", nargs="+", default=["liver"], choices=("liver", "tumor"))
    ap.add_argument("--minutes", type=float, default=5.0, help="fine-tune budget per arm, all stages")
    ap.add_argument("--arms", nargs="+", default=["l2sp", "frozen-norm"], choices=tuple(ARMS))
    ap.add_argument("--engine", default="keras")
    ap.add_argument("--out", help="JSON report (written after every arm)")
    ap.add_argument("--next", default="HCC_015", choices=tuple(PATIENT_SERIES),
                    help="the next patient, scored; the lab set is one series of each other patient")
    args = ap.parse_args()
    lab_series, next_series = rotation(args.next)

    from core.datasets.dataset import load_case
    from core.training.finetune import FinetuneConfig, base_model

    source, work = Path(args.dataset), Path(args.work)
    lab = work / "lab"
    lab_dataset(source, lab, lab_series)
    base_paths = {s: str(base_model(args.base, s) / "model.keras") for s in ("liver", "tumor")}
    cases = {name: load_case(source, name) for name in next_series + KEPT}
    report: dict = {"lab": list(lab_series), "next": list(next_series), "kept": list(KEPT), "base": args.base,
                    "minutes": args.minutes, "stages": args.stages, "engine": args.engine, "arms": {}}

    def save():
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2, default=float))

    t = time.perf_counter()
    report["base_scores"] = {k: score(c, base_paths["liver"], base_paths["tumor"], args.engine)
                             for k, c in cases.items()}
    print(f"base scored in {time.perf_counter() - t:.0f} s", flush=True)
    save()
    for arm in args.arms:
        out = work / f"ft-{arm}"
        cfg = FinetuneConfig(dataset=str(lab), base=args.base, out=str(out), stages=tuple(args.stages),
                             minutes=args.minutes, export_onnx=False, **ARMS[arm])
        results, seconds, paths = fine_tune_arm(cfg, base_paths)
        report["arms"][arm] = {"options": ARMS[arm], "seconds": round(seconds, 1),
                               "epochs": {s: r.epochs_done for s, r in results.items()},
                               "best_val_dice": {s: r.best_val_dice for s, r in results.items()},
                               "scores": {k: score(c, paths["liver"], paths["tumor"], args.engine)
                                          for k, c in cases.items()}}
        print(f"{arm}: fine-tuned in {seconds / 60:.1f} min", flush=True)
        save()
    names = next_series + KEPT
    print(f"\nliver Dice, fine-tuned ({'/'.join(args.stages)}, {args.minutes} min) on {', '.join(lab_series)}")
    print(f"{'models':26s} " + " ".join(f"{n[:22]:>22s}" for n in names))
    rows = {"base": report["base_scores"]} | {a: v["scores"] for a, v in report["arms"].items()}
    for label, sc in rows.items():
        print(f"{label:26s} " + " ".join(f"{fmt(sc[n]['liver_dice']):>22s}" for n in names))
    if args.out:
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
