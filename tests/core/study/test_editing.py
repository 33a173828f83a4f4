"""core.study.editing (brush, eraser, undo/redo) and core.catalog.library (model discovery)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.catalog.library import describe, scan_models
from core.study.editing import LabelEditor


def test_brush_eraser_undo_redo():
    label = np.zeros((3, 20, 20), np.uint8)
    ed = LabelEditor(label)
    assert ed.paint(1, 10, 10, 3, "liver") > 0
    liver = int((label == 1).sum())
    assert liver == 29  # disc of radius 3 on the pixel grid
    ed.begin()
    ed.paint(1, 10, 10, 1.5, "tumor")
    ed.paint(1, 10, 11, 1.5, "tumor")
    assert ed.end()
    assert (label == 2).sum() > 0 and (label == 1).sum() + (label == 2).sum() == liver
    ed.paint(1, 10, 10, 3, "liver")  # liver brush keeps tumour
    assert (label == 2).sum() > 0
    ed.paint(1, 10, 10, 10, "erase")
    assert not label.any()
    assert ed.undo() and (label == 2).sum() > 0
    while ed.undo():
        pass
    assert not label.any()
    assert ed.redo() and int((label == 1).sum()) == liver
    ed.paint(0, -50, -50, 2, "liver")  # outside: nothing
    assert ed.paint(5, 1, 1, 2, "liver") == 0
    with pytest.raises(ValueError):
        ed.paint(1, 1, 1, 1, "lung")


def test_undo_history_is_bounded():
    label = np.zeros((1, 10, 10), np.uint8)
    ed = LabelEditor(label, max_undo=3)
    for x in range(6):
        ed.paint(0, 5, x, 0.5, "liver")
    n = 0
    while ed.undo():
        n += 1
    assert n == 3


def test_library_describes_models(tmp_path, monkeypatch):
    d = tmp_path / "user" / "liver-run"
    d.mkdir(parents=True)
    (d / "model.keras").write_bytes(b"x")
    (d / "model.json").write_text(json.dumps({"stage": "liver", "input_size": 128, "date": "2026-11-26T10:00:00",
                                              "preprocessing": {"recipe": "window25d"}, "best": {"val_dice": 0.91},
                                              "label": ""}))
    (tmp_path / "legacy.h5").write_bytes(b"x")
    monkeypatch.setattr("core.catalog.library.user_models_dir", lambda: tmp_path / "user")
    monkeypatch.setattr("core.catalog.library.bundled_models_dir", lambda: tmp_path / "none")
    entries = scan_models([str(tmp_path / "legacy.h5")])
    assert [e.origin for e in entries] == ["user", "opened"]
    e = entries[0]
    assert (e.stage, e.input_size, e.recipe, e.val_dice, e.date) == ("liver", 128, "window25d", 0.91, "2026-11-26")
    assert "val Dice 0.910" in e.title
    assert entries[1].recipe == "notebook"
    assert describe(tmp_path / "missing.keras", "user") is None


def test_library_says_which_exports_a_model_has():
    from core.catalog.library import bundled_models_dir
    liver = describe(bundled_models_dir() / "demo-liver" / "model.keras", "bundled")
    tumour = describe(bundled_models_dir() / "demo-tumor" / "model.keras", "bundled")
    assert liver.exports == "ONNX + int8"  # the demo liver model's int8 version passed its Dice check
    assert tumour.exports == "ONNX (int8 refused)"  # the demo tumour model's did not
