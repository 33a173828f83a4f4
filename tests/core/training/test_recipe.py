"""core.training.recipe and the model library: the default-model recipe end to end (tiny), installed, chosen."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from core.catalog.library import bundled_models_dir, default_models, describe, scan_models
from core.inference.devices import Device
from core.inference.engines import choose_engine
from core.model.io import load_seg_model
from core.synthetic.phantom import make_phantom, write_patient
from core.training.recipe import RecipeConfig, RecipeError, install_models, train_default_models

TINY = (("image_size", 32), ("base_filters", 4), ("epochs", 1), ("steps_per_epoch", 2), ("batch_size", 4))


@pytest.fixture(scope="module")
def ircadb_like(tmp_path_factory):
    """3D-IRCADb-01 as downloaded, in miniature: two patients with CT, two with their masks only."""
    root = tmp_path_factory.mktemp("ircadb") / "src"
    for i, seed in enumerate((51, 52, 53, 54), start=1):
        write_patient(make_phantom(seed, 10, 64), root, i, anatomy=True, ct=i <= 2)
    return root


def test_recipe_trains_both_stages_with_cards_and_installs_them(ircadb_like, tmp_path):
    work = tmp_path / "work"
    cfg = RecipeConfig(out=str(work), source=str(ircadb_like), exclude=("phantom-s51-1",),
                       val_cases=("phantom-s54-4",), export_onnx=False, overrides=TINY)
    events = []
    results = train_default_models(cfg, progress=events.append)
    assert set(results) == {"liver", "tumor"} and all(r.status == "completed" for r in results.values())
    for stage in ("liver", "tumor"):
        meta = json.loads((work / stage / "model.json").read_text())
        card = meta["card"]
        # trained on phantoms here: the card and the label say so (never "real", never 3Dircadb1.N)
        assert card["kind"] == "demo" and card["licence"] == "CC BY-NC-ND 4.0"
        assert card["case_sources"] == {c: "synthetic phantom" for c in ("phantom-s52-2", "phantom-s53-3",
                                                                         "phantom-s54-4")}
        assert card["train_ct_patients"] == ["phantom-s52-2"]  # patient 1 is excluded entirely
        assert card["train_labelmap_patients"] == ["phantom-s53-3"]
        assert card["val_labelmap_patients"] == ["phantom-s54-4"]
        assert "phantom-s51-1" not in meta["data"]["train_patients"] + meta["data"]["val_patients"]
        assert "not for clinical decisions" in card["intended_use"] and meta["label"].startswith("DEMO")
        assert meta["data"]["train_labelmaps"] == ["phantom-s53-3"] and meta["data"]["real_share"] > 0
        assert not (work / stage / "model.onnx").exists()  # export_onnx=False (tested in test_onnx.py)
        # the acquisition-independent input is saved with the model and read back
        assert meta["preprocessing"]["neighbour_mm"] == 2.0
        assert load_seg_model(work / stage, stage).pre.neighbour_mm == 2.0
        # the tumour stage brings a liver brighter than the rendered ones down to them
        assert load_seg_model(work / stage, stage).pre.liver_hu_max == (130.0 if stage == "tumor" else None)
    assert any(getattr(e, "stage", "") == "recipe" for e in events)
    # a second start without --resume is refused; with it, a finished run is not trained again
    with pytest.raises(RecipeError, match="use --resume"):
        train_default_models(cfg)
    again = train_default_models(cfg, resume=True)
    assert again["liver"].epochs_done == 1
    # resumed as `liverseg train-default --out WORK --resume` (no --exclude): the run's plan holds, and
    # the card still names the patient left out as left out
    bare = RecipeConfig(out=str(work), export_onnx=False, overrides=TINY)
    train_default_models(bare, resume=True)
    card = json.loads((work / "tumor" / "model.json").read_text())["card"]
    assert card["excluded_patients"] == ["phantom-s51-1"] and card["train_ct_patients"] == ["phantom-s52-2"]
    with pytest.raises(RecipeError, match=r"recipe.json: this run was started with exclude=\('phantom-s51-1',\)"):
        train_default_models(replace(bare, exclude=("phantom-s52-2",)), resume=True)
    with pytest.raises(RecipeError, match="this work folder was started with exclude"):
        train_default_models(bare)  # a new start in that folder with another plan
    # installed: the folder names, no calibration slices of licensed data, the default flag
    dest = tmp_path / "models"
    folders = install_models(work, dest)
    assert sorted(Path(f).name for f in folders.values()) == ["ircadb-liver", "ircadb-tumor"]
    assert not (dest / "ircadb-liver" / "calibration.npz").exists()
    meta = json.loads((dest / "ircadb-liver" / "model.json").read_text())
    assert meta["default"] is True and "not shipped" in meta["data"]["dataset"]
    e = describe(dest / "ircadb-liver" / "model.keras", "bundled")
    assert e.kind == "demo" and e.default and e.title.startswith("[default, DEMO, phantoms only] ircadb-liver")


def test_recipe_refusals(ircadb_like, tmp_path):
    with pytest.raises(RecipeError, match="cannot exclude"):
        train_default_models(RecipeConfig(out=str(tmp_path / "w"), source=str(ircadb_like),
                                          exclude=("phantom-s99-9",), overrides=TINY))
    with pytest.raises(RecipeError, match="no dataset yet"):
        train_default_models(RecipeConfig(out=str(tmp_path / "empty")))
    with pytest.raises(RecipeError, match="no trained liver model"):
        install_models(tmp_path / "nothing", tmp_path / "models")


def test_the_bundled_defaults_are_the_real_ct_models():
    """What the GUI's Segment and `liverseg predict` use without a model named."""
    liver, tumour = default_models()
    assert Path(liver.path).parent.name == "ircadb-liver" and Path(tumour.path).parent.name == "ircadb-tumor"
    for e in (liver, tumour):
        meta = json.loads(Path(e.path).with_name("model.json").read_text())
        card = meta["card"]
        assert e.kind == "real" and e.default and card["licence"].startswith("CC BY-NC-ND 4.0 (3D-IRCADb-01")
        # trained with HCC-TACE-Seg's silver series too (issue 39): named, attributed, weighted
        assert "CC BY 4.0 (HCC-TACE-Seg" in card["licence"]
        assert "10.7937/TCIA.5FNA-0924" in json.dumps(card["attribution"])
        assert card["label_quality"]["expert_ct"] == ["3Dircadb1.7", "3Dircadb1.17"] and card["excluded_patients"] == []
        silver = {c.split("_")[0] + "_" + c.split("_")[1] for c in card["label_quality"]["silver_ct"]}
        assert silver == {"HCC_006", "HCC_007", "HCC_009", "HCC_015"} and "weighting" in card
        assert set(card["train_ct_patients"]) == {"3Dircadb1.7", "3Dircadb1.17", *card["label_quality"]["silver_ct"]}
        assert (Path(e.path).parent / "model.int8.onnx").is_file() and meta["int8"]["gate"]["cases"]
    # Both int8 models passed their Dice gate (2026-12-07: 0.0015 and 0.0074 <= 0.01); a tumour model whose
    # int8 is refused runs its fp32 ONNX model on CPUs instead (docs/MODELS.md).
    assert json.loads(Path(liver.path).with_name("model.json").read_text())["int8"]["validated"]
    tumour_meta = json.loads(Path(tumour.path).with_name("model.json").read_text())
    assert choose_engine("auto", tumour.path, tumour_meta, Device("tensorflow")).engine == (
        "onnx-int8" if tumour_meta["int8"]["validated"] else "onnx")
    for e in (liver, tumour):
        assert Path(e.path).stat().st_size < 5e6  # a few MB
    entries = scan_models()
    assert entries[0].path == liver.path  # the defaults come first in the model lists
    demo = [e for e in entries if Path(e.path).parent.name.startswith("demo-")]
    assert demo and all(e.kind == "demo" and not e.default and "DEMO" in e.title for e in demo)
    assert (bundled_models_dir() / "demo-liver").is_dir()


