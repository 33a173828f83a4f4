"""*Add model file...* accepts a shared model zip (liverseg export-model): it is
installed into the user's models folder and selected; a refused zip shows its one-line error."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMessageBox

from core.catalog.model_share import export_model
from tests.core.catalog.test_model_share import dummy_run


def test_add_model_imports_a_zip_and_selects_it(qtbot, tmp_path, monkeypatch, isolated_user_dirs):
    from app.widgets.segment_panel import SegmentPanel
    panel = SegmentPanel()
    qtbot.addWidget(panel)
    z = export_model(dummy_run(tmp_path / "run"), tmp_path / "panel-lab-liver.zip")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(z), ""))
    panel._add_model()
    installed = isolated_user_dirs / "user-models" / "panel-lab-liver" / "model.keras"
    assert installed.is_file() and panel.liver.currentData().path == str(installed)
    assert panel.liver.currentText().startswith("[lab] test liver: liver, 32 px")

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a: asked.append(a) or QMessageBox.StandardButton.No)
    assert panel.import_zip(str(z)) is None and len(asked) == 1  # installed already: asked, kept
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    assert panel.import_zip(str(z)) == str(installed)  # replaced

    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    assert panel.import_zip(str(tmp_path / "broken.zip")) is None
    assert "broken.zip: not a readable zip archive" in panel.errorBox.text()
    assert not (isolated_user_dirs / "user-models" / "broken").exists()
