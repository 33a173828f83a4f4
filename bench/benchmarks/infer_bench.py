"""Whole-cascade inference speed on patient 17 against the bare network and a notebook-style baseline.

In one process, on the same volume (patient 17, 119 x 512 x 512, from ../shared):
  1. the cascade: load the DICOM series, both notebook-size ResUNets at 256 px
     (liver on every slice; tumour only on the liver's slices and box),
     post-processing, NIfTI export;
  2. the bare network calls on exactly the same inputs (arrays prepared beforehand);
  3. a notebook-style baseline: per-slice float64 preprocessing with histogram
     equalisation, PIL resize, ``model.predict`` of both models over every slice.
  4. the whole cascade on each engine: Keras, ONNX Runtime fp32, ONNX Runtime
     int8 (static QDQ, calibrated on phantom "training" patients, Dice-gated on phantom
     "validation" patients: the gate's per-case Dice is printed).
Prints the times and the ratios last. Goals: cascade / bare network <= 1.15 (Keras);
the whole job <= 10 s on this CPU with int8, its Dice within 0.01 of fp32.

The models have the notebooks' architecture (16-256 filters, 256 x 256 x 3) and
random weights, plus a zero-weighted side path that makes their output a fixed
Hounsfield band (liver 60-150 HU, tumour 0-60 HU), so that the masks (and so the
post-processing and the tumour model's workload) are realistic without trained weights.

    .venv/bin/python bench/benchmarks/infer_bench.py [--dicom DIR] [--batch 8] [--engines keras,onnx,onnx-int8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "3Dircadb1.17" / "PATIENT_DICOM.zip"

import numpy as np  # noqa: E402


def notebook_size_model(folder: Path, stage: str, band_hu: tuple[float, float], recipe: str = "window25d") -> Path:
    """A 16-256 ResUNet at 256 px whose output marks a Hounsfield band (see the module doc).

    A zero-weighted side path (two 1x1 convolutions on the ResUNet output and the input)
    makes the output sigmoid(triangle(HU) - 0.5), ~1 inside ``band_hu`` and ~0 outside, so
    the masks, and so the post-processing and the tumour model's workload, are realistic.
    """
    import keras

    from core.model.resunet import ResUNetConfig, build_resunet
    net = build_resunet(ResUNetConfig(256, 3, 16, 4))
    inp = net.input
    both = keras.layers.Concatenate()([net.output, inp])
    h = keras.layers.Conv2D(3, 1, activation="relu", name="band")(both)
    out = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="head")(h)
    m = keras.Model(inp, out)
    a, b = ((x + 100.0) / 500.0 for x in band_hu)
    mid, k = (a + b) / 2, 2.0 / (b - a)  # triangle reaches 1 at the band's middle
    w = np.zeros((1, 1, 4, 3), np.float32)
    w[0, 0, 2, :] = k  # the middle channel (the slice itself)
    m.get_layer("band").set_weights([w, np.array([-k * a, -k * mid, -k * b], np.float32)])
    m.get_layer("head").set_weights([np.array([40.0, -80.0, 40.0], np.float32).reshape(1, 1, 3, 1),
                                     np.array([-0.3 * 40.0], np.float32)])
    folder.mkdir(parents=True, exist_ok=True)
    m.save(folder / "model.keras")
    meta = {"stage": stage, "input_size": 256, "channels": 3, "threshold": 0.5,
            "preprocessing": {"recipe": recipe, "window": [-100.0, 400.0], "size": 256, "channels": 3}}
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def onnx_models(tmp: Path, models) -> dict:
    """Export both models to ONNX and quantise them, calibrated on 4 phantom "training" patients and
    gated on 2 phantom "validation" patients (256 x 256, 48 slices). Returns the int8 records."""
    from core.datasets.dataset import Case, write_case
    from core.synthetic.phantom import make_phantom
    from core.training.onnx_export import export_onnx
    from core.training.quantize import quantize_int8
    ds = tmp / "phantoms"
    for i in range(6):
        c = make_phantom(3000 + i, 48, 256)
        write_case(ds, Case(f"v{i}", c.hu, c.label, c.spacing))
    out = {}
    for m in models:
        folder = Path(m.path).parent
        export_onnx(folder)
        out[m.stage] = quantize_int8(folder, dataset=str(ds), train_cases=[f"v{i}" for i in range(4)],
                                     val_cases=["v4", "v5"])
        if not out[m.stage]["validated"]:  # time it anyway, but say so
            meta = json.loads((folder / "model.json").read_text())
            meta["int8"]["validated"] = True
            (folder / "model.json").write_text(json.dumps(meta))
            print(f"NOTE: the {m.stage} model's int8 version failed its Dice gate; timed anyway", flush=True)
    return out


def notebook_baseline(folder: str, liver_keras, tumour_keras) -> float:
    """The notebooks' way: per-slice float64 + equalisation + PIL resize, predict both models on every slice."""
    import pydicom
    from PIL import Image
    from skimage import exposure
    t = time.perf_counter()
    files = sorted(Path(folder).iterdir(), key=lambda p: int(p.name.split("_")[-1]))
    xs = []
    for f in files:
        img = pydicom.dcmread(f).pixel_array.astype(np.float64)
        img[img > 1200] = 0
        img = np.clip(img, -100, 400)
        img = (img - img.min()) / max(img.max() - img.min(), 1e-9)
        img = exposure.equalize_hist(img)
        img = np.array(Image.fromarray(img.astype(np.float32)).resize((256, 256)))
        xs.append(np.stack([img] * 3, -1))
    x = np.stack(xs).astype(np.float32)
    t_warm = time.perf_counter()
    liver_keras.predict(x[:8], batch_size=8, verbose=0)  # compile outside the timing, as for the cascade
    tumour_keras.predict(x[:8], batch_size=8, verbose=0)
    t += time.perf_counter() - t_warm
    liver = liver_keras.predict(x, batch_size=8, verbose=0)
    tumour = tumour_keras.predict(x * (liver > 0.5), batch_size=8, verbose=0)
    del tumour
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dicom", help="an extracted DICOM series folder (default: patient 17 from ../shared)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--phantom", action="store_true",
                    help="use a phantom written as DICOM (119 x 512 x 512 by default) instead of patient 17")
    ap.add_argument("--phantom-slices", type=int, default=119)
    ap.add_argument("--phantom-size", type=int, default=512)
    ap.add_argument("--engines", default="keras,onnx,onnx-int8", help="comma-separated engines to time")
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    import keras

    from core.inference.cascade import segment
    from core.inference.devices import default_device
    from core.inference.engines.runner import open_runner
    from core.io.dicom import load_series  # first: core sets the TensorFlow options the app runs with
    from core.io.export import write_nifti
    from core.model.io import load_seg_model
    from core.transforms.masks import inplane_box
    from core.transforms.preprocess import MARGIN_PX, normalised_stack
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = args.dicom
        if folder is None and (args.phantom or not SHARED.exists()):
            from core.synthetic.phantom import make_phantom, write_patient
            ph = write_patient(make_phantom(17, args.phantom_slices, args.phantom_size, slice_mm=1.6), tmp / "ph", 17)
            with zipfile.ZipFile(ph / "PATIENT_DICOM.zip") as z:
                z.extractall(tmp)
            folder = str(tmp / "PATIENT_DICOM")
        elif folder is None:
            with zipfile.ZipFile(SHARED) as z:
                z.extractall(tmp)
            folder = str(tmp / "PATIENT_DICOM")
        liver = load_seg_model(notebook_size_model(tmp / "liver", "liver", (60.0, 150.0)), "liver")
        tumour = load_seg_model(notebook_size_model(tmp / "tumor", "tumor", (0.0, 60.0)), "tumor")
        gates = onnx_models(tmp, (liver, tumour)) if set(engines) - {"keras"} else {}
        warm = load_series(folder)
        segment(warm, liver, tumour, batch_size=args.batch, engine="keras")  # compile both predict functions
        per_engine = {}
        for engine in engines:
            segment(warm, liver, tumour, batch_size=args.batch, engine=engine)  # sessions made, kernels warm
            t0 = time.perf_counter()
            vol = load_series(folder)
            s = segment(vol, liver, tumour, batch_size=args.batch, engine=engine)
            write_nifti(tmp / f"out-{engine}.nii.gz", s.label, vol)
            per_engine[engine] = (time.perf_counter() - t0, s)

        t0 = time.perf_counter()
        vol = load_series(folder)
        t_load = time.perf_counter() - t0
        seg = segment(vol, liver, tumour, batch_size=args.batch, engine="keras")
        t_exp = time.perf_counter()
        write_nifti(tmp / "out.nii.gz", seg.label, vol)
        t_export = time.perf_counter() - t_exp
        total = time.perf_counter() - t0

        # Bare network calls on exactly the same inputs, prepared beforehand.
        norm = normalised_stack(vol.hu, liver.pre, dz=vol.spacing[0])
        liver_mask = seg.label > 0
        zs = np.flatnonzero(liver_mask.any(axis=(1, 2)))
        box = inplane_box(liver_mask, MARGIN_PX)
        tnorm = normalised_stack(vol.hu[zs[0]:zs[-1] + 1], tumour.pre, box, dz=vol.spacing[0])
        from core.transforms.preprocess import stack_channels
        xl = [stack_channels(norm, np.arange(i, min(i + args.batch, len(norm))), liver.pre)
              for i in range(0, len(norm), args.batch)]
        zt = zs - zs[0]
        xt = [stack_channels(tnorm, zt[i:i + args.batch], tumour.pre) for i in range(0, len(zt), args.batch)]
        dev = default_device()  # the same calls, on the same device, as the cascade makes
        rl, rt = open_runner(liver, "keras", dev, args.batch), open_runner(tumour, "keras", dev, args.batch)
        if keras.backend.backend() == "jax" and dev.gpu:
            import jax
            dl, dt = [jax.device_put(x) for x in xl], [jax.device_put(x) for x in xt]
            jax.block_until_ready(dl + dt)
            jax.block_until_ready([rl.fwd(rl.tv, rl.ntv, dl[0]), rt.fwd(rt.tv, rt.ntv, dt[0]),
                                   rl.fwd(rl.tv, rl.ntv, dl[-1]), rt.fwd(rt.tv, rt.ntv, dt[-1])])  # compiled
            t = time.perf_counter()
            outs = [rl.fwd(rl.tv, rl.ntv, x) for x in dl] + [rt.fwd(rt.tv, rt.ntv, x) for x in dt]
            jax.block_until_ready(outs)
            bare = time.perf_counter() - t
        else:
            t = time.perf_counter()
            for x in xl:
                rl._call(x)
            for x in xt:
                rt._call(x)
            bare = time.perf_counter() - t

        base = float("nan") if args.skip_baseline else notebook_baseline(folder, liver.model, tumour.model)
    n_l, n_t = len(norm), len(zt)
    print(f"volume {vol.hu.shape}, backend {keras.backend.backend()}, {seg.info['device']}, batch {args.batch}")
    print(f"liver model on {n_l} slices, tumour model on {n_t} liver slices (box {box})")
    print(f"cascade total         {total:7.2f} s   (load {t_load:.2f}, liver net {seg.timings['liver_net']:.2f}, "
          f"tumour net {seg.timings['tumor_net']:.2f}, "
          f"pre/post {seg.timings['total'] - seg.timings['liver_net'] - seg.timings['tumor_net']:.2f}, "
          f"NIfTI {t_export:.2f})")
    print("cascade steps (s): " + ", ".join(f"{k} {v:.2f}" for k, v in seg.timings.items()))
    print(f"bare network calls    {bare:7.2f} s   ({(n_l + n_t) / bare:.1f} slices/s)")
    if not np.isnan(base):
        print(f"notebook-style        {base:7.2f} s   (both models on all {n_l} slices)")
    print(f"ratio cascade / bare network: {total / bare:.3f}  (goal <= 1.15)")
    from core.evaluation import metrics
    for engine, (t_e, s) in per_engine.items():
        agree = metrics.dice(s.label > 0, seg.label > 0)
        print(f"engine {engine:10s} whole job {t_e:6.2f} s   (liver net {s.timings['liver_net']:.2f}, tumour net "
              f"{s.timings.get('tumor_net', 0):.2f}; {'; '.join(s.info['engines'].values())}; "
              f"liver Dice vs Keras labels {agree:.4f})")
    for stage, q in gates.items():
        g = q["gate"]
        print(f"int8 gate, {stage} model: validated {q['validated']}, per-case Dice fp32/int8 "
              + ", ".join(f"{c} {a:.4f}/{b:.4f}" for c, (a, b) in g["cases"].items())
              + f", largest difference {g['max_difference']:.4f}")
    if not np.isnan(base):
        print(f"ratio notebook-style / cascade: {base / total:.2f}")
    if "keras" in per_engine:
        for engine, (t_e, _) in per_engine.items():
            print(f"ratio {engine} / keras whole job: {t_e / per_engine['keras'][0]:.3f}")
    if not np.isnan(base):
        for engine, (t_e, _) in per_engine.items():
            print(f"ratio notebook-style / {engine} whole job: {base / t_e:.2f}")


if __name__ == "__main__":
    main()