def test_recipe_adds_the_hcc_tace_series_as_silver_ct_and_leaves_a_patient_out_whole(ircadb_like, tmp_path,
                                                                                      monkeypatch):
    """With --hcc the recipe unpacks the archives, imports each acquisition with its silver label, and
    says so in the card (label quality, weighting, CC BY 4.0 attribution); excluding HCC_9xx excludes
    all of that patient's volumes."""
    import tarfile

    import core.datasets.hcc_tace as H
    from core.io.dicom import load_series
    from core.io.export import write_nifti
    from tests.core.factory import write_series
    fake = (H.HccSeries("HCC_900_20000101_s4_acq2", "HCC_900", "4.000000-AP-1", 2, "arterial", 2.5),
            H.HccSeries("HCC_900_20000101_s4_acq3", "HCC_900", "4.000000-AP-1", 3, "portal-venous", 2.5),
            H.HccSeries("HCC_901_20000101_s2", "HCC_901", "2.000000-PRE-1", None, "unenhanced", 2.5))
    monkeypatch.setattr(H, "SERIES", fake)
    src, labels = tmp_path / "hcc", tmp_path / "labels"
    src.mkdir()
    labels.mkdir()
    trees = [tmp_path / "tree" / s.patient / "HCC-TACE-Seg" / s.patient / "01-01-2000-CT-1" / s.folder for s in fake]
    phantoms = [make_phantom(60 + k, 10, 64) for k in range(len(fake))]
    for k, (s, tree, c) in enumerate(zip(fake, trees, phantoms, strict=True)):
        write_series(tree, c.hu, name=f"a{k}", uid_key=s.patient, acquisition=s.acquisition)
    for s, tree, c in zip(fake, trees, phantoms, strict=True):
        write_nifti(labels / f"{s.name}.nii.gz", c.label, load_series(tree, acquisition=s.acquisition))
    for patient in ("HCC_900", "HCC_901"):
        with tarfile.open(src / f"{patient}.tar.xz", "w:xz") as tar:
            tar.add(tmp_path / "tree" / patient / "HCC-TACE-Seg", arcname="HCC-TACE-Seg")
    work = tmp_path / "work"
    cfg = RecipeConfig(out=str(work), source=str(ircadb_like), hcc=str(src), hcc_labels=str(labels),
                       exclude=("HCC_901",), val_cases=("phantom-s54-4",), stages=("liver",), export_onnx=False,
                       overrides=TINY)
    assert train_default_models(cfg)["liver"].status == "completed"
    meta = json.loads((work / "liver" / "model.json").read_text())
    card = meta["card"]
    assert card["label_quality"]["silver_ct"] == ["HCC_900_20000101_s4_acq2", "HCC_900_20000101_s4_acq3"]
    assert "HCC_901_20000101_s2" in card["excluded_patients"]
    assert "HCC_901_20000101_s2" not in meta["data"]["train_patients"]
    assert "CC BY 4.0 (HCC-TACE-Seg" in card["licence"] and "10.7937/TCIA.5FNA-0924" in json.dumps(card["attribution"])
    assert "50%" in card["weighting"] and meta["data"]["silver_share"] == 0.5
    assert "2 silver-labelled CT (CC BY 4.0)" in meta["label"]
    assert "arterial and unenhanced series too" in card["intended_use"]
    assert (work / "hcc-unpacked" / f"HCC_900{H.UNPACKED_MARK}").exists()
