"""Recipe for the bundled demo models in resources/models/ (trained on synthetic phantoms only).

Trains a small liver and tumour ResUNet (base 8 filters, 128 px) on phantom patients,
then saves them without optimizer state, with their model.json labelled
"demo, trained on synthetic data", into resources/models/demo-liver and demo-tumor,
with their ONNX export and the Dice-checked int8 model (calibrated on the training
phantoms, gated on the validation phantoms).

    .venv/bin/python bench/recipes/make_demo_models.py [--minutes 12] [--patients 8]
    .venv/bin/python bench/recipes/make_demo_models.py --onnx-only   # (re)export the existing demo models
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def phantom_dataset(folder: Path, patients: int) -> Path:
    from core.datasets.dataset import Case, write_case
    from core.synthetic.phantom import make_phantom
    for i in range(patients):
        c = make_phantom(2000 + i, 64, 256)
        write_case(folder, Case(f"d{i}", c.hu, c.label, c.spacing))
    return folder


def add_onnx(dest: Path, dataset: Path) -> None:
    """model.onnx + model.int8.onnx for a demo model folder (its data lists the phantom patients)."""
    from core.training.onnx_export import export_onnx
    from core.training.quantize import quantize_int8
    meta = json.loads((dest / "model.json").read_text())
    rec = export_onnx(dest)
    q = quantize_int8(dest, dataset=str(dataset), train_cases=meta["data"]["train_patients"],
                      val_cases=meta["data"]["val_patients"], n_slices=16)
    print(f"{dest.name}: ONNX max diff {rec['max_abs_diff']:.1e}; int8 validated {q['validated']} "
          f"(per-case Dice {q['gate']['cases']})", flush=True)


def main() -> None:
    from core.model.io import load_model, save_model_atomic
    from core.runtime.jobs import CancelToken
    from core.training.trainer import TrainConfig, train
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--patients", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "resources" / "models"))
    ap.add_argument("--onnx-only", action="store_true", help="only export the existing models to ONNX / int8")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="liverseg-demo-"))
    phantom_dataset(tmp / "ds", args.patients)
    if args.onnx_only:
        for stage in ("liver", "tumor"):
            add_onnx(Path(args.out) / f"demo-{stage}", tmp / "ds")
        shutil.rmtree(tmp, ignore_errors=True)
        return
    for stage, share in (("liver", 0.4), ("tumor", 0.6)):
        tok = CancelToken()
        deadline = time.perf_counter() + args.minutes * 60 * share

        def progress(ev, tok=tok, deadline=deadline, stage=stage):
            if time.perf_counter() > deadline:
                tok.cancel()
            if getattr(ev, "record", None):
                print(f"{stage} epoch {ev.record['epoch']}: val Dice {ev.record.get('val_dice', 0):.3f}", flush=True)
        r = train(TrainConfig(dataset=str(tmp / "ds"), out=str(tmp / stage), stage=stage, epochs=60,
                              batch_size=8, image_size=128, base_filters=8, learning_rate=2e-3, reduce_lr=4,
                              export_onnx=False),
                  progress=progress, cancel=tok)
        dest = Path(args.out) / f"demo-{stage}"
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        save_model_atomic(load_model(tmp / stage / "model.keras", compile=False), dest / "model.keras")
        meta = json.loads((tmp / stage / "model.json").read_text())
        meta["label"] = "demo, trained on synthetic data"
        meta["data"] = {k: v for k, v in meta["data"].items() if k != "dataset"}
        meta["data"]["source"] = f"{args.patients} synthetic phantom patients (core.synthetic.phantom, seeds 2000+)"
        (dest / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"{stage}: best val Dice {r.best_val_dice:.3f} -> {dest} "
              f"({(dest / 'model.keras').stat().st_size / 1e6:.1f} MB)", flush=True)
        add_onnx(dest, tmp / "ds")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
