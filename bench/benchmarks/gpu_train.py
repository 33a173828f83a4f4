"""GPU training and prediction throughput of the full-size ResUNet through the real pipeline.

Run on a GPU machine with JAX (KERAS_BACKEND=jax, the default here):

    KERAS_BACKEND=jax python bench/benchmarks/gpu_train.py [--batch 64] [--steps 40] [--patients 6]

Phantom patients (256 x 256) go through core.training.loader (cache, 2.5D, augmentation)
into, for float32 and mixed_bfloat16:
  * ``model.fit`` on a keras PyDataset (what core.training.trainer does), and
  * a jitted JAX train step (keras stateless_call + optimizer.stateless_apply)
    fed by a prefetch thread that builds batches with a thread pool and puts
    them on the device ahead of use (device-side prefetch, no host stalls);
and prediction as ``model.predict`` and as a jitted forward on device-resident
batches. Prints slices/s for each, ratios last.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402


def make_dataset(folder: str, patients: int, slices: int, size: int) -> list[str]:
    from core.datasets.dataset import Case, write_case
    from core.synthetic.phantom import make_phantom
    ids = []
    for s in range(patients):
        c = make_phantom(300 + s, slices, size)
        write_case(folder, Case(f"g{s}", c.hu, c.label, c.spacing))
        ids.append(f"g{s}")
    return ids


class Prefetcher:
    """Builds batches on a thread pool and keeps ``depth`` of them on the device ahead of use."""

    def __init__(self, pipe, batch: int, steps: int, workers: int = 8, depth: int = 4, seed: int = 0):
        import jax
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        n = len(pipe)

        def rows(i):
            r = np.random.default_rng([seed, i])
            return r.integers(0, n, batch), r

        def make(i):
            idx, r = rows(i)
            return pipe.batch(idx, r)

        def run():
            with ThreadPoolExecutor(workers) as pool:
                for x, y in pool.map(make, range(steps)):
                    self.q.put((jax.device_put(x), jax.device_put(y)))
            self.q.put(None)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def __iter__(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            yield item


def bench_precision(precision: str, pipe, args) -> dict:
    import jax
    import keras
    from keras import ops

    from core.model.losses import bce_dice_loss
    from core.model.resunet import ResUNetConfig, build_resunet
    keras.mixed_precision.set_global_policy(precision)
    out = {}
    cfg = ResUNetConfig(args.size, 3, 16, 4)

    # 1. model.fit on a PyDataset (the path core.training.trainer takes).
    model = build_resunet(cfg)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=bce_dice_loss)
    b, n = args.batch, len(pipe)

    class DS(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=8)

        def __len__(self):
            return args.steps

        def __getitem__(self, i):
            r = np.random.default_rng([1, i])
            return pipe.batch(r.integers(0, n, b), r)

    times = []

    class T(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, e, logs=None):
            times.append(time.perf_counter() - self.t)
    model.fit(DS(), epochs=2, verbose=0, callbacks=[T()])  # epoch 1 compiles
    out["fit"] = args.steps * b / times[-1]

    # 2. jitted train step with device-side prefetch.
    model = build_resunet(cfg)
    opt = keras.optimizers.Adam(1e-3)
    opt.build(model.trainable_variables)
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    ov = [v.value for v in opt.variables]

    def loss_fn(tv, ntv, x, y):
        pred, ntv = model.stateless_call(tv, ntv, x, training=True)
        return ops.mean(bce_dice_loss(y, pred)), ntv

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def _step(tv, ntv, ov, x, y):
        (loss, ntv), grads = grad_fn(tv, ntv, x, y)
        tv, ov = opt.stateless_apply(ov, grads, tv)
        return tv, ntv, ov, loss

    step = jax.jit(_step, donate_argnums=(0, 1, 2))
    warm = 3
    it = iter(Prefetcher(pipe, b, args.steps + warm, workers=args.workers))
    for _ in range(warm):
        x, y = next(it)
        tv, ntv, ov, loss = step(tv, ntv, ov, x, y)
    loss.block_until_ready()
    t = time.perf_counter()
    k = 0
    for x, y in it:
        tv, ntv, ov, loss = step(tv, ntv, ov, x, y)
        k += 1
    loss.block_until_ready()
    out["jit_train"] = k * b / (time.perf_counter() - t)
    out["final_loss"] = float(loss)

    # 3. prediction: model.predict vs jitted forward on device-resident batches.
    for v, val in zip(model.trainable_variables, tv, strict=True):
        v.assign(val)
    for v, val in zip(model.non_trainable_variables, ntv, strict=True):
        v.assign(val)
    xs = np.concatenate([pipe.batch(np.arange(i, i + b) % n)[0] for i in range(0, 4 * b, b)])
    model.predict(xs, batch_size=b, verbose=0)
    t = time.perf_counter()
    model.predict(xs, batch_size=b, verbose=0)
    out["predict"] = len(xs) / (time.perf_counter() - t)
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    fwd = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
    xd = [jax.device_put(xs[i:i + b]) for i in range(0, len(xs), b)]
    fwd(tv, ntv, xd[0]).block_until_ready()
    t = time.perf_counter()
    reps = 10
    for _ in range(reps):
        for x in xd:
            yd = fwd(tv, ntv, x)
    yd.block_until_ready()
    out["jit_forward"] = reps * len(xs) / (time.perf_counter() - t)
    keras.mixed_precision.set_global_policy("float32")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--patients", type=int, default=6)
    ap.add_argument("--slices", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--precisions", default="float32,mixed_bfloat16")
    args = ap.parse_args()
    import jax
    import keras

    from core.training.loader import SlicePipeline
    from core.transforms.preprocess import Preprocessing
    print(f"keras {keras.__version__} backend {keras.backend.backend()}, jax {jax.__version__}, "
          f"devices {jax.devices()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ids = make_dataset(tmp, args.patients, args.slices, args.size)
        pipe = SlicePipeline(tmp, ids, "liver", Preprocessing(size=args.size), augment=True)
        print(f"phantoms and cache: {len(pipe)} slices in {time.perf_counter() - t:.1f} s", flush=True)
        t, k = time.perf_counter(), 0
        while time.perf_counter() - t < 3:
            pipe.batch(np.random.default_rng(k).integers(0, len(pipe), args.batch))
            k += 1
        one = k * args.batch / (time.perf_counter() - t)
        with ThreadPoolExecutor(args.workers) as pool:
            t = time.perf_counter()
            list(pool.map(lambda i: pipe.batch(np.random.default_rng(i).integers(0, len(pipe), args.batch),
                                               np.random.default_rng(i)), range(60)))
            many = 60 * args.batch / (time.perf_counter() - t)
        print(f"input pipeline alone: {one:,.0f} slices/s on 1 thread, {many:,.0f} on {args.workers}", flush=True)
        results = {}
        for p in args.precisions.split(","):
            results[p] = bench_precision(p, pipe, args)
            print(p, {k: round(v, 1) for k, v in results[p].items()}, flush=True)
    print(f"\nResUNet 16-256 at {args.size} px, batch {args.batch}, slices/s:")
    print(f"{'':16s} {'fit':>9s} {'jit train':>10s} {'predict':>9s} {'jit fwd':>9s}")
    for p, r in results.items():
        print(f"{p:16s} {r['fit']:9,.0f} {r['jit_train']:10,.0f} {r['predict']:9,.0f} {r['jit_forward']:9,.0f}")
    if "mixed_bfloat16" in results and "float32" in results:
        bf, fp = results["mixed_bfloat16"], results["float32"]
        print(f"ratios: jit train / fit (bf16) {bf['jit_train'] / bf['fit']:.2f}; bf16 / fp32 jit train "
              f"{bf['jit_train'] / fp['jit_train']:.2f}; "
              f"jit fwd / predict (bf16) {bf['jit_forward'] / bf['predict']:.2f}")


if __name__ == "__main__":
    main()
