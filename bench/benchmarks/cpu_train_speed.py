"""CPU training speed of the default recipe's model: Keras ``fit`` with and without XLA, side by side.

    .venv/bin/python bench/benchmarks/cpu_train_speed.py [--size 128] [--filters 8] [--steps 30] [--rounds 2]

Phantom patients (one with CT, two as label maps rendered per sample, as in the recipe) go
through core.training.loader with anatomical augmentation into ``model.fit`` on a PyDataset with two
loader threads (what core.training.trainer does), TensorFlow backend, batch 16. Keras' default
``jit_compile="auto"`` leaves XLA off for this model on TensorFlow; core.training.trainer turns it on.
Rounds alternate (off, on, off, on...) and print slices/s and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--filters", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    import keras

    import core  # noqa: F401  (TensorFlow settings before Keras)
    from core.datasets import anatomy as A
    from core.datasets.dataset import Case, write_case
    from core.model.losses import bce_dice_loss, dice_metric, iou_metric
    from core.model.resunet import ResUNetConfig, build_resunet
    from core.synthetic.phantom import make_phantom
    from core.training.loader import SlicePipeline
    from core.transforms.preprocess import Preprocessing

    with tempfile.TemporaryDirectory() as tmp:
        for i, seed in enumerate((61, 62, 63)):
            c = make_phantom(seed, 32, 256)
            anat = A.paint({A.BODY: c.hu > -500, A.BONE: c.hu > 180, A.LIVER: c.label > 0,
                            A.TUMOUR: c.label == 2}, c.hu.shape)
            write_case(tmp, Case(f"c{i}", c.hu if i == 0 else None, c.label, c.spacing, anatomy=anat))
        pipe = SlicePipeline(tmp, ["c0", "c1", "c2"], "liver", Preprocessing(size=args.size), augment=True,
                             geometry="anatomical")
        order = pipe.epoch_order(np.random.default_rng(0), 0.0, 0.4, 16 * args.steps)

        class Batches(keras.utils.PyDataset):
            def __init__(self):
                super().__init__(workers=2)

            def __len__(self):
                return args.steps

            def __getitem__(self, i):
                return pipe.batch(order[i * 16:(i + 1) * 16], np.random.default_rng(i))

        models = {}
        for jit in ("auto", True):
            m = build_resunet(ResUNetConfig(args.size, 3, args.filters, 4))
            m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=bce_dice_loss,
                      metrics=[dice_metric(), iou_metric()], jit_compile=jit)
            m.fit(Batches(), epochs=1, verbose=0)  # compile and warm up
            models[jit] = m
        rates = {"auto": [], True: []}
        for _ in range(args.rounds):
            for jit, m in models.items():
                t = time.perf_counter()
                m.fit(Batches(), epochs=1, verbose=0)
                rates[jit].append(16 * args.steps / (time.perf_counter() - t))
                print(f"jit_compile={jit!s:5s} (XLA {'on' if m.jit_compile else 'off'}): "
                      f"{rates[jit][-1]:.1f} slices/s", flush=True)
    off, on = np.median(rates["auto"]), np.median(rates[True])
    print(f"\nResUNet {args.filters}-{args.filters * 16} at {args.size} px, batch 16, TensorFlow CPU: "
          f"XLA off {off:.1f}, on {on:.1f} slices/s; ratio on / off {on / off:.2f}")


if __name__ == "__main__":
    main()
