"""The lite edition (no Keras): what the lite bundle leaves out, and the clear one-line
refusals when Keras is missing (simulated in a subprocess with ``sys.modules["keras"] = None``).
Fast: no bundle is built (tests/test_installer.py builds and runs both)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "resources" / "models"


def test_lite_lists_leave_the_training_stack_out():
    import build_installer as b
    lite, full = b.variant_lists("lite"), b.variant_lists("cpu")
    for pkg in ("tensorflow", "keras", "jax", "tf2onnx", "onnx", "torch", "h5py", "tensorboard"):
        assert pkg in lite["excludes"], pkg
        assert pkg not in full["excludes"] or pkg in ("jax", "torch"), pkg
    for mod in ("core.training.trainer", "core.training.recipe", "core.training.onnx_export", "core.training.quantize"):
        assert mod in lite["excludes"]  # training-only code is never pulled in as a hidden import
    for key in ("collect_submodules", "collect_data", "copy_metadata"):  # nor collected by name
        bad = [n for n in lite[key] if n.replace("-", "_").split(".")[0] in
               ("tensorflow", "keras", "tf2onnx", "onnx", "jax", "torch", "h5py")]
        assert not bad, (key, bad)
    assert "onnxruntime" in lite["copy_metadata"] and "onnxruntime" not in lite["excludes"]
    assert full == {"excludes": b.EXCLUDES, "collect_submodules": b.COLLECT_SUBMODULES,
                    "collect_data": b.COLLECT_DATA, "copy_metadata": b.COPY_METADATA}  # full unchanged
    assert (b.suffix("cpu"), b.suffix("full"), b.suffix("lite")) == ("", "", "-lite")
    assert b.bundle_name("cpu") == "LiverSegStudio" and b.bundle_name("lite") == "LiverSegStudio-lite"
    assert "resources/models/*/model.keras" in b.lite.PRUNE  # the ONNX files and cards stay


def test_not_in_edition_message_is_one_line_with_where_to_get_the_full_one():
    from core.runtime.edition import not_in_edition, onnx_only_error
    text = not_in_edition("Training")
    assert text.startswith("Training is not in this edition (LiverSeg Studio lite). The full edition: ")
    assert "\n" not in text and "without \"-lite\"" in text
    text = onnx_only_error("/models/x", "no ONNX export")
    assert text.startswith("/models/x: no ONNX export: ") and "runs ONNX models only" in text and "\n" not in text


def test_edition_follows_what_is_installed(monkeypatch):
    from core.runtime import edition
    assert edition.edition() == "full"  # the test environment has Keras
    monkeypatch.setitem(sys.modules, "keras", None)
    assert edition.edition() == "lite" and not edition.keras_available()
    with pytest.raises(edition.LiverSegError, match="not in this edition"):
        edition.require_full("liverseg train")


NO_KERAS = """
import json, sys
sys.modules["keras"] = None  # as in the lite bundle: Keras cannot be imported
from core.runtime.errors import ModelError
from core.inference.engines import choose_engine, current_meta
from core.inference.devices import Device
from core.model.io import load_seg_model
out = {}
for name, path, engine in json.loads(sys.argv[1]):
    try:
        m = load_seg_model(path, None)
        out[name] = choose_engine(engine, m.path, current_meta(m), Device("tensorflow")).engine
    except ModelError as exc:
        out[name] = "ModelError: " + str(exc)
out["keras_imported"] = any(k.split(".")[0] in ("keras", "tensorflow") and v is not None
                            for k, v in sys.modules.items())
print(json.dumps(out))
"""


def test_without_keras_a_model_without_onnx_files_is_refused_clearly(tmp_path):
    no_onnx = tmp_path / "no-onnx"
    no_onnx.mkdir()
    for f in ("model.keras", "model.json"):
        shutil.copy2(MODELS / "ircadb-liver" / f, no_onnx / f)
    onnx_only = tmp_path / "onnx-only"  # the lite bundle's models: no model.keras
    onnx_only.mkdir()
    for f in ("model.json", "model.onnx", "model.int8.onnx"):
        shutil.copy2(MODELS / "ircadb-liver" / f, onnx_only / f)
    cases = [("auto", str(MODELS / "ircadb-liver"), "auto"), ("keras", str(MODELS / "ircadb-liver"), "keras"),
             ("no_onnx", str(no_onnx), "auto"), ("onnx_only", str(onnx_only), "auto")]
    r = subprocess.run([sys.executable, "-c", NO_KERAS, json.dumps(cases)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["auto"] == "onnx-int8" and out["onnx_only"] == "onnx-int8"
    for name, folder in (("keras", MODELS / "ircadb-liver"), ("no_onnx", no_onnx)):
        msg = out[name]
        assert msg.startswith(f"ModelError: {folder}: ") and "runs ONNX models only" in msg, msg
        assert "\n" not in msg
    assert "no ONNX export" in out["no_onnx"]
    assert not out["keras_imported"]


def test_without_keras_the_training_commands_refuse_in_one_line(tmp_path):
    code = ("import sys; sys.modules['keras'] = None\n"
            "from app.cli import main\n"
            "sys.exit(main(sys.argv[1:]))")
    for cmd in (["train", str(tmp_path), "--stage", "liver", "--out", str(tmp_path / "run")],
                ["train-default", str(tmp_path), "--out", str(tmp_path / "work")], ["export-onnx", str(tmp_path)]):
        r = subprocess.run([sys.executable, "-c", code, *cmd], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, env={**__import__("os").environ, "XDG_CONFIG_HOME": str(tmp_path)})
        assert r.returncode == 2, (cmd, r.stderr[-2000:])
        full = importlib.import_module('core.runtime.edition').FULL_EDITION
        assert r.stderr.strip() == (f"error: liverseg {cmd[0]} is not in this edition (LiverSeg Studio lite). "
                                    f"The full edition: {full}.")


def test_a_saved_keras_engine_becomes_auto_without_keras(tmp_path, monkeypatch):
    from core.runtime.settings import Settings, load_settings, save_settings
    save_settings(Settings(engine="keras"), tmp_path / "s.json")
    assert load_settings(tmp_path / "s.json").engine == "keras"
    monkeypatch.setitem(sys.modules, "keras", None)
    assert load_settings(tmp_path / "s.json").engine == "auto"
