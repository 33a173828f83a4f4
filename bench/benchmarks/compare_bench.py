"""Follow-up comparison speed: compare_studies on two phantom studies the size of patient 17.

The baseline is a phantom of 512 x 512 x 120 voxels with four lesions drawn into its liver; the
follow-up is the same anatomy moved (7 mm, 4 degrees about z) with the lesions changed (one shrunk,
one grown, one gone, one new), as the tests build them (tests/core/followup/pairs.py). Segmentation is
not timed: the labels are the truth. Timed: compare_studies (patient check, phases, lesion
measurements, registration, matching, RECIST 1.1 and mRECIST); the goal is <= 5 s on 2 cores.
Also printed: the registration's share and its error in the liver against the known transform.

    .venv/bin/python bench/benchmarks/compare_bench.py [--repeat 3] [--size 512] [--slices 120]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--slices", type=int, default=120)
    args = ap.parse_args()
    from core.followup.compare import compare_studies
    from tests.core.followup.pairs import Lesion, make_pair

    t = time.perf_counter()
    lesions = [Lesion("shrunk", (15, 11, 10), (9, 6.6, 6)), Lesion("grown", (8, 6, 6), (12, 9, 8)),
               Lesion("gone", (7, 5, 5), None), Lesion("new", None, (7, 6, 6))]
    pair = make_pair(lesions, seed=3, slices=args.slices, size=args.size)
    b, f = pair.baseline, pair.followup
    print(f"two studies of {' x '.join(map(str, b.hu.shape))} voxels ({b.spacing[1]:.2f} x {b.spacing[0]:.2f} mm) "
          f"made in {time.perf_counter() - t:.1f} s")
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        c = compare_studies(b, f)
        times.append(time.perf_counter() - t)
    pts = b.grid.to_lps(np.argwhere(b.label > 0)[::97])
    truth = pts @ pair.matrix[:3, :3].T + pair.matrix[:3, 3]
    err = np.linalg.norm(c.registration.to_followup(pts) - truth, axis=1)
    statuses = sorted(m.status for m in c.matches)
    print(f"compare_studies: median {np.median(times):.2f} s (min {min(times):.2f}, {args.repeat} runs); "
          f"registration {c.registration.seconds:.2f} s ({c.registration.kind})")
    print(f"registration error in the liver: mean {err.mean():.2f} mm, max {err.max():.2f} mm")
    print(f"matches {statuses}; RECIST 1.1 {c.recist.category}; mRECIST {c.mrecist.category}")
    print(f"seconds {np.median(times):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
