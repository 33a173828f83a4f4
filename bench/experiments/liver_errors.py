"""Where does the liver stage go wrong? Its false and missed liver, in mL, by what truly lies there.

Heart above the dome, vena cava and stomach taken as liver call for 3D context (``bench/experiments/liver_bound.py``);
this measures which errors there are, and how large, so that such a remedy is judged against them. Each
volume is segmented by the liver stage as the cascade runs it (largest component, holes filled), then:

* false liver (predicted liver where the expert's has none), split by the structure the expert
  outlined there (:mod:`core.datasets.anatomy`: the vena cava is ``venous system``, unlabelled
  tissue ``body``), and by position: on slices above the expert's liver (``above``, the dome:
  heart, lung), below it (``below``) or within its z-range (``beside``);
* missed liver, split the same way: slices where the prediction has no liver at all
  (``slices missed``) and misses within slices the prediction reaches (``in-plane``); and what
  lies there (liver parenchyma, tumour, vessels inside the liver).

Volumes: the validation label maps 9 and 13 rendered whole (as ``bench/experiments/lesion_filter.py``), and
with ``--real`` a real CT patient and its acquisition proxies (the liver model must not have
trained on it to be a measurement; a model that did is named).

    .venv/bin/python bench/experiments/liver_errors.py --dataset WORK/dataset --seeds 2
    .venv/bin/python bench/experiments/liver_errors.py --dataset WORK/dataset --real 3Dircadb1.17 --liver LOO17/liver
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # lesion_filter: the rendered volumes


def liver_errors(pred: np.ndarray, truth_label: np.ndarray, anatomy, spacing) -> dict:
    """False and missed liver in mL: by structure (``anatomy`` codes, when given) and by position."""
    from core.datasets import anatomy as A
    ml = float(np.prod(spacing)) / 1000.0
    truth = truth_label >= 1
    zs = np.flatnonzero(truth.any(axis=(1, 2)))
    z0, z1 = (int(zs[0]), int(zs[-1])) if len(zs) else (0, -1)
    z = np.arange(pred.shape[0])[:, None, None]
    fp, fn = pred & ~truth, truth & ~pred
    out = {"dice": float(2 * (pred & truth).sum() / max(1, pred.sum() + truth.sum())),
           "truth_ml": truth.sum() * ml, "pred_ml": pred.sum() * ml,
           "false_ml": fp.sum() * ml, "missed_ml": fn.sum() * ml,
           "false_above_ml": (fp & (z > z1)).sum() * ml, "false_below_ml": (fp & (z < z0)).sum() * ml}
    out["false_beside_ml"] = out["false_ml"] - out["false_above_ml"] - out["false_below_ml"]
    has_pred = pred.any(axis=(1, 2))[:, None, None]
    out["missed_slices_ml"] = (fn & ~has_pred).sum() * ml
    out["missed_inplane_ml"] = out["missed_ml"] - out["missed_slices_ml"]
    if anatomy is not None:
        codes = np.asarray(anatomy)
        out["false_by"] = {A.NAMES[k]: round(float(n) * ml, 2)
                           for k, n in enumerate(np.bincount(codes[fp], minlength=A.N_CODES)) if n}
        out["missed_by"] = {A.NAMES[k]: round(float(n) * ml, 2)
                            for k, n in enumerate(np.bincount(codes[fn], minlength=A.N_CODES)) if n}
    return out


def show(name: str, r: dict, seconds: float) -> None:
    print(f"{name:44s} Dice {r['dice']:.3f}  false {r['false_ml']:6.1f} mL (above {r['false_above_ml']:5.1f}, "
          f"below {r['false_below_ml']:5.1f}, beside {r['false_beside_ml']:6.1f})  missed {r['missed_ml']:6.1f} mL "
          f"(slices {r['missed_slices_ml']:5.1f}, in-plane {r['missed_inplane_ml']:6.1f})  {seconds:.0f} s", flush=True)
    for key in ("false_by", "missed_by"):
        top = sorted(r.get(key, {}).items(), key=lambda kv: -kv[1])[:5]
        if top:
            print(f"    {key:9s} " + ", ".join(f"{k} {v:.1f}" for k, v in top), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="an imported 3D-IRCADb-01 dataset")
    ap.add_argument("--cases", nargs="+", default=["3Dircadb1.9", "3Dircadb1.13"], help="label maps to render")
    ap.add_argument("--seeds", type=int, default=2, help="volumes per case and phase")
    ap.add_argument("--liver", default=str(Path(__file__).resolve().parents[2] / "resources" / "models" /
                                           "ircadb-liver"), help="the liver model (default: the shipped one)")
    ap.add_argument("--real", metavar="PATIENT", help="score this real CT patient and its proxies instead")
    args = ap.parse_args()

    from core.datasets.dataset import load_case
    from core.inference.cascade import segment
    from core.model.io import load_seg_model
    model = load_seg_model(args.liver, "liver")
    scored = [args.real] if args.real else args.cases
    seen = set((model.meta.get("data") or {}).get("train_patients", [])) & set(scored)
    if seen:
        print(f"note: {args.liver} trained on {sorted(seen)}: not a held-out measurement there", flush=True)
    total = {}
    for name, vol, label, anatomy in volumes(args, load_case):
        t = time.perf_counter()
        seg = segment(vol, model, None)
        r = liver_errors(seg.label >= 1, label, anatomy, vol.spacing)
        show(name, r, time.perf_counter() - t)
        for k, v in r.items():
            if isinstance(v, float) and k != "dice":
                total[k] = total.get(k, 0.0) + v
    print("all volumes: " + ", ".join(f"{k} {v:.1f}" for k, v in total.items()), flush=True)


def volumes(args, load_case):
    """(name, volume with .hu and .spacing, expert label, anatomy codes or None) to score."""
    if args.real:
        from core.synthetic.acquisition import VARIANTS, acquisition_variant
        case = load_case(args.dataset, args.real)
        for name in VARIANTS:
            v = acquisition_variant(case, name)  # thick variants carry no anatomy
            yield f"{args.real} {name}", v, v.label, v.anatomy
        return
    from lesion_filter import rendered_volumes
    for v in rendered_volumes(args.dataset, args.cases, args.seeds):
        yield f"{v.case} {v.phase} seed {v.seed} {v.facts['kernel']}", v, v.label, v.anatomy


if __name__ == "__main__":
    main()
