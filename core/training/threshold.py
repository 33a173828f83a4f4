"""The decision threshold of a trained model, chosen on its own validation patients.

A model trained for minutes rather than hours is rarely calibrated: a tumour model's
probabilities on new patients often peak at 0.3-0.45, so the fixed 0.5 of the
notebooks throws its detections away. After training, the best model is run once
on the validation patients (the run's own split, never the test data), and the
threshold that gives the best mean per-case Dice (3D, at the model's input
resolution, over the validation cases that hold the structure) is written to
model.json, with the whole search, so that inference, evaluation, the ONNX check
and the int8 gate all use it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..model.card import MODEL, read_card, read_config, read_split, update_card
from ..model.io import load_model
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..runtime.ml_backend import load_keras
from ..transforms.preprocess import Preprocessing
from .loader import eval_pipeline

log = logging.getLogger(__name__)

GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(13))  # 0.2 .. 0.8
# Move away from the default only for a real gain: with a handful of validation patients a
# smaller one is noise (bench/benchmarks/train_quality.py: a liver model's validation Dice rose 0.891 ->
# 0.895 from 0.5 to 0.8 while its test Dice fell 0.912 -> 0.888).
MIN_GAIN = 0.01


def choose_threshold(probs: np.ndarray, targets: np.ndarray, row_case: np.ndarray,
                     grid=GRID, default: float = 0.5, min_gain: float = MIN_GAIN) -> dict:
    """The threshold of ``grid`` with the best mean per-case Dice, if it beats the default by ``min_gain``.

    Args:
        probs: float [N, S, S] probabilities; targets: [N, S, S] 0/1; row_case: [N] case of each slice.

    Returns:
        {"threshold", "grid", "val_dice" (mean per-case Dice per grid value), "cases"}; the
        default threshold (and an empty search) when no case holds the structure. Ties go to the
        value nearest the default.
    """
    cases = [c for c in np.unique(row_case) if targets[row_case == c].any()]
    if not cases:
        return {"threshold": default, "grid": [], "val_dice": [], "cases": 0,
                "reason": "no validation case holds the structure"}
    scores = []
    for t in grid:
        d = []
        for c in cases:
            p, g = probs[row_case == c] > t, targets[row_case == c] > 0
            inter = np.logical_and(p, g).sum()
            d.append(2.0 * inter / (p.sum() + g.sum()))
        scores.append(float(np.mean(d)))
    best = max(scores)
    ties = [t for t, s in zip(grid, scores, strict=True) if s >= best - 1e-6]
    chosen = min(ties, key=lambda t: abs(t - default))
    at_default = [s for t, s in zip(grid, scores, strict=True) if abs(t - default) < 1e-9]
    if at_default and best - at_default[0] < min_gain:
        chosen = default
    return {"threshold": float(chosen), "grid": list(grid), "val_dice": [round(s, 5) for s in scores],
            "cases": len(cases)}


def calibrate_threshold(run_dir, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                        batch_size: int = 16) -> dict:
    """Choose and record the threshold of a run's best model (``model.keras``) on its validation patients.

    Returns the search (see :func:`choose_threshold`); model.json gets ``threshold`` and
    ``threshold_search``.
    """
    run = Path(run_dir)
    meta, cfg, split = read_card(run), read_config(run), read_split(run)
    pre = Preprocessing.from_dict(meta["preprocessing"])
    pipe = eval_pipeline(cfg["dataset"], split["val"], meta["stage"], pre, cancel=cancel)
    keras = load_keras()
    model = load_model(run / MODEL, compile=False)
    n = len(pipe)
    probs = np.empty((n, pre.size, pre.size), np.float16)
    targets = np.empty((n, pre.size, pre.size), np.uint8)
    for i in range(0, n, batch_size):
        check(cancel)
        rows = np.arange(i, min(n, i + batch_size))
        x, y = pipe.batch(rows)
        probs[rows] = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(x)))[..., 0]
        targets[rows] = y[..., 0]
        report(progress, "threshold", int(rows[-1]) + 1, n)
    search = choose_threshold(probs.astype(np.float32), targets, pipe.row_case,
                              default=float(cfg.get("threshold", 0.5)))  # the run's own, not an earlier choice
    update_card(run, threshold=search["threshold"], threshold_search={**search, "val_patients": list(split["val"])})
    log.info("%s: threshold %.2f (mean per-case validation Dice %s)", run, search["threshold"],
             max(search["val_dice"]) if search["val_dice"] else "n/a")
    return search
