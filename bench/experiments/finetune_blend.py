"""How much of a fine-tune to keep: its weights blended with its base's, scored per case.

A fine-tuned stage (e.g. an arm of ``bench/benchmarks/finetune_hospital.py``, trained with blend 1) and the
model it started from are blended, ``base + a * (fine-tuned - base)`` for each ``a`` of ``--blends``
(:func:`core.training.blend.blend_weights`), and each blend segments the named cases of a dataset
(that stage blended, the other stage the base's), scored in 3D per case: a 0 is the base, a 1 the
fine-tune itself. Cases the fine-tune never saw measure its gain (a lab's next patient) and what it
forgot (a patient of the base's own data).

    .venv/bin/python bench/experiments/finetune_blend.py --base BASE_WORK --finetuned FT_RUN \\
        --dataset RUN/dataset --cases HCC_015_19981101_s4 HCC_015_19981101_s103 3Dircadb1.17 \\
        --blends 0 0.5 0.7 0.8 0.9 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.benchmarks.finetune_bench import fmt, score  # noqa: E402 (after the path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the base work folder (liver/, tumor/)")
    ap.add_argument("--finetuned", required=True, help="the fine-tune's folder (STAGE/ inside)")
    ap.add_argument("--stage", default="liver", choices=("liver", "tumor"))
    ap.add_argument("--dataset", required=True, help="dataset holding the cases to score")
    ap.add_argument("--cases", nargs="+", required=True)
    ap.add_argument("--blends", nargs="+", type=float, default=[0.0, 0.5, 0.7, 0.8, 0.9, 1.0])
    ap.add_argument("--engine", default="keras")
    ap.add_argument("--out", help="JSON report")
    args = ap.parse_args()

    from core.datasets.dataset import load_case
    from core.model.io import load_model
    from core.training.blend import blend_weights
    base, ft_dir = Path(args.base), Path(args.finetuned) / args.stage
    start = load_model(base / args.stage / "model.keras", compile=False).get_weights()
    model = load_model(ft_dir / "model.keras", compile=False)
    tuned = model.get_weights()
    cases = {c: load_case(args.dataset, c) for c in args.cases}
    other = "tumor" if args.stage == "liver" else "liver"
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for a in args.blends:
            d = Path(tmp) / f"blend{a}"
            d.mkdir()
            model.set_weights(blend_weights(start, tuned, a))
            model.save(d / "model.keras")
            shutil.copy(ft_dir / "model.json", d / "model.json")
            paths = {args.stage: d, other: base / other}
            rows[str(a)] = {c: score(case, paths["liver"], paths["tumor"], args.engine) for c, case in cases.items()}
            print(f"blend {a:4.2f}  " + "  ".join(f"{c} {fmt(r['liver_dice'])}/{fmt(r['tumor_dice'])} {r['lesions']}"
                                                  for c, r in rows[str(a)].items()), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"base": str(base), "finetuned": str(ft_dir), "stage": args.stage,
                                              "engine": args.engine, "scores": rows}, indent=1))


if __name__ == "__main__":
    main()
