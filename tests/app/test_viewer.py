"""The main window's viewer: demo study, scrolling, window/level, opening folders."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.widgets.slice_view import PRESETS


def test_demo_study_with_overlays(window, qtbot):
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.open_demo()
    view = window.view
    assert view.hu is not None and view.label is not None
    z = view.index
    np.testing.assert_array_equal(view.ct_item.image, view.hu[z])
    np.testing.assert_array_equal(view.ov_item.image, view.label[z])
    assert (view.label == 1).any() and (view.label == 2).any()
    lut = view.ov_item.lut
    assert tuple(lut[1][:3]) == (0, 220, 0) and tuple(lut[2][:3]) == (255, 40, 40)


def test_scroll_keys_slider_and_window(window, qtbot):
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.open_demo()
    view = window.view
    start = view.index
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert view.index == start + 1
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert view.index == start - 9
    view.slider.setValue(3)
    assert view.index == 3 and view.pos_label.text().startswith("slice 4/")
    window.preset.setCurrentText("Liver 150/90")
    assert tuple(view.ct_item.levels) == pytest.approx((90 - 75, 90 + 75))
    view.set_overlay("tumour", visible=False)
    assert view.ov_item.lut[2][3] == 0
    assert set(PRESETS) >= {"Abdomen 400/40", "Liver 150/90", "Bone 2500/480"}


def test_open_patient17(window, qtbot, p17_extracted):
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.open_path(str(p17_extracted / "PATIENT_DICOM"))
    assert window.view.hu.shape == (119, 512, 512)
    assert window.view.ct_item.width() == 512


def test_broken_folder_gives_a_dialog(window, qtbot, tmp_path):
    (tmp_path / "junk.txt").write_text("not dicom")
    with qtbot.waitSignal(window.jobFailed, timeout=30000) as blocker:
        window.open_path(str(tmp_path))
    message = blocker.args[0]
    assert "no image series" in message and str(tmp_path) in message
    assert window.errorBox.isVisible()
    assert "\n" not in window.errorBox.text()


def test_cli_gui_screenshot(tmp_path, demo_cache):
    """`liverseg gui --screenshot PNG --quit` renders the demo study and exits 0."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_STATE_HOME=str(tmp_path / "state"))
    shot = tmp_path / "shot.png"
    r = subprocess.run([sys.executable, "-m", "app", "gui", "--demo", "--screenshot", str(shot), "--quit"],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr
    from PySide6.QtGui import QImage
    img = QImage(str(shot))
    assert img.width() > 600 and img.height() > 400
