"""ONNX export, int8 quantisation with its Dice gate, and the engine choice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.inference.cascade import TumourFilters, segment
from core.inference.devices import Device
from core.inference.engines import EngineChoice, choose_engine, file_sha256
from core.model.io import ModelError, load_seg_model
from core.training.onnx_export import INT8_FILE, ONNX_FILE, export_onnx, open_session, phantom_inputs, run_session
from core.training.quantize import CALIBRATION_FILE, quantize_int8
from tests.core.models import cube_volume, threshold_model

keras = pytest.importorskip("keras")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx") if keras.backend.backend() == "tensorflow" else None
ROOT = Path(__file__).resolve().parents[3]
CPU = ["CPUExecutionProvider"]
TF_CPU, TF_GPU, TORCH_CPU = Device("tensorflow"), Device("tensorflow", gpu=True), Device("torch")


@pytest.fixture(scope="module")
def trained_run(tiny_dataset, tmp_path_factory):
    """A tiny liver run trained with the default end-of-training export."""
    from core.training.trainer import TrainConfig, train
    out = tmp_path_factory.mktemp("onnx-run") / "run"
    train(TrainConfig(dataset=str(tiny_dataset), out=str(out), epochs=2, batch_size=8, image_size=64,
                      base_filters=8, depth=3, val_fraction=0.34, batch_log_seconds=0.0))
    return out


@pytest.fixture()
def threshold_folder(tmp_path):
    """A model with a known, sharp output (a HU threshold between fat and soft tissue) exported to ONNX.

    (At 60 HU, in the middle of the liver's values, the gate rightly refuses int8: the 2 HU input
    steps of uint8 activations move enough liver voxels across such a sharp threshold.)"""
    folder = threshold_model(tmp_path / "m", "liver", -50, size=64)
    export_onnx(folder)
    return folder


def test_training_exports_onnx_and_a_checked_int8_model(trained_run):
    meta = json.loads((trained_run / "model.json").read_text())
    split = json.loads((trained_run / "split.json").read_text())
    for name in (ONNX_FILE, INT8_FILE, CALIBRATION_FILE):
        assert (trained_run / name).is_file(), name
    assert meta["onnx"]["max_abs_diff"] < 1e-4
    assert meta["onnx"]["keras_sha256"] == file_sha256(trained_run / "model.keras")
    # the equality check, done again here: Keras against ONNX Runtime on phantom slices
    seg = load_seg_model(trained_run, "liver")
    x = phantom_inputs(seg.pre, n=6, seed=3)
    ref = keras.ops.convert_to_numpy(seg.model.predict_on_batch(x))[..., 0]
    got = run_session(open_session(trained_run / ONNX_FILE, 64, CPU), x)
    assert np.abs(ref - got).max() < 1e-4
    q = meta["int8"]
    assert q["calibration"]["patients"] == split["train"]  # calibrated on its own training patients
    assert set(q["gate"]["cases"]) == set(split["val"])  # gated on its validation patients
    assert q["validated"] == (q["gate"]["max_difference"] <= 0.01)
    with np.load(trained_run / CALIBRATION_FILE) as z:
        assert z["x"].dtype == np.uint8 and z["x"].shape[1:] == (64, 64, 3) and len(z["x"]) == 32


def test_quantising_again_reuses_the_stored_calibration(trained_run):
    before = (trained_run / CALIBRATION_FILE).read_bytes()
    first = (trained_run / INT8_FILE).read_bytes()
    q = quantize_int8(trained_run)
    assert q["calibration"]["reused"] and (trained_run / CALIBRATION_FILE).read_bytes() == before
    assert (trained_run / INT8_FILE).read_bytes() == first  # same calibration, same model


def test_int8_gate_passes_then_refuses_a_broken_calibration(threshold_folder, tiny_dataset):
    data = dict(dataset=str(tiny_dataset), train_cases=["p0", "p1"], val_cases=["p2"])
    q = quantize_int8(threshold_folder, **data)
    assert q["validated"], q["gate"]
    meta = json.loads((threshold_folder / "model.json").read_text())
    assert choose_engine("auto", threshold_folder / "model.keras", meta, TF_CPU, CPU).engine == "onnx-int8"
    # calibrated on black slices only: the input range collapses and real slices saturate
    q = quantize_int8(threshold_folder, calibration=np.zeros((8, 64, 64, 3), np.float32), **data)
    assert not q["validated"] and q["gate"]["max_difference"] > 0.01
    meta = json.loads((threshold_folder / "model.json").read_text())
    assert meta["int8"]["validated"] is False
    c = choose_engine("auto", threshold_folder / "model.keras", meta, TF_CPU, CPU)
    assert c.engine == "onnx" and "refused by its Dice check" in c.reason
    with pytest.raises(ModelError, match="refused by its Dice check"):
        choose_engine("onnx-int8", threshold_folder / "model.keras", meta, TF_CPU, CPU)


def test_export_refused_when_onnx_disagrees(tmp_path, monkeypatch):
    folder = threshold_model(tmp_path / "m", "liver", 60, size=32)
    import core.training.onnx_export as ox
    real = ox.run_session
    monkeypatch.setattr(ox, "run_session", lambda s, x: real(s, x) + 1e-3)
    with pytest.raises(ModelError, match="differs from Keras"):
        export_onnx(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.keras"]  # nothing left behind


def test_quantise_without_data_or_onnx_is_a_clear_error(tmp_path, tiny_dataset):
    folder = threshold_model(tmp_path / "m", "liver", 60, size=64)
    with pytest.raises(ModelError, match="no model.onnx to quantise"):
        quantize_int8(folder)
    export_onnx(folder)
    with pytest.raises(ModelError, match="names no dataset"):
        quantize_int8(folder)
    with pytest.raises(ModelError, match="not in this dataset"):
        quantize_int8(folder, dataset=str(tiny_dataset), train_cases=["zz"], val_cases=["p2"])


def _files(tmp_path, onnx=True, int8=None, stale=False):
    d = tmp_path / "m"
    d.mkdir(exist_ok=True)
    (d / "model.keras").write_bytes(b"weights")
    meta = {}
    if onnx:
        (d / ONNX_FILE).write_bytes(b"x")
        meta["onnx"] = {"keras_sha256": "0" * 64 if stale else file_sha256(d / "model.keras")}
    if int8 is not None:
        (d / INT8_FILE).write_bytes(b"x")
        meta["int8"] = {"validated": int8, "gate": {"max_difference": 0.2, "tolerance": 0.01}}
    return d / "model.keras", meta


@pytest.mark.parametrize("requested, files, keras_dev, providers, engine, device", [
    ("auto", {}, TF_GPU, CPU, "keras", "Keras, tensorflow GPU"),
    ("auto", {"int8": True}, TORCH_CPU, ["CUDAExecutionProvider"] + CPU, "onnx", "ONNX Runtime fp32, CUDA GPU"),
    ("auto", {"int8": True}, TORCH_CPU, ["DmlExecutionProvider"] + CPU, "onnx", "ONNX Runtime fp32, DirectML GPU"),
    ("auto", {"int8": True}, TF_CPU, CPU, "onnx-int8", "ONNX Runtime int8, CPU"),
    ("auto", {"int8": False}, TF_CPU, CPU, "onnx", "ONNX Runtime fp32, CPU"),
    ("auto", {}, TF_CPU, CPU, "onnx", "ONNX Runtime fp32, CPU"),
    ("auto", {"onnx": False}, TF_CPU, CPU, "keras", "Keras, tensorflow CPU"),
    ("auto", {"stale": True, "int8": True}, TF_CPU, CPU, "keras", "Keras, tensorflow CPU"),
    ("auto", {"int8": True}, TF_CPU, [], "keras", "Keras, tensorflow CPU"),
    ("keras", {"int8": True}, TF_CPU, CPU, "keras", "Keras, tensorflow CPU"),
    ("onnx", {"int8": True}, TF_GPU, CPU, "onnx", "ONNX Runtime fp32, CPU"),
    ("onnx-int8", {"int8": True}, TF_GPU, CPU, "onnx-int8", "ONNX Runtime int8, CPU"),
])
def test_engine_selection(tmp_path, requested, files, keras_dev, providers, engine, device):
    model_file, meta = _files(tmp_path, **files)
    c = choose_engine(requested, model_file, meta, keras_dev, providers)
    assert isinstance(c, EngineChoice) and (c.engine, c.device) == (engine, device) and c.reason
    assert (c.file is None) == (engine == "keras")


@pytest.mark.parametrize("requested, files, providers, match", [
    ("onnx", {"onnx": False}, CPU, "no ONNX export"),
    ("onnx", {"stale": True}, CPU, "stale"),
    ("onnx", {}, [], "onnxruntime is not installed"),
    ("onnx-int8", {}, CPU, "no int8 model"),
    ("onnx-int8", {"int8": False}, CPU, "refused by its Dice check"),
    ("tensorrt", {}, CPU, "unknown engine"),
])
def test_engine_requests_that_cannot_run(tmp_path, requested, files, providers, match):
    model_file, meta = _files(tmp_path, **files)
    with pytest.raises(ModelError, match=match):
        choose_engine(requested, model_file, meta, TF_CPU, providers)


def test_cascade_gives_the_same_labels_on_every_engine(tmp_path, tiny_dataset):
    models = []
    for stage, hu in (("liver", 150), ("tumor", 260)):
        folder = threshold_model(tmp_path / stage, stage, hu, size=32)
        export_onnx(folder)
        quantize_int8(folder, dataset=str(tiny_dataset), train_cases=["p0", "p1"], val_cases=["p2"])
        models.append(load_seg_model(folder, stage))
    hu, truth = cube_volume()
    vol = SimpleNamespace(hu=hu, spacing=(2.0, 0.8, 0.8))
    labels = {}
    for engine in ("keras", "onnx", "onnx-int8", "auto"):
        seg = segment(vol, *models, engine=engine, tumour_filters=TumourFilters(min_ml=0.0))
        labels[engine] = seg.label
        assert set(seg.info["engines"]) == {"liver", "tumor"}
    # auto on this CPU: int8, unless it timed slower than fp32 on the study (core.inference.engines.ort.Int8Race)
    liver_engine = seg.info["engines"]["liver"]
    assert liver_engine == "ONNX Runtime int8, CPU" or "int8 not faster" in liver_engine
    for engine in ("onnx", "onnx-int8"):
        assert np.mean(labels[engine] != labels["keras"]) < 0.002, engine
    assert (labels["onnx"] == labels["keras"]).all()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_export_onnx_and_engine_flag(tmp_path, tiny_dataset):
    # its own liver and tumour models: the flag is tested, not the shipped models' int8 state
    folders = {}
    for stage, hu in (("liver", -50), ("tumor", 300)):
        folder = folders[stage] = threshold_model(tmp_path / stage, stage, hu, size=64)
        meta = json.loads((folder / "model.json").read_text())
        meta["data"] = {"dataset": str(tiny_dataset), "train_patients": ["p0", "p1"], "val_patients": ["p2"]}
        (folder / "model.json").write_text(json.dumps(meta))
        r = _cli("export-onnx", str(folder))
        assert r.returncode == 0, r.stderr
        assert "model.onnx written" in r.stdout and "p2: Dice fp32" in r.stdout and "validated" in r.stdout
    folder = folders["liver"]
    # predict from DICOM with each engine flag; the report says which engine and device ran
    import zipfile

    from core.synthetic.phantom import make_phantom, write_patient
    write_patient(make_phantom(5, 12, 64), tmp_path / "ph", 1)
    with zipfile.ZipFile(tmp_path / "ph" / "phantom-s5-1" / "PATIENT_DICOM.zip") as z:
        z.extractall(tmp_path / "ph")
    dicom = tmp_path / "ph" / "PATIENT_DICOM"
    for engine, want in (("onnx-int8", "ONNX Runtime int8, CPU"), ("keras", "Keras, tensorflow CPU")):
        rep = tmp_path / f"{engine}.json"
        r = _cli("predict", str(dicom), "--liver-model", str(folder), "--tumor-model", str(folders["tumor"]),
                 "--engine", engine, "--out", str(tmp_path / f"{engine}.nii.gz"), "--report", str(rep))
        assert r.returncode == 0, r.stderr
        engines = json.loads(rep.read_text())["engine"]["engines"]
        assert engines["liver"] == engines["tumor"] == want and want in r.stdout
        assert json.loads(rep.read_text())["liver_ml"] > 0
    r = _cli("predict", str(dicom), "--liver-model", str(tmp_path / "nowhere"), "--engine", "gpu-magic",
             "--out", str(tmp_path / "x.nii.gz"))
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_phantom_inputs_for_a_model_with_mm_neighbours():
    """The ONNX check's inputs for a model whose neighbours are in mm use the phantom's spacing."""
    from core.transforms.preprocess import Preprocessing
    x = phantom_inputs(Preprocessing(size=32, neighbour_mm=2.0), n=4)
    y = phantom_inputs(Preprocessing(size=32), n=4)
    assert x.shape == y.shape == (4, 32, 32, 3) and np.array_equal(x[..., 1], y[..., 1])
