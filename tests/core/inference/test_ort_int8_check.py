"""core.inference.engines.ort: an int8 model that disagrees with its fp32 model on this CPU is not used."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.inference.engines.choice import EngineChoice
from core.inference.engines.ort import INT8_MAX_DISAGREEMENT, OrtRunner, int8_disagreement
from core.transforms.preprocess import Preprocessing

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_disagreement_share():
    a = np.array([[0.9, 0.9, 0.1, 0.1]])
    b = np.array([[0.9, 0.1, 0.9, 0.1]])
    assert int8_disagreement(a, a) == 0.0 and int8_disagreement(a, b) == pytest.approx(2 / 3)
    assert int8_disagreement(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


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


@pytest.mark.parametrize("int8_sign, falls_back", [(1.0, False), (-1.0, True)])
def test_int8_checked_against_fp32_on_the_study(tmp_path, int8_sign, falls_back):
    threshold_onnx(tmp_path / "model.onnx", 1.0)
    threshold_onnx(tmp_path / "model.int8.onnx", int8_sign)  # -1: a model that gets it all wrong here
    m = SimpleNamespace(pre=Preprocessing(size=16), threshold=0.5)
    choice = EngineChoice("onnx-int8", str(tmp_path / "model.int8.onnx"), ("CPUExecutionProvider",),
                          "ONNX Runtime int8, CPU", "test")
    norm = np.zeros((6, 16, 16), np.float32)
    norm[:, 4:12, 4:12] = 0.9
    runner = OrtRunner(m, choice, batch_size=4)
    out = runner.predict(norm, np.arange(6), None, None, "liver")
    assert ((out > 0.5) == (norm > 0.5)).all()  # either way the model that agrees with fp32 ran
    assert ("int8 disagreed" in runner.engine_text) == falls_back
    assert (runner.int8_disagreement > INT8_MAX_DISAGREEMENT) == falls_back
    checked = runner.int8_disagreement
    runner.int8_disagreement = None
    runner.predict(norm, np.arange(6), None, None, "liver")  # the runner checks once, then keeps its verdict
    assert runner.int8_disagreement is None and ("int8 disagreed" in runner.engine_text) == falls_back
    assert checked is not None
