"""Input pipeline speed: training slices/s of core.training.loader alone (no model).

Makes a phantom dataset (or uses --dataset), caches it, then times epochs of
augmented batches at the given size. Goal: >= 2,000 slices/s at 256 px.

    .venv/bin/python bench/benchmarks/pipeline_bench.py [--size 256] [--patients 4] [--batch 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    from core.datasets.dataset import Case, list_cases, write_case
    from core.synthetic.phantom import make_phantom
    from core.training.loader import SlicePipeline
    from core.transforms.preprocess import Preprocessing
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--patients", type=int, default=4)
    ap.add_argument("--slices", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--stage", default="liver")
    ap.add_argument("--dataset")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ds = args.dataset
        if ds is None:
            ds = tmp
            for s in range(args.patients):
                c = make_phantom(100 + s, args.slices, 512)
                write_case(ds, Case(f"p{s}", c.hu, c.label, c.spacing))
        t = time.perf_counter()
        pipe = SlicePipeline(ds, list_cases(ds), args.stage, Preprocessing(size=args.size), augment=True)
        cache_s = time.perf_counter() - t
        n, t = 0, time.perf_counter()
        for _ in range(3):
            for x, _y in pipe.epoch(args.batch):
                n += len(x)
        rate = n / (time.perf_counter() - t)
        print(f"cached {len(pipe)} slices of {args.patients} case(s) in {cache_s:.1f} s")
        print(f"training input pipeline at {args.size} px, batch {args.batch}, augmented: {rate:,.0f} slices/s")


if __name__ == "__main__":
    main()
