"""Sharing a model: ``export_model`` writes one zip, ``import_model`` checks it as an
untrusted archive (names, sizes, hashes, card) and installs it atomically; no Keras needed to import."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.catalog.model_share import MANIFEST, export_model, import_model, read_shared
from core.runtime.errors import ArchiveError, ModelError

ROOT = Path(__file__).resolve().parents[3]
PRE = {"recipe": "window25d", "window": [-100.0, 400.0], "size": 32, "channels": 3}


def card(**over) -> dict:
    return {"format": "liverseg-model", "version": 1, "stage": "liver", "input_size": 32, "preprocessing": PRE,
            "threshold": 0.5, "label": "[lab] test liver", **over}


def dummy_run(folder: Path, **over) -> Path:
    """A run folder with dummy model files and the run's own files, which are never shared."""
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"keras bytes")
    (folder / "model.onnx").write_bytes(b"onnx bytes" * 100)
    (folder / "model.json").write_text(json.dumps(card(**over)))
    for extra in ("config.json", "state.json", "metrics.jsonl", "last.keras"):
        (folder / extra).write_text("{}")
    (folder / "tensorboard").mkdir()
    return folder


def write_zip(path: Path, members: dict[str, bytes], manifest: dict | None = None) -> Path:
    """A model archive by hand: the manifest lists the members' true hashes unless given."""
    files = {n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in members.items()}
    manifest = manifest or {"format": "liverseg-model-share", "version": 1, "stage": "liver", "files": files}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MANIFEST, json.dumps(manifest))
        for n, b in members.items():
            zf.writestr(n, b)
    return path


def good_members(**over) -> dict[str, bytes]:
    return {"model.json": json.dumps(card(**over)).encode(), "model.keras": b"keras bytes"}


def assert_nothing_left(root: Path):
    assert not root.exists() or not any(root.iterdir()), list(root.iterdir())


def test_round_trip_shares_the_model_files_only(tmp_path):
    run = dummy_run(tmp_path / "run")
    out = export_model(run, tmp_path / "lab-liver.zip")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted([MANIFEST, "model.json", "model.keras", "model.onnx"])
        manifest = json.loads(zf.read(MANIFEST))
    assert manifest["stage"] == "liver" and manifest["label"] == "[lab] test liver"
    assert manifest["files"]["model.onnx"]["size"] == 1000
    with pytest.raises(ModelError, match="already exists"):
        export_model(run, out)
    export_model(run / "model.keras", out, force=True)  # the model file names its folder too
    with pytest.raises(ModelError, match="only a model folder"):
        export_model(run / "last.keras", tmp_path / "x.zip")

    model = import_model(out, tmp_path / "models")
    assert model == tmp_path / "models" / "lab-liver" / "model.keras"
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.json", "model.keras", "model.onnx"]
    for n in ("model.json", "model.keras", "model.onnx"):
        assert (model.parent / n).read_bytes() == (run / n).read_bytes()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["lab-liver"]  # no staging folder left
    other = import_model(out, tmp_path / "models", name="second copy")
    assert other.parent.name == "second copy"


def test_a_tampered_member_is_refused_and_nothing_is_written(tmp_path):
    run = dummy_run(tmp_path / "run")
    good = export_model(run, tmp_path / "good.zip")
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["model.onnx"] = members["model.onnx"].replace(b"onnx", b"evil")  # same size, own CRC
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    with pytest.raises(ModelError, match=r"model.onnx does not match its sha256") as exc:
        import_model(bad, tmp_path / "models")
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)
    assert_nothing_left(tmp_path / "models")  # the card and model.keras were staged, then removed


@pytest.mark.parametrize("name, match, error", [
    ("../evil", "'..' path component", ArchiveError),
    ("/abs/model.keras", "absolute path", ArchiveError),
    ("sub/model.keras", "unexpected member 'sub/model.keras'", ModelError),
    ("evil.py", "unexpected member 'evil.py'", ModelError),
])
def test_unsafe_or_unexpected_member_names_are_refused(tmp_path, name, match, error):
    z = write_zip(tmp_path / "m.zip", good_members())
    with zipfile.ZipFile(z, "a") as zf:
        zf.writestr(name, b"x")
    with pytest.raises(error, match=match):
        import_model(z, tmp_path / "models")
    assert_nothing_left(tmp_path / "models")


def test_a_manifest_listing_a_path_is_refused(tmp_path):
    members = {**good_members(), "../evil": b"x"}
    files = {n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in members.items()}
    z = tmp_path / "m.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(MANIFEST, json.dumps({"format": "liverseg-model-share", "version": 1, "stage": "liver",
                                          "files": files}))
        for n, b in good_members().items():
            zf.writestr(n, b)
    with pytest.raises(ModelError, match=r"lists '\.\./evil', not a model file"):
        import_model(z, tmp_path / "models")


