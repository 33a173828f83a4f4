"""The default-model recipe's training batches (no model): ms per sample, and a hash of the batches.

Builds each stage's training pipeline exactly as ``liverseg train-default`` does (recipe options,
the patients the recipe trains on; rendered label maps, thick slices, phases, synthetic lesions,
anatomical augmentation) and times the first epoch's batches, seeded as the trainer seeds them.
With ``--trees`` it runs the same in other source trees (e.g. a ``git worktree`` of an older
commit) one after the other, in rounds, so the figures are side by side; equal hashes mean the
trees build the same batches, bit for bit.

    .venv/bin/python bench/benchmarks/recipe_loader_bench.py --dataset WORK/dataset [--trees OLD .] [--batches 100]

``WORK/dataset`` is what ``liverseg train-default ../shared/data --out WORK`` imports (or
``core.datasets.ircadb.import_ircadb(SOURCE, FOLDER)``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ONE = r"""
import hashlib, json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from core.training.loader import SlicePipeline
from core.training.recipe import STAGE_OPTIONS, RecipeConfig, split_for
from core.training.trainer import TrainConfig
ds, stage, nb = sys.argv[2], sys.argv[3], int(sys.argv[4])
train_ids, val_ids, _ = split_for(__import__("pathlib").Path(ds), RecipeConfig(out=ds))
cfg = TrainConfig(dataset=ds, out=ds, stage=stage, train_cases=train_ids, val_cases=val_ids, **STAGE_OPTIONS[stage])
share = cfg.synth_lesions if stage == "tumor" else cfg.liver_lesions
pipe = SlicePipeline(ds, train_ids, stage, cfg.preprocessing(), cfg.fraction, cfg.augment, cfg.seed,
                     synth_lesions=share, geometry=cfg.geometry, thick_slices=cfg.thick_slices, phases=cfg.phases)
order = pipe.epoch_order(np.random.default_rng([cfg.seed, 0]), cfg.tumour_positive_share if stage == "tumor" else 0.0,
                         cfg.real_share, nb * cfg.batch_size)
h, t = hashlib.sha256(), time.perf_counter()
for i in range(nb):
    x, y = pipe.batch(order[i * cfg.batch_size:(i + 1) * cfg.batch_size], np.random.default_rng([cfg.seed, 0, i]))
    h.update(x.tobytes()); h.update(y.tobytes())
dt = time.perf_counter() - t
print(json.dumps({"ms_per_sample": dt / (nb * cfg.batch_size) * 1000, "hash": h.hexdigest()[:16]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--trees", nargs="+", default=[str(Path(__file__).resolve().parents[2])])
    ap.add_argument("--stages", nargs="+", default=["liver", "tumor"])
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    res: dict = {}
    for _ in range(args.rounds):
        for stage in args.stages:
            for tree in args.trees:
                p = subprocess.run([sys.executable, "-c", ONE, str(Path(tree).resolve()), args.dataset, stage,
                                    str(args.batches)], capture_output=True, text=True, check=True)
                r = json.loads(p.stdout.strip().splitlines()[-1])
                res.setdefault((stage, tree), []).append(r)
                print(f"{stage:5s} {tree}: {r['ms_per_sample']:.2f} ms/sample, batches {r['hash']}", flush=True)
    base = args.trees[0]
    for stage in args.stages:
        ref = min(r["ms_per_sample"] for r in res[(stage, base)])
        for tree in args.trees:
            best = min(r["ms_per_sample"] for r in res[(stage, tree)])
            same = {r["hash"] for r in res[(stage, tree)]} == {r["hash"] for r in res[(stage, base)]}
            print(f"{stage}: {tree}: best {best:.2f} ms/sample, {best / ref:.2f}x the time of {base}, "
                  f"{'same batches' if same else 'DIFFERENT batches'}")


if __name__ == "__main__":
    main()
