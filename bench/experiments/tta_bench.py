"""Test-time augmentation: does averaging a stage's probabilities over in-plane transforms help?

An inference-time gain is worth its network time only where measured. This measures them on a real
patient and its acquisition proxies (:data:`core.synthetic.acquisition.VARIANTS`), with models that
never trained on it (the leave-one-out pair of ``bench/benchmarks/real_quality.py``). For each transform set the
chosen stage(s) run once per transform on the normalised stack warped in-plane (zoom about the
centre, rotation, shift; bilinear, edges extended), each probability map is warped back, and the
maps are averaged before the threshold; everything else is the cascade as it ships (lesion rules,
margins). Each set costs its number of transforms in network time.

    .venv/bin/python bench/experiments/tta_bench.py --dataset WORK/dataset --models LOO17 --patient 3Dircadb1.17 \\
        --stages liver --sets none,scale,rot,shift,mix5
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

IDENTITY = (1.0, 0.0, (0.0, 0.0))
# (zoom, degrees, (rows, columns) shift in pixels of the model's input)
SETS = {
    "none": [IDENTITY],
    "scale": [IDENTITY, (0.9, 0.0, (0.0, 0.0)), (1.1, 0.0, (0.0, 0.0))],
    "rot": [IDENTITY, (1.0, -8.0, (0.0, 0.0)), (1.0, 8.0, (0.0, 0.0))],
    "shift": [IDENTITY, (1.0, 0.0, (4.0, 4.0)), (1.0, 0.0, (-4.0, -4.0))],
    "mix5": [IDENTITY, (0.92, -6.0, (0.0, 0.0)), (1.08, 6.0, (0.0, 0.0)), (1.0, 0.0, (4.0, -4.0)),
             (1.0, 0.0, (-4.0, 4.0))],
}


def warp(stack: np.ndarray, zoom: float, degrees: float, shift, inverse: bool = False) -> np.ndarray:
    """Warp every slice of a [Z, S, S] stack: content zoomed by ``zoom`` about the centre, rotated by
    ``degrees`` and moved by ``shift`` pixels; ``inverse`` undoes it (bilinear, edges extended)."""
    from scipy import ndimage
    c = np.full(2, (stack.shape[-1] - 1) / 2.0)
    a = np.deg2rad(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / zoom  # output -> input
    sh = np.asarray(shift, float)
    m = np.eye(3)
    off = np.zeros(3)
    if not inverse:  # input = rot (output - c - shift) + c
        m[1:, 1:] = rot
        off[1:] = c - rot @ (c + sh)
    else:  # output = rot^-1 (input - c) + c + shift
        inv = np.linalg.inv(rot)
        m[1:, 1:] = inv
        off[1:] = c - inv @ c + sh
    return ndimage.affine_transform(stack, m, offset=off, order=1, mode="nearest")


class Averaged:
    """A runner whose ``predict`` averages another runner's probabilities over ``transforms``."""

    def __init__(self, runner, transforms):
        self.runner, self.transforms = runner, transforms
        self.choice, self.engine_text, self.batch = runner.choice, runner.engine_text, runner.batch

    def predict(self, norm, zs, cancel, progress, stage):
        return averaged(self.runner.predict, self.transforms)(norm, zs, cancel, progress, stage)


def averaged(predict, transforms):
    """A runner's ``predict`` averaging its probabilities over ``transforms``."""
    from core.transforms.preprocess import SliceStack

    def run(norm, zs, cancel, progress, stage):
        total = None
        for zoom, deg, shift in transforms:
            if (zoom, deg, tuple(shift)) == (1.0, 0.0, (0.0, 0.0)):
                p = predict(norm, zs, cancel, progress, stage).astype(np.float32)
            else:
                plain = norm.data if isinstance(norm, SliceStack) else norm
                moved = warp(plain, zoom, deg, shift)
                moved = SliceStack(moved, norm.idx, norm.w) if isinstance(norm, SliceStack) else moved
                p = warp(predict(moved, zs, cancel, progress, stage).astype(np.float32), zoom, deg, shift, True)
            total = p if total is None else total + p
        return total / len(transforms)
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="an imported dataset holding the patient")
    ap.add_argument("--models", required=True, help="a work folder with liver/ and tumor/ (never trained on it)")
    ap.add_argument("--patient", default="3Dircadb1.17")
    ap.add_argument("--stages", default="liver", help="liver, tumor or liver,tumor")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--variants", help="comma-separated proxies (default: all of VARIANTS)")
    ap.add_argument("--engine", default="onnx")
    ap.add_argument("--json", help="write the per-variant figures here")
    args = ap.parse_args(argv)
    from core.datasets.dataset import load_case
    from core.evaluation.evaluate import case_report
    from core.inference.cascade import segment
    from core.inference.runners import prepare_runners
    from core.model.io import load_seg_model
    from core.synthetic.acquisition import VARIANTS, acquisition_variant

    liver = load_seg_model(str(Path(args.models) / "liver"), "liver")
    tumour = load_seg_model(str(Path(args.models) / "tumor"), "tumor")
    case = load_case(args.dataset, args.patient)
    stages, sets = args.stages.split(","), args.sets.split(",")
    fields = [{"tumor": "tumour"}.get(st, st) for st in stages]  # each stage's CascadeRunners field
    base = prepare_runners(liver, tumour, args.engine)
    rows: dict[str, list] = {}
    for variant in (args.variants.split(",") if args.variants else VARIANTS):
        vol = acquisition_variant(case, variant)
        line = []
        for name in sets:  # the sessions are opened once; each set wraps the stages it averages
            runners = replace(base, **{f: Averaged(getattr(base, f), SETS[name]) for f in fields})
            seg = segment(vol, liver, tumour, runners=runners)
            rep = case_report(seg.label, vol.label, vol.spacing)
            les = rep["lesions"]
            rows.setdefault(name, []).append({"variant": variant, "liver": rep["liver"]["dice"],
                                              "tumor": rep["tumor"]["dice"], "false": les["false_positives"],
                                              "found": les["hits"], "lesions": les["true_lesions"]})
            line.append(f"{name}: liver {rep['liver']['dice']:.4f} tumour {rep['tumor']['dice']:.3f} "
                        f"false {les['false_positives']} found {les['hits']}/{les['true_lesions']}")
        print(f"{variant:22s}", " | ".join(line), flush=True)
    for name, r in rows.items():
        print(f"{name:6s} mean liver {np.mean([x['liver'] for x in r]):.4f} "
              f"tumour {np.mean([x['tumor'] for x in r]):.4f} false lesions {sum(x['false'] for x in r)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
