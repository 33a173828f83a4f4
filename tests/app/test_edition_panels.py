"""The panels of the lite edition (no Keras): the Train tab says where to get the full
edition instead of showing its controls; the engine choice offers the ONNX engines only."""

from __future__ import annotations


def test_lite_train_panel_shows_the_note_instead_of_the_controls(qtbot, monkeypatch):
    monkeypatch.setattr("app.widgets.train_panel.keras_available", lambda: False)
    from app.widgets.train_panel import TrainPanel
    panel = TrainPanel()
    qtbot.addWidget(panel)
    assert panel.lite and panel.start_btn is None and not hasattr(panel, "dataset")
    assert panel.note.text().startswith("Training (and fine-tuning) is not in this edition (LiverSeg Studio lite). "
                                        "The full edition: ")
    panel.set_running(True)  # what the main window may still call: harmless
    panel.curves.stop()


def test_full_train_panel_keeps_its_controls(qtbot):
    from app.widgets.train_panel import TrainPanel
    panel = TrainPanel()
    qtbot.addWidget(panel)
    assert not panel.lite and panel.start_btn is not None


def test_lite_segment_panel_offers_onnx_engines_only(qtbot, monkeypatch):
    monkeypatch.setattr("app.widgets.segment_panel.keras_available", lambda: False)
    from app.widgets.segment_panel import SegmentPanel
    panel = SegmentPanel()
    qtbot.addWidget(panel)
    engines = [panel.engine.itemData(i) for i in range(panel.engine.count())]
    assert engines == ["auto", "onnx", "onnx-int8"]
    assert "ONNX models only" in panel.engine.toolTip()
    panel.set_engine("keras")  # a setting saved by the full edition
    assert panel.engine.currentData() == "auto"
