"""Continue a recipe run's stage (``--stage``, default the tumour stage) for a few epochs with one
training option changed, beside a control that continues it unchanged: does the option help, beyond
the extra epochs? Or (``--scratch``) train the stage from scratch with the option.

The tumour stage misses tumours within about 20 HU of the liver (docs/MODELS.md). One option
against that is ``low_contrast`` (:mod:`core.synthetic.synth_ct`, :mod:`core.synthetic.lesion_synth`):
a share of the rendered tumours and synthetic lesions drawn 8-25 HU from the liver. Both runs start
from ``BASE/STAGE`` with the recipe's options for the stage (:data:`core.training.recipe.STAGE_OPTIONS`),
the same split and seed, a cosine learning rate from ``--lr``; each is resumable (``--resume``).

    # control, then the option (about 20 minutes each on the 2-core CPU for 10 epochs)
    .venv/bin/python bench/experiments/stage_finetune.py --base /work/train21/loo17/WORK --out /work/ft/ctrl \\
        --exclude 3Dircadb1.17
    .venv/bin/python bench/experiments/stage_finetune.py --base /work/train21/loo17/WORK --out /work/ft/low \\
        --exclude 3Dircadb1.17 --set low_contrast=0.3

``--scratch`` trains the stage from scratch instead (the recipe's 40 epochs and learning rate,
no ``--base`` weights; ``--base`` still gives the dataset): the confirmation of an option that helped,
or a change of the model itself (``--stage liver --scratch --set base_filters=12``).

Then score each ``OUT/tumor`` on the rendered validation patients and the held-out patient
(``bench/experiments/lesion_filter.py --tumor OUT/tumor``, ``--real 3Dircadb1.17``); an ``OUT/liver`` with
``bench/experiments/liver_errors.py --liver OUT/liver`` and ``--real 3Dircadb1.17``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def parse_set(items) -> tuple:
    out = []
    for item in items or []:
        key, _, value = item.partition("=")
        if not key or not value:
            raise SystemExit(f"--set wants OPTION=VALUE, got {item!r}")
        out.append((key, json.loads(value)))
    return tuple(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="a recipe work folder (dataset/, liver/, tumor/) to continue")
    ap.add_argument("--out", required=True, help="work folder to write (STAGE/)")
    ap.add_argument("--stage", choices=("liver", "tumor"), default="tumor")
    ap.add_argument("--exclude", nargs="*", default=[], help="patients the base run left out (kept out)")
    ap.add_argument("--scale", type=float, help="share of the recipe's 40 epochs (default 0.25: 10; --scratch: 1)")
    ap.add_argument("--lr", type=float, help="starting learning rate, cosine to 1e-5 (default 3e-4; --scratch: "
                                             "the recipe's)")
    ap.add_argument("--scratch", action="store_true", help="from scratch, not from --base's weights")
    ap.add_argument("--set", nargs="*", metavar="OPTION=VALUE", help="TrainConfig options (JSON values)")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    from core.cli.progress_bar import ProgressBar
    from core.training.recipe import RecipeConfig, train_default_models
    base = Path(args.base)
    scale = args.scale if args.scale is not None else (1.0 if args.scratch else 0.25)
    lr = args.lr if args.lr is not None else (None if args.scratch else 3e-4)
    cfg = RecipeConfig(out=args.out, dataset=str(base / "dataset"), exclude=tuple(args.exclude),
                       stages=(args.stage,), init_from=None if args.scratch else str(base), scale=scale,
                       overrides=((("learning_rate", lr),) if lr else ()) + parse_set(args.set))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = train_default_models(cfg, progress=ProgressBar(), resume=args.resume)[args.stage]
    print(f"{args.out}: {result.status}, best validation Dice {result.best_val_dice:.4f} at epoch "
          f"{result.best_epoch} of {result.epochs_done}, {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
