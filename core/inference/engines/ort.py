"""ONNX Runtime: the execution providers here, a checked session, and the runner (the same
:class:`core.inference.engines.runner.Runner` interface as the Keras runners)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...model.card import ONNX_FILE
from ...runtime.errors import ModelError, one_line
from ...runtime.jobs import check, report
from ...transforms.preprocess import stack_channels
from .verdicts import DISAGREES, INT8, SLOWER, load_verdict, save_verdict, verdict_key

log = logging.getLogger(__name__)

ASKED = "asked for"  # the reason of an engine the user named: run as named, not swapped for speed


def available_providers() -> list[str]:
    """ONNX Runtime's execution providers here ([] when onnxruntime is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def open_session(path: str | os.PathLike, size: int, providers: Sequence[str] | None = None,
                 threads: int = 0):
    """An ONNX Runtime session for a segmentation model, its shapes checked.

    Raises:
        ModelError: onnxruntime missing, the file unreadable, or shapes other than
            [B, size, size, 3] -> [B, size, size, 1].
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("onnxruntime is not installed (pip install onnxruntime)") from None
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX file")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    try:
        sess = ort.InferenceSession(str(path), opts, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"{path}: cannot load ONNX model ({one_line(exc, 200)})") from None
    ins, outs = sess.get_inputs(), sess.get_outputs()
    ishape = tuple(ins[0].shape) if len(ins) == 1 else ()
    oshape = tuple(outs[0].shape) if len(outs) == 1 else ()
    if len(ishape) != 4 or tuple(ishape[1:]) != (size, size, 3):
        raise ModelError(f"{path}: unexpected ONNX input shape {ishape}; expected (B, {size}, {size}, 3)")
    if len(oshape) != 4 or tuple(oshape[1:]) != (size, size, 1):
        raise ModelError(f"{path}: unexpected ONNX output shape {oshape}; expected (B, {size}, {size}, 1)")
    return sess


def run_session(sess, x: np.ndarray) -> np.ndarray:
    """Probabilities [B, S, S] for inputs [B, S, S, C]."""
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0][..., 0]


# An int8 model is checked once per model file and process on the study's own slices against
# its fp32 model: ONNX Runtime's u8s8 kernels saturate on x86 CPUs without VNNI (AVX2 only, e.g. AMD
# Zen 3 and many desktop Intel chips), where an int8 model quantised with full-range weights gives
# garbage (liver Dice 0.035 on the phantom). Above this share of disagreeing pixels (of the pixels
# either model calls positive, but of at least MIN_UNION_SHARE of the batch) the fp32 model runs.
INT8_MAX_DISAGREEMENT = 0.1
# The floor: a tumour model's middle batch may hold a handful of positive pixels (7 against 4 on
# patient 17, a validated int8 model), where a few boundary pixels are not a verdict on the model.
MIN_UNION_SHARE = 0.01


def int8_disagreement(p8: np.ndarray, p32: np.ndarray, threshold: float = 0.5) -> float:
    """Share of the pixels either model calls positive on which they disagree, the union counted
    as at least :data:`MIN_UNION_SHARE` of all pixels (0 when neither calls any)."""
    a, b = p8 > threshold, p32 > threshold
    union = max(float(np.count_nonzero(a | b)), MIN_UNION_SHARE * a.size)
    return float(np.count_nonzero(a ^ b)) / union if union else 0.0


class OrtRunner:
    """Calls an ONNX Runtime session on batches (a :class:`core.inference.engines.runner.Runner`).

    The runner opens its session(s) once and keeps them. An int8 model is first checked against
    its fp32 model on the middle batch of the first study it runs (:data:`INT8_MAX_DISAGREEMENT`);
    where they disagree the fp32 model runs from then on, and ``engine_text`` says so. Where they
    agree, the next four full batches alternate between the two models, timed (every output is
    kept: they agree), and the faster model runs the rest (:class:`Int8Race`). The verdict is kept
    for later processes (:mod:`core.inference.engines.verdicts`), which then open only the model that
    won; an explicitly asked int8 model runs unless it disagreed.
    """

    def __init__(self, seg_model, choice, batch_size: int):
        """``choice``: the :class:`core.inference.engines.EngineChoice` naming the ONNX file and providers."""
        self.m, self.batch, self.choice = seg_model, batch_size, choice
        self.engine_text = choice.device
        self.fp32 = Path(choice.file).with_name(ONNX_FILE) if choice.engine == "onnx-int8" else None
        self.int8_disagreement: float | None = None  # measured on the first study (int8 only)
        self.race: Int8Race | None = None  # int8 against fp32 on speed, after the check passed
        self.verdict_key: str | None = None  # where this CPU's verdict on the int8 model is kept
        if self.fp32 is not None and self.fp32.is_file() and self._known_verdict():
            return
        self.sess = open_session(choice.file, self.m.pre.size, choice.providers)

    def _known_verdict(self) -> bool:
        """Use an earlier process's verdict on this int8 model and CPU (:mod:`.verdicts`): open only the
        model that won, no check, no race. False when there is none (then this runner measures one)."""
        assert self.fp32 is not None, "int8 models only"
        try:
            self.verdict_key = verdict_key(self.choice.file, self.fp32)
        except OSError:
            return False
        rec = load_verdict(self.verdict_key)
        if rec is None:
            return False
        fp32, self.fp32 = self.fp32, None
        run_fp32 = rec["verdict"] == DISAGREES or (rec["verdict"] == SLOWER and self.choice.reason != ASKED)
        self.sess = open_session(fp32 if run_fp32 else self.choice.file, self.m.pre.size, self.choice.providers)
        if run_fp32:
            self.engine_text = ("ONNX Runtime fp32, CPU (" + ("int8 disagreed on this CPU, checked before"
                                if rec["verdict"] == DISAGREES else "int8 not faster on this CPU, timed before") + ")")
        return True

    def _remember(self, verdict: str, **details) -> None:
        if self.verdict_key is not None:
            save_verdict(self.verdict_key, verdict, model=self.choice.file, **details)

    def _check_int8(self, norm, zs: np.ndarray) -> None:
        """Run the fp32 model instead where the int8 one disagrees with it on this CPU."""
        if self.fp32 is None or not self.fp32.is_file() or not len(zs):
            return
        mid = zs[max(0, len(zs) // 2 - self.batch // 2):][:self.batch]
        x = stack_channels(norm, mid, self.m.pre)
        fp32 = open_session(self.fp32, self.m.pre.size, self.choice.providers)
        threshold = float(getattr(self.m, "threshold", 0.5))
        self.int8_disagreement = int8_disagreement(run_session(self.sess, x), run_session(fp32, x), threshold)
        if self.int8_disagreement > INT8_MAX_DISAGREEMENT:
            log.warning("%s: the int8 model disagrees with the fp32 one on %.0f %% of the positive pixels "
                        "on this CPU (no VNNI?): running the fp32 model", self.choice.file,
                        100 * self.int8_disagreement)
            self.sess = fp32
            self.engine_text = "ONNX Runtime fp32, CPU (int8 disagreed on this CPU)"
            self._remember(DISAGREES, disagreement=self.int8_disagreement)
        elif self.choice.reason != ASKED:  # "--engine onnx-int8" runs int8, faster or not
            self.race = Int8Race(self.sess, fp32)
        self.fp32 = None  # checked: once per runner

    def _run(self, x: np.ndarray) -> np.ndarray:
        race = self.race
        if race is None or len(x) < self.batch:
            return run_session(self.sess, x)
        y = race.run(x)
        if race.done:
            self.sess, self.race = race.winner, None
            seconds = (race.best(0), race.best(1))
            if race.winner is not race.int8:
                self.engine_text = (f"ONNX Runtime fp32, CPU (int8 not faster on this CPU: {race.best(0):.2f} s "
                                    f"against {race.best(1):.2f} s a batch)")
                self._remember(SLOWER, seconds=seconds, disagreement=self.int8_disagreement)
            else:
                self._remember(INT8, seconds=seconds, disagreement=self.int8_disagreement)
        return y

    def predict(self, norm: np.ndarray, zs: np.ndarray, cancel, progress, stage: str) -> np.ndarray:
        if self.fp32 is not None:
            self._check_int8(norm, zs)
        out = np.empty((len(zs),) + norm.shape[1:], np.float32)
        for i in range(0, len(zs), self.batch):
            check(cancel)
            part = zs[i:i + self.batch]
            out[i:i + len(part)] = self._run(stack_channels(norm, part, self.m.pre))
            report(progress, stage, i + len(part), len(zs))
        return out


class Int8Race:
    """Which of two agreeing sessions (int8, fp32) is faster on this CPU, timed on real batches.

    int8 is not faster everywhere: on x86 CPUs without VNNI ONNX Runtime's int8 convolutions ran
    as fast as fp32 or 1.3x slower (measured on AMD Zen 3), on VNNI CPUs about 2x faster. The calls
    alternate int8, fp32, int8, fp32 (both sessions warmed up by the agreement check), each timed;
    int8 wins only when its fastest call beat fp32's (the fastest: a busy machine slows some calls).
    """

    clock = staticmethod(time.perf_counter)
    ROUNDS = 2

    def __init__(self, int8, fp32):
        self.int8, self.fp32 = int8, fp32
        self.seconds: list[float] = []  # int8, fp32, int8, fp32, ...
        self.winner = None

    @property
    def done(self) -> bool:
        return self.winner is not None

    def best(self, which: int) -> float:
        """Fastest call of int8 (0) or fp32 (1)."""
        return min(self.seconds[which::2])

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.done:
            return run_session(self.winner, x)
        t = self.clock()
        y = run_session((self.int8, self.fp32)[len(self.seconds) % 2], x)
        self.seconds.append(self.clock() - t)
        if len(self.seconds) == 2 * self.ROUNDS:
            self.winner = self.int8 if self.best(0) < self.best(1) else self.fp32
        return y
