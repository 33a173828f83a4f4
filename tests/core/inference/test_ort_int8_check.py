"""core.inference.engines.ort: an int8 model that disagrees with its fp32 model on this CPU is not used; of two
that agree, the faster runs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.inference.engines.choice import ASKED, EngineChoice
from core.inference.engines.ort import INT8_MAX_DISAGREEMENT, Int8Race, OrtRunner, int8_disagreement
from core.transforms.preprocess import Preprocessing

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_disagreement_share():
    a = np.array([[0.9, 0.9, 0.1, 0.1]])
    b = np.array([[0.9, 0.1, 0.9, 0.1]])
    assert int8_disagreement(a, a) == 0.0 and int8_disagreement(a, b) == pytest.approx(2 / 3)
    assert int8_disagreement(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


def test_disagreement_on_a_few_positive_pixels_is_counted_against_a_floor():
    """Patient 17's tumour model: 7 int8 against 4 fp32 pixels in a batch of 8 x 128 x 128 (0.9 of
    their union) is not garbage; half a batch's worth disagreeing is."""
    p32, p8 = np.zeros((8, 128, 128)), np.zeros((8, 128, 128))
    p32[0, 0, :4] = 1
    p8[0, 0, :7] = 1
    assert int8_disagreement(p8, p32) == pytest.approx(3 / (0.01 * p8.size))
    p8[:4] = 1
    assert int8_disagreement(p8, p32) > 0.99


