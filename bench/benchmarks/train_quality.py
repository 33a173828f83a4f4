"""Segmentation quality of the default recipe, trained on this CPU within a time budget.

Trains the liver and the tumour ResUNets on 8 phantom patients (seed A) at 128 px
with the project defaults, then segments 4 phantom patients of another seed with
the cascade and reports per-case 3D Dice. Goal: mean liver Dice >= 0.95 and mean
tumour Dice >= 0.70 (over test cases that have tumours), training within 15 minutes.

    .venv/bin/python bench/benchmarks/train_quality.py [--minutes 15] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402


def main() -> None:
    from core.datasets.dataset import Case, write_case
    from core.evaluation import metrics
    from core.inference.cascade import segment
    from core.model.io import load_seg_model
    from core.synthetic.phantom import make_phantom
    from core.training.threshold import calibrate_threshold
    from core.training.trainer import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget, both stages together")
    ap.add_argument("--train-seed", type=int, default=1000)
    ap.add_argument("--test-seed", type=int, default=5000)
    ap.add_argument("--patients", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--filters", type=int, default=16, help="base filters (16: the notebooks' 16-256)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--synth-lesions", type=float, default=TrainConfig.synth_lesions,
                    help="tumour stage: share of samples given synthetic lesions (0: off)")
    ap.add_argument("--out", help="keep the runs here (default: a temp folder)")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="liverseg-quality-"))
    ds = root / "dataset"
    t = time.perf_counter()
    for i in range(args.patients):
        c = make_phantom(args.train_seed + i, 64, 256)
        write_case(ds, Case(f"a{i}", c.hu, c.label, c.spacing))
    print(f"{args.patients} training phantoms in {time.perf_counter() - t:.0f} s", flush=True)

    budget = args.minutes * 60
    runs = {}
    t_train = time.perf_counter()
    for stage, share, epochs in (("liver", 0.4, 40), ("tumor", 0.6, 60)):
        deadline = time.perf_counter() + budget * share - 20  # 20 s kept for the threshold search
        from core.runtime.jobs import CancelToken
        tok = CancelToken()

        def progress(ev, tok=tok, deadline=deadline, stage=stage):
            if time.perf_counter() > deadline:
                tok.cancel()
            if getattr(ev, "record", None):
                r = ev.record
                print(f"  {stage} epoch {r['epoch']}: loss {r['loss']:.3f} val_dice {r.get('val_dice', 0):.3f} "
                      f"({r['seconds']:.0f} s)", flush=True)
        cfg = TrainConfig(dataset=str(ds), out=str(root / stage), stage=stage, epochs=epochs,
                          batch_size=args.batch_size, image_size=args.size, base_filters=args.filters,
                          learning_rate=2e-3, reduce_lr=4, seed=0,
                          export_onnx=False, synth_lesions=args.synth_lesions)
        r = train(cfg, progress=progress, cancel=tok)
        runs[stage] = r
        # Stopped by the deadline (a cancel), so train() left the threshold alone: choose it here.
        search = calibrate_threshold(root / stage) if r.status == "cancelled" else {}
        thr = search.get("threshold", json.loads((root / stage / "model.json").read_text())["threshold"])
        print(f"{stage}: {r.status} after {r.epochs_done} epochs, best val Dice {r.best_val_dice:.3f}, "
              f"threshold {thr:.2f}", flush=True)
    train_min = (time.perf_counter() - t_train) / 60

    liver_m = load_seg_model(root / "liver", "liver")
    tumour_m = load_seg_model(root / "tumor", "tumor")
    rows = []
    for i in range(4):
        c = make_phantom(args.test_seed + i, 64, 256)
        s = segment(c, liver_m, tumour_m)
        liver_d = metrics.dice(s.label > 0, c.label > 0)
        has_t = bool((c.label == 2).any())
        tumour_d = metrics.dice(s.label == 2, c.label == 2) if has_t else float("nan")
        rows.append((i, liver_d, tumour_d, int((c.label == 2).sum()), s.timings["total"]))
        print(f"test case {i}: liver Dice {liver_d:.3f}  tumour Dice {tumour_d:.3f}  "
              f"(tumour voxels {rows[-1][3]}, {rows[-1][4]:.1f} s)", flush=True)
    liver_mean = float(np.mean([r[1] for r in rows]))
    tumour_vals = [r[2] for r in rows if not np.isnan(r[2])]
    tumour_mean = float(np.mean(tumour_vals)) if tumour_vals else float("nan")
    summary = {"train_minutes": round(train_min, 1), "liver_dice_mean": liver_mean, "tumor_dice_mean": tumour_mean,
               "cases": rows, "size": args.size, "filters": args.filters, "batch_size": args.batch_size,
               "synth_lesions": args.synth_lesions}
    (root / "quality.json").write_text(json.dumps(summary, indent=2))
    print(f"\ntraining {train_min:.1f} min; mean per-case liver Dice {liver_mean:.3f} (goal 0.95), "
          f"tumour Dice {tumour_mean:.3f} over {len(tumour_vals)} case(s) with tumours (goal 0.70)")


if __name__ == "__main__":
    main()
