"""The default-model recipe on a lent GPU machine (Keras + JAX), three runs at once.

The recipe (``core.training.recipe``, ``liverseg train-default``) trains the liver and tumour models
from 3D-IRCADb-01; this script runs it where a GPU is lent for a few minutes and the
dataset cannot travel as it is (``../shared`` stays here; the licence forbids committing it):

1. here: ``bench/recipes/real_gpu.py pack --dataset WORK/dataset --out .gpu/data``
   writes a compact training copy into a folder that ``.git/info/exclude`` ignores: CT
   clipped to the models' window [-100, 400] HU and stored as uint8 (2 HU steps; the models
   never see values outside the window), labels and anatomy maps, compressed: about 45 MB;
2. there: ``python3 bench/recipes/real_gpu.py device --data .gpu/data --minutes 3.8``
   unpacks it and runs three recipes side by side on the one GPU, each the liver stage then
   the tumour stage for ``--minutes`` each (learning rate on a cosine over that time):
   ``loo17`` (without patient 17), ``loo7`` (without patient 7), ``full`` (every patient) and
   the ablation ``loo17-nomaps`` (without 17 and without the label maps: patient 7's CT alone),
   then packs each run into ``$OUT/<name>.tar.gz``;
3. here: ``bench/recipes/real_gpu.py finish --runs DIR --dataset WORK/dataset [--install resources/models]``
   unpacks the runs, exports ONNX and the Dice-gated int8 model with TensorFlow (the GPU
   machine has none) and installs ``full`` as the default models.
``bench/benchmarks/real_quality.py --runs DIR`` then scores loo17 on 17 and loo7 on 7.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

# name -> (excluded patients, train without label maps): the leave-one-out pair, the shipped
# models, and an ablation (patient 17 left out, and no label maps: patient 7's CT alone).
RUNS = {"loo17": (("3Dircadb1.17",), False), "loo7": (("3Dircadb1.7",), False), "full": ((), False),
        "loo17-nomaps": (("3Dircadb1.17",), True)}
LO, HI = -100.0, 400.0
RUN_FILES = ("model.keras", "model.json", "metrics.jsonl", "config.json", "split.json", "state.json")


def pack(dataset: str, out: str) -> None:
    from core.datasets.dataset import list_cases, load_case, read_manifest
    out_p = Path(out)
    out_p.mkdir(parents=True, exist_ok=True)
    entries = read_manifest(dataset)["cases"]
    total = 0
    for cid in list_cases(dataset, "all"):
        c = load_case(dataset, cid)
        arrays = {"label": c.label}
        if c.anatomy is not None:
            arrays["anatomy"] = c.anatomy
        if c.hu is not None:
            arrays["hu8"] = np.rint((np.clip(c.hu, LO, HI) - LO) * (255 / (HI - LO))).astype(np.uint8)
        side = {"spacing": c.spacing, "origin": c.origin, "direction": np.asarray(c.direction).tolist(),
                "meta": c.meta, "entry": entries[cid]}
        np.savez_compressed(out_p / f"{cid}.npz", meta=np.frombuffer(json.dumps(side).encode(), np.uint8), **arrays)
        total += (out_p / f"{cid}.npz").stat().st_size
        print(f"{cid}: {(out_p / f'{cid}.npz').stat().st_size / 1e6:.1f} MB", flush=True)
    print(f"{total / 1e6:.1f} MB in {out}")


def unpack(data: str, dataset: str) -> None:
    from core.datasets.dataset import Case, write_case
    for f in sorted(Path(data).glob("*.npz")):
        with np.load(f) as z:
            side = json.loads(z["meta"].tobytes().decode())
            hu = None
            if "hu8" in z:
                hu = np.rint(z["hu8"].astype(np.float32) * ((HI - LO) / 255) + LO).astype(np.int16)
            c = Case(f.stem, hu, z["label"], tuple(side["spacing"]), tuple(side["origin"]),
                     np.array(side["direction"]), side["meta"], z["anatomy"] if "anatomy" in z else None)
        write_case(dataset, c)


def train_one(args) -> None:
    """One recipe (both stages) in this process, with a time budget per stage."""
    from core.training.recipe import RecipeConfig, train_default_models
    from core.training.trainer import EpochEvent
    name = Path(args.out).name

    def progress(ev):
        if isinstance(ev, EpochEvent):
            r = ev.record
            print(f"[{name}] epoch {r['epoch']}: loss {r.get('loss', float('nan')):.4f} "
                  f"val_dice {r.get('val_dice', float('nan')):.4f} lr {r['lr']:.1e} {r['seconds']:.1f} s", flush=True)
        elif ev.stage == "recipe":
            print(f"[{name}] {ev.message} ({time.strftime('%H:%M:%S')})", flush=True)

    exclude = list(args.exclude)
    if args.no_labelmaps:  # every label map except the validation ones
        from core.datasets.dataset import list_cases
        from core.training.recipe import VAL_CASES
        exclude += [c for c in list_cases(args.dataset, "labelmap") if c not in VAL_CASES and c not in exclude]
    overrides = [("steps_per_epoch", args.steps)] + ([("learning_rate", args.lr)] if args.lr else [])
    cfg = RecipeConfig(out=args.out, dataset=args.dataset, exclude=tuple(exclude),
                       precision=args.precision, loader_workers=args.workers, loader_processes=args.processes,
                       init_from=args.init_from, max_minutes=args.minutes, calibrate=not args.no_calibrate,
                       export_onnx=False, overrides=tuple(overrides))
    t = time.perf_counter()
    res = train_default_models(cfg, progress=progress)
    for stage, r in res.items():
        print(f"[{name}] {stage}: {r.status}, {r.epochs_done} epochs, best val Dice {r.best_val_dice:.4f} "
              f"at epoch {r.best_epoch}", flush=True)
    print(f"[{name}] done in {time.perf_counter() - t:.0f} s", flush=True)


def device(args) -> None:
    """Unpack, run the recipes side by side, and pack each run (with its log) into ``$OUT``.

    Runs still going at ``--deadline`` seconds are stopped and packed as they are (their
    best model so far is saved after every improving epoch), so a slow machine still
    brings something back inside the device's per-command limit.
    """
    out = Path(os.environ.get("OUT", "/tmp/out"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ds, work = "/tmp/liverseg-ds", Path("/tmp/liverseg-work")
    unpack(args.data, ds)
    print(f"unpacked in {time.perf_counter() - t0:.0f} s", flush=True)
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_PYTHON_CLIENT_PREALLOCATE="false",
               XLA_PYTHON_CLIENT_MEM_FRACTION="0.2", PYTHONUNBUFFERED="1")
    procs, pumps = {}, []
    for name, (excl, no_maps) in RUNS.items():
        if args.only and name not in args.only:
            continue
        (work / name).mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "train", "--dataset", ds, "--out", str(work / name),
               "--minutes", str(args.minutes), "--workers", str(args.workers), "--steps", str(args.steps),
               "--precision", args.precision, "--exclude", *excl] + (["--no-labelmaps"] if no_maps else []) \
            + (["--processes"] if args.processes else []) + (["--lr", str(args.lr)] if args.lr else []) \
            + (["--init-from", str(Path(args.init_from) / name)] if args.init_from else []) \
            + (["--no-calibrate"] if args.no_calibrate else [])
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs[name] = p
        log = open(work / name / "log.txt", "w")

        def pump(p=p, log=log):
            for line in p.stdout:
                log.write(line)
                log.flush()
                if (line.startswith("[") and (args.verbose or " epoch " not in line)) or "Error" in line \
                        or "Traceback" in line:
                    sys.stdout.write(line)
                    sys.stdout.flush()
        th = threading.Thread(target=pump, daemon=True)
        th.start()
        pumps.append(th)
    for name, p in procs.items():
        try:
            p.wait(timeout=max(1.0, args.deadline - (time.perf_counter() - t0)))
        except subprocess.TimeoutExpired:
            print(f"{name}: past the deadline, stopped", flush=True)
            p.kill()
            p.wait()
        print(f"{name}: exit {p.returncode}", flush=True)
    for th in pumps:
        th.join(timeout=5)
    for name in procs:
        with tarfile.open(out / f"{name}.tar.gz", "w:gz") as tar:
            if (work / name / "log.txt").is_file():
                tar.add(work / name / "log.txt", f"{name}/log.txt")
            for stage in ("liver", "tumor"):
                for f in RUN_FILES:
                    p = work / name / stage / f
                    if p.is_file():
                        tar.add(p, f"{name}/{stage}/{f}")
    print(f"all done in {time.perf_counter() - t0:.0f} s", flush=True)


def finish(args) -> None:
    """Unpack the device's runs, export ONNX + int8 here (TensorFlow), install ``full``."""
    from core.training.onnx_export import export_onnx
    from core.training.quantize import quantize_int8
    from core.training.recipe import install_models
    runs = Path(args.runs)
    for tgz in sorted(Path(args.tars).glob("*.tar.gz")) if args.tars else []:
        with tarfile.open(tgz) as tar:
            tar.extractall(runs, filter="data")
    for name in sorted(p.name for p in runs.iterdir() if p.is_dir()):
        for stage in ("liver", "tumor"):
            run = runs / name / stage
            if not (run / "model.keras").is_file():
                print(f"{run}: no model", flush=True)
                continue
            cfg = json.loads((run / "config.json").read_text())
            cfg["dataset"] = str(args.dataset)  # the device's path means nothing here
            (run / "config.json").write_text(json.dumps(cfg, indent=2))
            meta = json.loads((run / "model.json").read_text())
            meta["data"]["dataset"] = str(args.dataset)
            (run / "model.json").write_text(json.dumps(meta, indent=2))
            if meta.get("precision", "float32") != "float32":  # inference copies are float32
                from core.model.io import load_model, save_model_atomic
                save_model_atomic(load_model(run / "model.keras", compile=False), run / "model.keras",
                                  include_optimizer=False)
            if "threshold_search" not in meta:
                from core.training.threshold import calibrate_threshold
                calibrate_threshold(run)
            export_onnx(run)
            q = quantize_int8(run, recalibrate=True)
            print(f"{name}/{stage}: int8 {'validated' if q['validated'] else 'refused'} "
                  f"(max Dice difference {q['gate']['max_difference']})", flush=True)
    if args.install:
        print(install_models(runs / "full", args.install))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("device")
    p.add_argument("--data", required=True)
    p.add_argument("--minutes", type=float, default=3.8, help="per stage")
    p.add_argument("--workers", type=int, default=4, help="batch-building threads per run")
    p.add_argument("--steps", type=int, default=300, help="batches per epoch")
    p.add_argument("--precision", default="mixed_bfloat16")
    p.add_argument("--only", nargs="*", help="run only these of " + ", ".join(RUNS))
    p.add_argument("--deadline", type=float, default=560, help="seconds: stop runs still going and pack them")
    p.add_argument("--verbose", action="store_true", help="print every epoch line")
    extra = [p]
    p = sub.add_parser("train")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--exclude", nargs="*", default=[])
    p.add_argument("--no-labelmaps", action="store_true", help="train without the label maps (ablation)")
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--workers", type=int, default=5)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--precision", default="mixed_bfloat16")
    extra.append(p)
    for q in extra:  # continued training and worker processes, for both "device" and "train"
        q.add_argument("--processes", action="store_true", help="batch-building worker processes, not threads")
        q.add_argument("--lr", type=float, default=0.0, help="learning rate (default: the recipe's)")
        q.add_argument("--init-from", help="device: folder of earlier runs by name; train: that run's folder")
        q.add_argument("--no-calibrate", action="store_true", help="choose thresholds later (finish does)")
    p = sub.add_parser("finish")
    p.add_argument("--runs", required=True, help="folder to unpack the runs into (or holding them)")
    p.add_argument("--tars", help="folder holding the device's <name>.tar.gz")
    p.add_argument("--dataset", required=True, help="the same dataset, here (for the int8 calibration and gate)")
    p.add_argument("--install", help="models folder to install 'full' into (resources/models)")
    args = ap.parse_args()
    {"pack": lambda: pack(args.dataset, args.out), "device": lambda: device(args),
     "train": lambda: train_one(args), "finish": lambda: finish(args)}[args.cmd]()


if __name__ == "__main__":
    main()
