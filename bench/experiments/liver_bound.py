"""A coarse 3D liver stage that bounds the 2.5D one: trained here, then measured.

The 2.5D liver stage sees three slices; 3D context could keep it off the heart above the
dome, the vena cava and the stomach. This trains a small 3D U-Net (Keras 3 layers only; 8-16-32-64
filters) on whole volumes resampled to a 5 mm grid (HU clipped to [-200, 300]), then scores the
leave-out-17 liver stage alone against the same stage bounded by the coarse liver (its largest
component) in three ways:

* ``3dM``: 2.5D liver voxels kept only within M mm (3D) of the coarse liver;
* ``zM``: kept only on slices within M mm of the coarse liver's slice range (a z-bound alone);
* ``fuseW``: probabilities averaged, ``(1 - W) * p2.5D + W * p3D`` (the 3D map trilinear on the CT grid).

Each then goes through the cascade's own liver post-processing (largest component, holes filled)
and is scored with ``bench/experiments/liver_errors.py``'s split (false liver above the expert's dome, below its
tip, beside it; missed).

Training volumes: the leave-out-17 training label maps (2-6, 8, 10-12, 14-16, 18, 19) rendered
whole at a third of their in-plane resolution (:func:`core.synthetic.volume_ct.render_volume`,
``--renders`` appearances each, phases drawn), and patient 7's CT with its seven acquisition proxies;
random 32 x 72 x 72 crops (160 x 360 x 360 mm), intensity jitter. Validation (the saved epoch): the
label maps of 9 and 13 rendered in three phases. Scored on those two maps rendered in four phases at
full resolution (``--seeds`` each) and on patient 17's real CT with its seven proxies (``--real``).

    .venv/bin/python bench/experiments/liver_bound.py train --dataset WORK/dataset --out /tmp/bound.keras
    .venv/bin/python bench/experiments/liver_bound.py eval --dataset WORK/dataset --out /tmp/bound.keras \\
        --liver LOO17/liver --real 3Dircadb1.17
    .venv/bin/python bench/experiments/liver_bound.py eval --dataset WORK/dataset --out /tmp/bound.keras \\
        --liver LOO17/liver
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # liver_errors, lesion_filter

GRID = 5.0  # mm, every axis
CROP = (32, 72, 72)  # training crop, grid voxels
TRAIN_MAPS = [f"3Dircadb1.{i}" for i in (2, 3, 4, 5, 6, 8, 10, 11, 12, 14, 15, 16, 18, 19)]
VAL_MAPS = ["3Dircadb1.9", "3Dircadb1.13"]


def to_grid(x, spacing, order: int = 1) -> np.ndarray:
    """``x`` [Z, Y, X] on ``spacing`` resampled to the :data:`GRID` (smoothed first when shrinking)."""
    f = [s / GRID for s in spacing]
    x = np.asarray(x, np.float32)
    if order == 1:
        x = ndimage.gaussian_filter(x, [max(0.0, 0.5 / fi - 0.5) if fi < 1 else 0 for fi in f])
    return ndimage.zoom(x, f, order=order, prefilter=False)


def norm(hu):
    return (np.clip(hu, -200, 300) - 50.0) / 150.0


def coarse_pair(hu, label, spacing) -> tuple[np.ndarray, np.ndarray]:
    """(normalised CT, liver mask) on the grid."""
    x = norm(to_grid(hu.astype(np.float32), spacing))
    y = to_grid((label >= 1).astype(np.float32), spacing) > 0.5
    return x.astype(np.float32), y


def render_small(case, rng, phase=None, step: int = 3):
    """A label map rendered whole at 1/``step`` of its in-plane resolution."""
    from core.synthetic.volume_ct import render_volume
    an = case.anatomy[:, ::step, ::step]
    sp = (case.spacing[0], case.spacing[1] * step, case.spacing[2] * step)
    hu, facts = render_volume(an, sp, rng, phase)
    return hu, case.label[:, ::step, ::step], sp, facts


def build(base: int = 8, depth: int = 3):
    """A 3D U-Net, any input size divisible by 2**depth: [B, Z, Y, X, 1] -> sigmoid [B, Z, Y, X, 1]."""
    import keras
    from keras import layers

    def block(x, f):
        for _ in range(2):
            x = layers.Conv3D(f, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        return x
    inp = keras.Input((None, None, None, 1))
    x, skips = inp, []
    for i in range(depth):
        x = block(x, base * 2 ** i)
        skips.append(x)
        x = layers.MaxPooling3D(2)(x)
    x = block(x, base * 2 ** depth)
    for i in reversed(range(depth)):
        x = layers.UpSampling3D(2)(x)
        x = layers.Concatenate()([x, skips[i]])
        x = block(x, base * 2 ** i)
    out = layers.Conv3D(1, 1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inp, out)


def pad8(x, value=0.0):
    return np.pad(x, [(0, (-s) % 8) for s in x.shape], constant_values=value)


def predict(model, x) -> np.ndarray:
    shp = x.shape
    p = model.predict(pad8(x, norm(-1000.0))[None, ..., None], verbose=0)[0, ..., 0]
    return p[:shp[0], :shp[1], :shp[2]]


def crop(x, y, rng):
    out = []
    for a, v in ((x, norm(-1000.0)), (y, 0)):
        out.append(np.pad(a, [(0, max(0, c - s)) for c, s in zip(CROP, a.shape, strict=True)], constant_values=v))
    x, y = out
    o = [rng.integers(0, s - c + 1) for s, c in zip(x.shape, CROP, strict=True)]
    sl = tuple(slice(a, a + c) for a, c in zip(o, CROP, strict=True))
    return x[sl], y[sl]


def make_pool(ds, renders: int) -> tuple[list, int]:
    """Training volumes on the grid: the rendered maps first, then patient 7's CT and proxies."""
    from core.datasets.dataset import load_case
    from core.synthetic.acquisition import VARIANTS, acquisition_variant
    pool = []
    t = time.time()
    for cid in TRAIN_MAPS:
        case = load_case(ds, cid)
        for k in range(renders):
            rng = np.random.default_rng([k, 100 + int(cid.rsplit(".", 1)[-1])])
            hu, lab, sp, _ = render_small(case, rng)
            pool.append(coarse_pair(hu, lab, sp))
        print(f"  {cid} rendered {time.time() - t:.0f} s", flush=True)
    n_rendered = len(pool)
    case = load_case(ds, "3Dircadb1.7")
    for name in VARIANTS:
        v = acquisition_variant(case, name)
        for _ in range(max(1, renders // 4)):
            pool.append(coarse_pair(v.hu, v.label, v.spacing))
    return pool, n_rendered


def dice_bce(y, p):
    import keras.ops as K
    inter = K.sum(y * p)
    return 1 - (2 * inter + 1) / (K.sum(y) + K.sum(p) + 1) + K.mean(K.binary_crossentropy(y, p))


def train(args) -> None:
    import keras

    from core.datasets.dataset import load_case
    pool, n_rendered = make_pool(args.dataset, args.renders)
    print(f"pool {len(pool)} volumes ({n_rendered} rendered)", flush=True)
    val = []
    for cid in VAL_MAPS:
        case = load_case(args.dataset, cid)
        for k, ph in enumerate(("portal", "arterial", "unenhanced")):
            hu, lab, sp, _ = render_small(case, np.random.default_rng([k, 7]), ph)
            val.append(coarse_pair(hu, lab, sp))
    keras.utils.set_random_seed(0)
    model = build(args.base)
    lr = args.lr
    if args.cosine:
        lr = keras.optimizers.schedules.CosineDecay(args.lr, args.epochs * args.steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=dice_bce)
    rng = np.random.default_rng(0)
    best = -1.0
    for ep in range(args.epochs):
        t = time.time()
        losses = []
        for _ in range(args.steps):
            xs, ys = [], []
            for _ in range(2):
                if args.real_share and rng.random() < args.real_share:
                    x, y = pool[n_rendered + rng.integers(len(pool) - n_rendered)]
                else:
                    x, y = pool[rng.integers(n_rendered if args.real_share else len(pool))]
                x, y = crop(x, y, rng)
                x = x * rng.uniform(0.9, 1.1) + rng.uniform(-0.15, 0.15) + rng.normal(0, rng.uniform(0, 0.05), x.shape)
                xs.append(x)
                ys.append(y)
            losses.append(float(model.train_on_batch(np.stack(xs)[..., None].astype(np.float32),
                                                     np.stack(ys)[..., None].astype(np.float32))))
        ds = []
        for x, y in val:
            p = predict(model, x) > 0.5
            ds.append(2 * (p & y).sum() / max(1, p.sum() + y.sum()))
        vd = float(np.mean(ds))
        print(f"epoch {ep + 1} loss {np.mean(losses):.4f} val dice {vd:.4f} ({' '.join(f'{d:.3f}' for d in ds)}) "
              f"{time.time() - t:.0f} s", flush=True)
        if vd > best:
            best = vd
            model.save(args.out)
    print(f"best validation Dice {best:.4f}: {args.out}", flush=True)


def bound_masks(model, vol, margins) -> tuple[dict, np.ndarray, float]:
    """({name: bool mask on the CT grid}, the 3D probability on the CT grid, seconds for the grid,
    the network and the 3D bound alone)."""
    t = time.perf_counter()
    prob = predict(model, norm(to_grid(vol.hu, vol.spacing)))
    p = prob > 0.5
    if p.any():
        lab, _ = ndimage.label(p)
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        p = lab == sizes.argmax()
    dist = ndimage.distance_transform_edt(~p, sampling=GRID) if p.any() else np.full(p.shape, 1e9)
    shape = vol.hu.shape
    idx = [np.minimum(((np.arange(n) + 0.5) * p.shape[k] / n).astype(int), p.shape[k] - 1) for k, n in enumerate(shape)]
    seconds = time.perf_counter() - t
    out = {}
    zs = np.flatnonzero(p.any(axis=(1, 2)))
    for m in margins:
        out[f"3d{m:g}"] = (dist <= m)[np.ix_(*idx)]
        zb = np.zeros(p.shape[0], bool)
        if len(zs):
            zb[max(0, zs[0] - int(np.ceil(m / GRID))):zs[-1] + 1 + int(np.ceil(m / GRID))] = True
        out[f"z{m:g}"] = np.broadcast_to(zb[idx[0]][:, None, None], shape)
    # trilinear, cell centres aligned (grid_mode): as map_coordinates at (i + 0.5) * n_coarse / n - 0.5
    up = ndimage.zoom(prob, [n / m for n, m in zip(shape, prob.shape, strict=True)], order=1, grid_mode=True,
                      mode="nearest")
    return out, up.astype(np.float32), seconds


def evaluate(args) -> None:
    import keras
    from lesion_filter import rendered_volumes
    from liver_errors import liver_errors

    from core.datasets.dataset import load_case
    from core.inference.cascade import segment
    from core.inference.runners import prepare_runners
    from core.model.io import load_seg_model
    from core.synthetic.acquisition import VARIANTS, acquisition_variant
    from core.transforms.postprocess import clean_liver
    coarse = keras.models.load_model(args.out, compile=False)
    liver = load_seg_model(args.liver, "liver")
    runners = prepare_runners(liver)  # ONNX sessions opened once, not per volume
    margins = [float(m) for m in args.margins.split(",")]
    if args.real:
        case = load_case(args.dataset, args.real)
        vols = ((f"{args.real} {n}", acquisition_variant(case, n)) for n in VARIANTS)
    else:
        vols = ((f"{v.case} {v.phase} {v.seed}", v) for v in rendered_volumes(args.dataset, VAL_MAPS, args.seeds))
    rows = []
    for i, (name, v) in enumerate(vols):
        if args.limit and i >= args.limit:
            break
        seg = segment(v, liver, None, return_probs=True, runners=runners)
        p2 = seg.liver_prob.astype(np.float32)
        raw = p2 > liver.threshold
        bounds, up, seconds = bound_masks(coarse, v, margins)
        for w in (0.25, 0.5):
            bounds[f"fuse{w:g}"] = ((1 - w) * p2 + w * up) > liver.threshold
        row = {"name": name, "coarse_s": round(seconds, 3)}
        for key, mask in [("none", None)] + list(bounds.items()):
            pred = clean_liver(raw if mask is None else (mask if key.startswith("fuse") else raw & mask))
            r = liver_errors(pred, v.label, getattr(v, "anatomy", None), v.spacing)
            row[key] = {k: round(r[k], 4) for k in ("dice", "false_ml", "false_above_ml", "false_below_ml",
                                                     "false_beside_ml", "missed_ml")}
        rows.append(row)
        print(f"{name:36s} 3D stage {seconds:.1f} s  " + " | ".join(
            f"{k} {row[k]['dice']:.4f}" for k in row if isinstance(row[k], dict)), flush=True)
    print("\nsetting   mean Dice  false mL (above / below / beside)  missed mL")
    for k in [k for k in rows[0] if isinstance(rows[0][k], dict)]:
        s = {q: sum(r[k][q] for r in rows) for q in rows[0][k]}
        print(f"{k:9s} {np.mean([r[k]['dice'] for r in rows]):9.4f}  {s['false_ml']:6.0f} ({s['false_above_ml']:.0f} / "
              f"{s['false_below_ml']:.0f} / {s['false_beside_ml']:.0f})  {s['missed_ml']:8.0f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["train", "eval"])
    ap.add_argument("--dataset", required=True, help="an imported 3D-IRCADb-01 dataset (label maps and CT)")
    ap.add_argument("--out", required=True, help="the 3D stage's .keras file (written by train, read by eval)")
    ap.add_argument("--renders", type=int, default=4, help="appearances rendered per training map")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=60, help="batches of two crops per epoch")
    ap.add_argument("--base", type=int, default=8, help="filters of the first level")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--cosine", action="store_true", help="cosine learning-rate decay (default: constant)")
    ap.add_argument("--real-share", type=float, default=0.0,
                    help="share of crops drawn from the real CT (default 0: drawn uniformly from the pool)")
    ap.add_argument("--liver", help="the 2.5D liver stage to bound (eval)")
    ap.add_argument("--real", metavar="PATIENT", help="score this real patient's CT and proxies (eval)")
    ap.add_argument("--seeds", type=int, default=1, help="rendered volumes per map and phase (eval)")
    ap.add_argument("--margins", default="5,10,20", help="mm, comma-separated")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N volumes")
    ap.add_argument("--json", help="write the per-volume figures here")
    args = ap.parse_args()
    if args.mode == "eval" and not args.liver:
        ap.error("eval needs --liver")
    train(args) if args.mode == "train" else evaluate(args)


if __name__ == "__main__":
    main()
