"""int8 models for CPUs: static QDQ quantisation with ONNX Runtime, behind a Dice gate.

``quantize_int8(model_dir)``:

1. calibration inputs: slices from the model's own *training* patients (``model.json``
   ``data``), prepared by the training pipeline without augmentation, seeded, and
   stored with the run as ``calibration.npz`` (uint8, as the pipeline caches them) so
   that quantising again gives the same model; an existing file is reused;
2. ``model.int8.onnx``: per-channel int8 weights with 7-bit range (``reduce_range``), uint8
   activations calibrated on their 99.999th percentile, QDQ format. The 7-bit weights keep the
   u8s8 kernels from saturating on x86 CPUs without VNNI (AVX2 only: AMD before Zen 4, many
   desktop Intel chips), where full-range weights gave a liver model Dice 0.56 instead of 0.89 on a
   validation patient; percentile calibration wins back the step that costs (tumour Dice within 0.002 of fp32);
3. the gate: per-case Dice against the ground truth on the run's *validation* patients,
   fp32 ONNX and int8 side by side; the int8 model is marked ``validated`` only when
   every case is within ``tolerance`` (0.01) of fp32.

The outcome, passed or not, is recorded in model.json (``"int8"``); the engine choice
(:mod:`core.inference.engines`) uses the int8 file only when it is validated.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

from ..datasets.dataset import list_cases
from ..evaluation.metrics import dice
from ..inference.engines.ort import open_session, run_session
from ..model.card import CALIBRATION_FILE, INT8_FILE, ONNX_FILE, model_folder, read_card, update_card
from ..runtime.atomic import atomic_open
from ..runtime.choices import Stage
from ..runtime.errors import ModelError, one_line
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..transforms.preprocess import Preprocessing
from .loader import eval_pipeline
from .onnx_export import _fsync_replace, forget_int8, temp_beside

DICE_TOLERANCE = 0.01
CALIBRATION_SLICES = 32
QUANT_SCHEME = "qdq u8s8, per-channel 7-bit weights (reduce_range), percentile calibration"


def _data_source(meta: dict, folder: Path, dataset, train, val):
    data = meta.get("data", {})
    dataset = dataset or data.get("dataset")
    if not dataset:
        raise ModelError(f"{folder}: model.json names no dataset; give the dataset folder (--dataset)")
    if not Path(dataset).is_dir():
        raise ModelError(f"{dataset}: dataset folder not found (moved?); give it with --dataset")
    cases = set(list_cases(dataset, "all"))
    train = list(train or data.get("train_patients") or [])
    val = list(val or data.get("val_patients") or [])
    missing = [c for c in train + val if c not in cases]
    if missing:
        raise ModelError(f"{dataset}: the model's patients {missing[:5]} are not in this dataset")
    if not train or not val:
        raise ModelError(f"{folder}: model.json lists no training or validation patients")
    return str(dataset), train, val


def calibration_inputs(dataset: str, cases: Sequence[str], stage: Stage, pre, n: int = CALIBRATION_SLICES,
                       seed: int = 0) -> tuple[np.ndarray, list]:
    """``n`` seeded slices of ``cases`` as the training pipeline prepares them (uint8 [n, S, S, C]).

    For the tumour stage half of them come from slices with tumour when there are any.
    """
    pipe = eval_pipeline(dataset, cases, stage, pre, seed)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(pipe.positive), np.flatnonzero(~pipe.positive)
    k_pos = min(len(pos), n // 2 if stage == "tumor" else int(round(n * len(pos) / len(pipe))))
    rows = np.concatenate([rng.choice(pos, k_pos, replace=False) if k_pos else np.zeros(0, int),
                           rng.choice(neg, min(len(neg), n - k_pos), replace=False)]).astype(int)
    x, _ = pipe.batch(np.sort(rows))
    return np.rint(x * 255).astype(np.uint8), [int(r) for r in np.sort(rows)]


def _load_or_make_calibration(folder: Path, meta: dict, dataset: str, train: list, pre, n: int, seed: int,
                              recalibrate: bool) -> tuple[np.ndarray, dict]:
    path = folder / CALIBRATION_FILE
    if path.is_file() and not recalibrate:
        try:
            with np.load(path) as z:
                x8 = z["x"]
            if x8.ndim == 4 and x8.shape[1:] == (pre.size, pre.size, 3) and x8.dtype == np.uint8:
                return x8, {"file": CALIBRATION_FILE, "slices": int(len(x8)), "reused": True}
        except (OSError, ValueError, KeyError):
            pass  # unreadable: made again below
    x8, rows = calibration_inputs(dataset, train, cast("Stage", meta.get("stage") or "liver"), pre, n, seed)
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, x=x8, rows=np.array(rows))
    return x8, {"file": CALIBRATION_FILE, "slices": int(len(x8)), "patients": list(train), "seed": seed,
                "reused": False}


def case_dice(sess, dataset: str, case_id: str, stage: Stage, pre, threshold: float, batch: int = 16) -> float:
    """3D Dice of one model on one case at the model's input grid (the training pipeline's targets)."""
    try:
        pipe = eval_pipeline(dataset, [case_id], stage, pre)
    except Exception as exc:  # e.g. a tumour-stage case without liver
        raise ModelError(f"{dataset}/{case_id}: cannot prepare validation slices ({one_line(exc, 100)})") from None
    preds, truths = [], []
    for i in range(0, len(pipe), batch):
        x, y = pipe.batch(np.arange(i, min(i + batch, len(pipe))))
        preds.append(run_session(sess, x) > threshold)
        truths.append(y[..., 0] > 0.5)
    return dice(np.concatenate(preds), np.concatenate(truths))


def quantize_int8(path: str | os.PathLike, *, dataset: str | None = None, train_cases: Sequence[str] = (),
                  val_cases: Sequence[str] = (), calibration: np.ndarray | None = None,
                  n_slices: int = CALIBRATION_SLICES, seed: int = 0, recalibrate: bool = False,
                  tolerance: float = DICE_TOLERANCE, progress: ProgressFn | None = None,
                  cancel: CancelToken | None = None) -> dict:
    """Quantise ``model.onnx`` of a model folder to ``model.int8.onnx`` and gate it on Dice.

    Args:
        path: the run / model folder (``model.onnx`` must exist: :func:`export_onnx`).
        dataset, train_cases, val_cases: override model.json's ``data`` (e.g. a moved dataset).
        calibration: float32 [N, S, S, C] inputs in [0, 1] to calibrate with instead of
            the training slices (stored as the run's calibration).
        recalibrate: draw the calibration slices again instead of reusing calibration.npz.

    Returns:
        The ``"int8"`` record written into model.json; ``validated`` says whether it passed.

    Raises:
        ModelError: no ONNX model, no data to calibrate or validate on, quantisation failed.
    """
    folder = model_folder(path)
    meta = read_card(folder)
    if not (folder / ONNX_FILE).is_file():
        raise ModelError(f"{folder}: no {ONNX_FILE} to quantise (export it first: liverseg export-onnx)")
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ModelError("onnxruntime (with its quantization tools) is not installed") from None
    pre = Preprocessing.from_dict(meta["preprocessing"])
    stage, threshold = cast("Stage", meta.get("stage") or "liver"), float(meta.get("threshold", 0.5))
    dataset, train, val = _data_source(meta, folder, dataset, train_cases, val_cases)
    t0 = time.perf_counter()
    report(progress, "int8", 0, 3 + len(val), "calibration slices")
    if calibration is not None:
        x = np.asarray(calibration, np.float32)
        if x.ndim != 4 or x.shape[1:] != (pre.size, pre.size, 3):
            raise ModelError(f"calibration inputs of shape {x.shape}; expected (N, {pre.size}, {pre.size}, 3)")
        with atomic_open(folder / CALIBRATION_FILE, "wb") as fh:
            np.savez_compressed(fh, x=np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8))
        calib = {"file": CALIBRATION_FILE, "slices": int(len(x)), "source": "given"}
    else:
        x8, calib = _load_or_make_calibration(folder, meta, dataset, train, pre, n_slices, seed, recalibrate)
        x = np.divide(x8, np.float32(255), dtype=np.float32)
    check(cancel)

    sess_fp32 = open_session(folder / ONNX_FILE, pre.size)
    input_name = sess_fp32.get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{input_name: x[i:i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self.items, None)

    report(progress, "int8", 1, 3 + len(val), "quantising")
    final = folder / INT8_FILE
    with temp_beside(final, ".pre.onnx") as prep, temp_beside(final) as tmp:
        try:
            quant_pre_process(str(folder / ONNX_FILE), prep, skip_symbolic_shape=True)
            quantize_static(prep, tmp, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                            calibrate_method=CalibrationMethod.Percentile)
        except Exception as exc:
            raise ModelError(f"{folder}: int8 quantisation failed ({one_line(exc, 200)})") from None
        check(cancel)
        sess_int8 = open_session(tmp, pre.size)
        cases = {}
        for i, cid in enumerate(val):
            report(progress, "int8", 2 + i, 3 + len(val), f"Dice check on {cid}")
            check(cancel)
            cases[cid] = [round(case_dice(s, dataset, cid, stage, pre, threshold), 5) for s in (sess_fp32, sess_int8)]
        forget_int8(folder)  # the old record must not vouch for the new file
        _fsync_replace(tmp, final)
    worst = max(abs(a - b) for a, b in cases.values())
    passed = bool(worst <= tolerance)
    record = {"file": INT8_FILE, "validated": passed, "calibration": calib, "scheme": QUANT_SCHEME,
              "gate": {"metric": "per-case Dice on the validation patients, fp32 vs int8", "tolerance": tolerance,
                       "cases": cases, "max_difference": round(worst, 5),
                       "mean_fp32": round(float(np.mean([a for a, _ in cases.values()])), 5),
                       "mean_int8": round(float(np.mean([b for _, b in cases.values()])), 5)},
              "seconds": round(time.perf_counter() - t0, 2), "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    update_card(folder, int8=record)
    report(progress, "int8", 3 + len(val), 3 + len(val),
           f"int8 {'validated' if passed else 'REFUSED'}: largest per-case Dice difference {worst:.4f}")
    return record
