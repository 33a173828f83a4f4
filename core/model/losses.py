"""Losses and metrics in ``keras.ops`` only (no backend-specific code)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..runtime.ml_backend import load_keras

SMOOTH = 1.0


def _flat(y_true, y_pred):
    ops = load_keras().ops
    y_true = ops.cast(ops.reshape(y_true, (ops.shape(y_true)[0], -1)), "float32")
    y_pred = ops.cast(ops.reshape(y_pred, (ops.shape(y_pred)[0], -1)), "float32")
    return y_true, y_pred


def soft_dice_loss(y_true, y_pred):
    """1 - soft Dice over the whole batch (smoothed).

    Computed on all pixels of the batch together, not per slice: with per-slice
    Dice, the many slices without tumour reward predicting nothing (their loss
    is ~0 for an empty prediction) and tumour training collapses to empty output.
    """
    ops = load_keras().ops
    t, p = _flat(y_true, y_pred)
    inter = ops.sum(t * p)
    return 1.0 - (2.0 * inter + SMOOTH) / (ops.sum(t) + ops.sum(p) + SMOOTH)


def bce_dice_loss(y_true, y_pred):
    """Binary cross-entropy plus batch soft Dice loss."""
    ops = load_keras().ops
    t, p = _flat(y_true, y_pred)
    p = ops.clip(p, 1e-7, 1.0 - 1e-7)
    bce = -ops.mean(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p))
    return bce + soft_dice_loss(y_true, y_pred)


LOSSES = {"dice": soft_dice_loss, "bce_dice": bce_dice_loss}


@functools.cache
def make_metric_classes():
    """Keras metric classes (created lazily so importing this module does not import Keras)."""
    keras: Any = load_keras()  # Any: mypy then accepts its classes as bases
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="liverseg")
    class OverlapMetric(keras.metrics.Metric):
        """Dice or IoU of thresholded predictions, accumulated over all pixels seen (like one 3D case)."""

        def __init__(self, kind: str = "dice", threshold: float = 0.5, name=None, **kwargs):
            super().__init__(name=name or kind, **kwargs)
            self.kind, self.threshold = kind, threshold
            self.inter = self.add_variable(shape=(), initializer="zeros", name="inter")
            self.total = self.add_variable(shape=(), initializer="zeros", name="total")

        def update_state(self, y_true, y_pred, sample_weight=None):
            t = ops.cast(ops.greater(ops.cast(y_true, "float32"), 0.5), "float32")
            p = ops.cast(ops.greater(ops.cast(y_pred, "float32"), self.threshold), "float32")
            inter = ops.sum(t * p)
            self.inter.assign_add(inter)
            self.total.assign_add(ops.sum(t) + ops.sum(p) - (inter if self.kind == "iou" else 0.0))

        def result(self):
            num = self.inter * (2.0 if self.kind == "dice" else 1.0)
            return ops.where(self.total > 0, num / ops.maximum(self.total, 1e-9), 1.0)

        def reset_state(self):
            self.inter.assign(0.0)
            self.total.assign(0.0)

        def get_config(self):
            return {**super().get_config(), "kind": self.kind, "threshold": self.threshold}

    return OverlapMetric


def dice_metric(threshold: float = 0.5):
    return make_metric_classes()("dice", threshold)


def iou_metric(threshold: float = 0.5):
    return make_metric_classes()("iou", threshold)


def pull_towards(model, start_weights, strength: float) -> int:
    """L2-SP (Li et al., 2018): add ``strength * sum((w - w0)**2)`` over every kernel to the loss, ``w0``
    the weights training started from, so a fine-tune on a few cases stays near what the base model
    learned instead of forgetting it (biases and normalisation are left free). Applied per variable
    (``variable.regularizer``), in ``keras.ops``; not saved with the model, so a resumed run applies it
    again. Returns the number of variables pulled."""
    keras: Any = load_keras()  # Any: mypy then accepts its classes as bases
    ops = keras.ops

    class TowardsStart(keras.regularizers.Regularizer):
        def __init__(self, start):
            self.start = np.asarray(start, np.float32)

        def __call__(self, x):
            return strength * ops.sum(ops.square(ops.cast(x, "float32") - self.start))

        def get_config(self):
            return {}

    n = 0
    trainable = {id(v) for v in model.trainable_weights}
    for v, start in zip(model.weights, start_weights, strict=True):  # get_weights() order is model.weights order
        if id(v) in trainable and len(v.shape) > 1 and tuple(np.shape(start)) == tuple(v.shape):
            v.regularizer = TowardsStart(start)
            n += 1
    return n