def test_unknown_preprocessing_wrong_stage_and_bad_archives_are_refused(tmp_path):
    models = tmp_path / "models"
    cases = [
        (good_members(preprocessing={**PRE, "recipe": "magic"}), None, "unknown preprocessing.*'magic'"),
        (good_members(preprocessing={"window": [0, 1]}), None,
         "unknown preprocessing in the model card \\(no 'recipe'\\)"),
        (good_members(stage="tumor"), None, "the manifest says a liver model, its card a tumor model"),
        (good_members(stage="spleen"), None, "stage 'spleen' is neither liver nor tumor"),
        ({"model.json": b"{not json", "model.keras": b"k"}, None, "not readable JSON"),
        (good_members(), {"format": "something else"}, "is not a LiverSeg model manifest"),
        ({"model.keras": b"k"}, None, "lists no model.json"),
    ]
    for i, (members, manifest, match) in enumerate(cases):
        with pytest.raises(ModelError, match=match):
            import_model(write_zip(tmp_path / f"m{i}.zip", members, manifest), models)
    assert_nothing_left(models)
    (tmp_path / "plain.zip").write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match="not a readable zip archive"):
        import_model(tmp_path / "plain.zip", models)
    with zipfile.ZipFile(tmp_path / "bare.zip", "w") as zf:
        zf.writestr("model.keras", b"k")
    with pytest.raises(ModelError, match="no liverseg-model.json: not a LiverSeg model archive"):
        import_model(tmp_path / "bare.zip", models)
    with pytest.raises(ModelError, match="not a usable model name"):
        import_model(write_zip(tmp_path / "ok.zip", good_members()), models, name="../x")
    with pytest.raises(ModelError, match="unknown preprocessing"):  # export refuses what import would
        export_model(dummy_run(tmp_path / "badrun", preprocessing={"recipe": "magic"}), tmp_path / "b.zip")
    assert_nothing_left(models)


def test_an_installed_model_is_replaced_only_with_force(tmp_path):
    models = tmp_path / "models"
    z = write_zip(tmp_path / "lab.zip", good_members())
    first = import_model(z, models)
    (first.parent / "note.txt").write_text("the installed one")
    with pytest.raises(ModelError, match="installed already") as exc:
        import_model(z, models)
    assert str(models / "lab") in str(exc.value)
    assert (first.parent / "note.txt").exists()
    import_model(z, models, force=True)
    assert not (first.parent / "note.txt").exists() and first.read_bytes() == b"keras bytes"
    assert [p.name for p in models.iterdir()] == ["lab"]


IMPORT_WITHOUT_KERAS = """
import json, sys
sys.modules["keras"] = None  # as in the lite bundle: Keras cannot be imported
from core.catalog.model_share import import_model
from core.inference.engines import choose_engine, current_meta
from core.inference.devices import Device
from core.model.io import load_seg_model
path = import_model(sys.argv[1], sys.argv[2])
m = load_seg_model(path, "liver")
print(json.dumps({"engine": choose_engine("auto", m.path, current_meta(m), Device("tensorflow")).engine,
                  "heavy": sorted(k for k, v in sys.modules.items()
                                  if v is not None and k.split(".")[0] in ("keras", "tensorflow", "jax", "torch"))}))
"""


def test_the_lite_edition_imports_and_uses_a_shared_model(tmp_path):
    pytest.importorskip("onnxruntime")
    z = export_model(ROOT / "resources" / "models" / "demo-liver", tmp_path / "shared.zip")
    r = subprocess.run([sys.executable, "-c", IMPORT_WITHOUT_KERAS, str(z), str(tmp_path / "models")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert out == {"engine": "onnx-int8", "heavy": []}
    installed = tmp_path / "models" / "shared"
    assert sorted(p.name for p in installed.iterdir()) == ["calibration.npz", "model.int8.onnx", "model.json",
                                                           "model.keras", "model.onnx"]


def test_a_real_tiny_model_round_trips_and_loads(tmp_path):
    from core.model.card import write_card
    from core.model.io import load_seg_model, save_model_atomic
    from core.model.resunet import ResUNetConfig, build_resunet
    run = tmp_path / "run"
    run.mkdir()
    model = build_resunet(ResUNetConfig(input_size=32, base_filters=4, depth=2))
    save_model_atomic(model, run / "model.keras", include_optimizer=False)
    write_card(run, card(architecture={"name": "resunet", "base_filters": 4, "depth": 2}))
    installed = import_model(export_model(run, tmp_path / "tiny.zip"), tmp_path / "models")
    loaded = load_seg_model(installed, "liver")
    x = np.random.default_rng(0).random((2, 32, 32, 3), np.float32)
    np.testing.assert_allclose(loaded.model.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)
    assert loaded.pre.size == 32 and loaded.meta["label"] == "[lab] test liver"


def test_cli_export_and_import(tmp_path, monkeypatch, capsys):
    from app.cli import main
    monkeypatch.setattr("core.catalog.library.user_models_dir", lambda: tmp_path / "user-models")
    run = dummy_run(tmp_path / "run")
    z = tmp_path / "lab-liver.zip"
    assert main(["export-model", str(run), "--out", str(z)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {z}: liver model, model.keras, model.json, model.onnx")
    assert main(["import-model", str(z)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"installed {tmp_path / 'user-models' / 'lab-liver'}: [lab] test liver: liver, 32 px")
    assert main(["import-model", str(z)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "installed already" in err and "\n" not in err
    assert main(["import-model", str(z), "--name", "other", "--force"]) == 0
    assert main(["export-model", str(run), "--out", str(z)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert read_shared(z)["files"].keys() == {"model.keras", "model.json", "model.onnx"}