def threshold_onnx(path, sign: float, size: int = 16) -> None:
    """sigmoid(sign * 60 * (middle channel - 0.5)): [B, S, S, 3] -> [B, S, S, 1]."""
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.array([[0.0], [sign * 60.0], [0.0]], np.float32), "w")
    b = numpy_helper.from_array(np.array([-sign * 30.0], np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
         helper.make_node("Sigmoid", ["a"], ["y"])], "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", size, size, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", size, size, 1])], [w, b])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def make_pair(folder, int8_sign=1.0):
    threshold_onnx(folder / "model.onnx", 1.0)
    threshold_onnx(folder / "model.int8.onnx", int8_sign)
    return SimpleNamespace(pre=Preprocessing(size=16), threshold=0.5)


def int8_choice(folder, reason="test"):
    return EngineChoice("onnx-int8", str(folder / "model.int8.onnx"), ("CPUExecutionProvider",),
                        "ONNX Runtime int8, CPU", reason)


def square_study(n=9):
    norm = np.zeros((n, 16, 16), np.float32)
    norm[:, 4:12, 4:12] = 0.9
    return norm


@pytest.mark.parametrize("int8_sign, falls_back", [(1.0, False), (-1.0, True)])
def test_int8_checked_against_fp32_on_the_study(tmp_path, int8_sign, falls_back):
    m = make_pair(tmp_path, int8_sign)  # -1: an int8 model that gets it all wrong here
    norm = square_study(6)
    runner = OrtRunner(m, int8_choice(tmp_path), batch_size=4)
    out = runner.predict(norm, np.arange(6), None, None, "liver")
    assert ((out > 0.5) == (norm > 0.5)).all()  # either way the model that agrees with fp32 ran
    assert ("int8 disagreed" in runner.engine_text) == falls_back
    assert (runner.int8_disagreement > INT8_MAX_DISAGREEMENT) == falls_back
    checked = runner.int8_disagreement
    runner.int8_disagreement = None
    runner.predict(norm, np.arange(6), None, None, "liver")  # the runner checks once, then keeps its verdict
    assert runner.int8_disagreement is None and ("int8 disagreed" in runner.engine_text) == falls_back
    assert checked is not None


class FakeSession:
    """run_session's view of an ONNX Runtime session: returns its input's middle channel."""

    def __init__(self, name):
        self.name, self.calls = name, 0

    def get_inputs(self):
        return [SimpleNamespace(name="x")]

    def run(self, _, feed):
        self.calls += 1
        return [feed["x"][..., 1:2]]


def ticks_for(durations):
    """Clock readings, two a call, for calls taking ``durations`` seconds."""
    return iter([t for i, d in enumerate(durations) for t in (10.0 * i, 10.0 * i + d)])


@pytest.mark.parametrize("calls, winner", [((0.1, 0.2, 0.15, 0.2), "int8"),  # int8 faster
                                           ((0.3, 0.2, 0.3, 0.25), "fp32"),  # int8 slower
                                           ((0.9, 0.2, 0.1, 0.2), "int8")])  # one slow call, a busy machine
def test_race_keeps_the_faster_model(monkeypatch, calls, winner):
    ticks = ticks_for(calls)
    monkeypatch.setattr(Int8Race, "clock", staticmethod(lambda: next(ticks)))
    s8, s32 = FakeSession("int8"), FakeSession("fp32")
    race = Int8Race(s8, s32)
    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    for _ in range(6):
        assert np.array_equal(race.run(x), x[..., 1])  # every call's output is used
    assert race.done and race.seconds == pytest.approx(list(calls))
    assert race.winner.name == winner and (s8.calls, s32.calls) == ((4, 2) if winner == "int8" else (2, 4))


@pytest.mark.parametrize("int8_faster, reason", [(True, "test"), (False, "test"), (False, ASKED)])
def test_runner_runs_the_faster_of_two_agreeing_models(tmp_path, monkeypatch, int8_faster, reason):
    """Unless int8 was asked for (--engine onnx-int8): then int8 runs, faster or not."""
    m = make_pair(tmp_path)
    ticks = ticks_for((0.1, 0.3, 0.12, 0.3) if int8_faster else (0.5, 0.3, 0.6, 0.35))
    monkeypatch.setattr(Int8Race, "clock", staticmethod(lambda: next(ticks)))
    norm = square_study(9)
    runner = OrtRunner(m, int8_choice(tmp_path, reason), batch_size=2)
    int8_sess = runner.sess
    out = runner.predict(norm, np.arange(9), None, None, "liver")
    assert ((out > 0.5) == (norm > 0.5)).all()
    assert runner.race is None  # decided within this study
    int8_runs = int8_faster or reason == ASKED
    assert (runner.sess is int8_sess) == int8_runs
    assert runner.engine_text == ("ONNX Runtime int8, CPU" if int8_runs else
                                  "ONNX Runtime fp32, CPU (int8 not faster on this CPU: 0.50 s against 0.30 s a batch)")


@pytest.mark.parametrize("int8_sign, int8_faster, verdict, text", [
    (-1.0, True, "int8 disagreed", "ONNX Runtime fp32, CPU (int8 disagreed on this CPU, checked before)"),
    (1.0, False, "int8 not faster", "ONNX Runtime fp32, CPU (int8 not faster on this CPU, timed before)"),
    (1.0, True, "int8", "ONNX Runtime int8, CPU")])
def test_a_later_runner_uses_the_kept_verdict_without_check_or_race(tmp_path, monkeypatch, int8_sign, int8_faster,
                                                                    verdict, text):
    """The first process checks and races and keeps the verdict; the next opens only the winner."""
    import core.inference.engines.ort as ort_mod
    from core.inference.engines import verdicts
    m = make_pair(tmp_path, int8_sign)
    ticks = ticks_for((0.1, 0.3, 0.12, 0.3) if int8_faster else (0.5, 0.3, 0.6, 0.35))
    monkeypatch.setattr(Int8Race, "clock", staticmethod(lambda: next(ticks)))
    first = OrtRunner(m, int8_choice(tmp_path), batch_size=2)
    first.predict(square_study(), np.arange(9), None, None, "liver")
    kept = json.loads(verdicts.verdicts_path().read_text())
    assert [r["verdict"] for r in kept.values()] == [verdict]
    rec = next(iter(kept.values()))
    assert rec["machine"] == verdicts.machine_id() and rec["model"] == str(tmp_path / "model.int8.onnx")
    assert (rec["seconds"] is None) == (verdict == "int8 disagreed")

    opened = []
    real_open = ort_mod.open_session
    monkeypatch.setattr(ort_mod, "open_session", lambda path, *a, **k: opened.append(Path(path).name) or
                        real_open(path, *a, **k))
    monkeypatch.setattr(ort_mod, "int8_disagreement", lambda *a: pytest.fail("checked again"))
    second = OrtRunner(m, int8_choice(tmp_path), batch_size=2)
    out = second.predict(square_study(), np.arange(9), None, None, "liver")
    assert ((out > 0.5) == (square_study() > 0.5)).all()
    assert opened == ["model.int8.onnx" if verdict == "int8" else "model.onnx"]  # one session, the winner's
    assert second.race is None and second.engine_text == text


def test_asked_int8_runs_after_a_slower_verdict_but_not_after_a_disagreement(tmp_path, monkeypatch):
    from core.inference.engines import verdicts
    m = make_pair(tmp_path)
    key = verdicts.verdict_key(tmp_path / "model.int8.onnx", tmp_path / "model.onnx")
    verdicts.save_verdict(key, verdicts.SLOWER, seconds=(0.5, 0.3))
    assert OrtRunner(m, int8_choice(tmp_path, ASKED), 2).engine_text == "ONNX Runtime int8, CPU"
    verdicts.save_verdict(key, verdicts.DISAGREES, disagreement=0.9)
    assert "int8 disagreed" in OrtRunner(m, int8_choice(tmp_path, ASKED), 2).engine_text


def test_verdict_key_follows_the_files_and_race_verdicts_expire(tmp_path):
    from core.inference.engines import verdicts
    make_pair(tmp_path)
    i8, f32 = tmp_path / "model.int8.onnx", tmp_path / "model.onnx"
    key = verdicts.verdict_key(i8, f32)
    assert verdicts.load_verdict(key) is None
    verdicts.save_verdict(key, verdicts.SLOWER, seconds=(0.5, 0.3))
    verdicts.save_verdict("other", verdicts.DISAGREES)
    t = json.loads(verdicts.verdicts_path().read_text())[key]["time"]
    assert verdicts.load_verdict(key, now=t + 29 * 86400)["verdict"] == verdicts.SLOWER
    assert verdicts.load_verdict(key, now=t + 31 * 86400) is None  # a race is re-measured now and then
    assert verdicts.load_verdict("other", now=t + 400 * 86400)["verdict"] == verdicts.DISAGREES
    threshold_onnx(i8, -1.0)  # a re-exported int8 model: another key
    assert verdicts.verdict_key(i8, f32) != key


def test_a_broken_verdict_file_is_an_empty_one(tmp_path):
    from core.inference.engines import verdicts
    m = make_pair(tmp_path)
    verdicts.verdicts_path().write_text("{not json")
    runner = OrtRunner(m, int8_choice(tmp_path), 2)
    assert runner.fp32 is not None  # no verdict: this runner checks
    for i in range(verdicts.MAX_ENTRIES + 5):
        verdicts.save_verdict(f"k{i}", verdicts.INT8)
    kept = json.loads(verdicts.verdicts_path().read_text())
    assert len(kept) == verdicts.MAX_ENTRIES and "k0" not in kept and f"k{verdicts.MAX_ENTRIES + 4}" in kept
