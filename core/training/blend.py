"""Weight-space blending of a fine-tuned model with the model it started from (WiSE-FT).

A fine-tune on a few cases of one hospital moves the weights towards those cases and away from
what the base model knew of every other scanner. Interpolating the two weight sets,
``start + blend * (trained - start)``, keeps most of the gain and gives back most of what was
forgotten (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022): a fine-tune
starts from the base, so both lie in one basin of the loss and their average is a good model too.

Measured on one hospital's proxy (``bench/experiments/finetune_blend.py``, docs/MODELS.md): the
liver stage fine-tuned on three HCC-TACE-Seg patients, scored on the fourth and on 3D-IRCADb-01
patient 17, blend 0.8 kept the whole gain on the new patient and halved the loss on patient 17;
with the fourth patient turned round (HCC_007 next) 0.7 did a little better still, and is the
default (:data:`core.training.finetune.BLEND`).

The blend is applied once, to the run's best model (``model.keras``), before the threshold is
chosen and the ONNX files are written; the card records it (``blend``), so a resumed run that finds
no better epoch does not blend again, and one that saves a new best model blends that one.
"""

from __future__ import annotations

from pathlib import Path

from ..model import card as runs
from ..model.io import load_model, save_model_atomic


def blend_weights(start: list, trained: list, blend: float) -> list:
    """``start + blend * (trained - start)`` for each weight array (``blend`` 1: the trained ones)."""
    if len(start) != len(trained) or any(a.shape != b.shape for a, b in zip(start, trained, strict=True)):
        raise ValueError("blend: the two models' weights differ in number or shape (not one architecture)")
    return [a + blend * (b - a) if a.dtype.kind == "f" else b for a, b in zip(start, trained, strict=True)]


def blend_run_model(run: str | Path, start_model: str | Path, blend: float) -> bool:
    """Replace ``run``'s best model by its blend with ``start_model``; False when it already is one
    (the card's ``blend`` says so) or ``blend`` is 1."""
    run = Path(run)
    if blend >= 1.0 or runs.read_card(run).get("blend") == blend:
        return False
    model = load_model(run / runs.MODEL, compile=False)
    start = load_model(start_model, compile=False).get_weights()
    model.set_weights(blend_weights(start, model.get_weights(), blend))
    save_model_atomic(model, run / runs.MODEL, include_optimizer=False)
    runs.update_card(run, blend=blend, blend_start=str(start_model))
    return True
