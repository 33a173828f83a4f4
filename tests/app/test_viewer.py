"""The viewer: demo study, scrolling, window/level, three linked views, opening folders, errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.widgets.slice_view import PRESETS

from .conftest import wait_idle


def test_demo_study_with_reference_overlays(window, qtbot):
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.open_demo()
    ax = window.viewer.axial
    assert ax.hu is not None and ax.reference is not None and ax.mode == "reference"
    np.testing.assert_array_equal(ax.ct_item.image, ax.hu[ax.index])
    np.testing.assert_array_equal(ax.ov_item.image, ax.reference[ax.index])
    assert (ax.reference == 1).any() and (ax.reference == 2).any()
    lut = ax.ov_item.lut
    assert tuple(lut[1][:3]) == (0, 220, 0) and tuple(lut[2][:3]) == (255, 40, 40)
    wait_idle(qtbot, window)
    assert "lesion" in window.results.summary.text()


def test_scroll_window_level_and_linked_views(window, qtbot):
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.open_demo()
    v = window.viewer
    ax = v.axial
    start = ax.index
    qtbot.keyClick(ax, Qt.Key.Key_Up)
    assert ax.index == start + 1 and v.cursor[0] == start + 1
    qtbot.keyClick(ax, Qt.Key.Key_PageDown)
    assert ax.index == start - 9
    ax.slider.setValue(3)
    assert ax.index == 3 and ax.pos_label.text().startswith("4/")
    window.display.preset.setCurrentText("Liver 150/90")
    assert tuple(ax.ct_item.levels) == pytest.approx((90 - 75, 90 + 75))
    assert tuple(v.sagittal.ct_item.levels) == pytest.approx((15, 165))
    ax.windowDragged.emit(10.0, -5.0)  # right-drag: wider and higher
    c, w = ax.window
    assert w == pytest.approx(170) and c == pytest.approx(95)
    v.set_cursor(20, 100, 60)  # click in one view moves the others
    assert (v.axial.index, v.coronal.index, v.sagittal.index) == (20, 100, 60)
    assert v.coronal.vline.value() == pytest.approx(60.5 * v.coronal.spacing[2])
    v.set_overlay("tumour", visible=False)
    assert ax.ov_item.lut[2][3] == 0
    assert set(PRESETS) >= {"Abdomen 400/40", "Liver 150/90", "Bone 2500/480"}
    # aspect: coronal images are Z x X with z spacing on the rows
    rect = v.coronal.ct_item.mapRectToParent(v.coronal.ct_item.boundingRect())
    assert rect.height() == pytest.approx(ax.hu.shape[0] * v.coronal.spacing[0], rel=1e-3)


def test_open_patient17_first_slice_fast(window, qtbot, p17_extracted):
    t = {}

    def shown() -> None:
        t.setdefault("shown", time.perf_counter())
    window.studyLoaded.connect(shown)
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.open_path(str(p17_extracted), choose=lambda series: 0)
    assert window.viewer.axial.hu.shape == (119, 512, 512)
    assert window.viewer.axial.ct_item.width() == 512
    assert window.recent()[0] == str(p17_extracted)


def test_series_chooser_is_asked(window, qtbot, tmp_path):
    from tests.core.factory import hu_volume, write_series
    write_series(tmp_path / "a", hu_volume(4, 16), uid_key="one")
    write_series(tmp_path / "b", hu_volume(6, 16), uid_key="two")
    asked = []

    def choose(series):
        asked.append([s.n_slices for s in series])
        return 1
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.open_path(str(tmp_path), choose=choose)
    assert asked == [[6, 4]] and window.study.shape == (4, 16, 16)


def test_broken_folder_gives_a_dialog(window, qtbot, tmp_path):
    (tmp_path / "junk.txt").write_text("not dicom")
    with qtbot.waitSignal(window.jobFailed, timeout=30000) as blocker:
        window.open_path(str(tmp_path))
    message = blocker.args[0]
    assert "no image series" in message and str(tmp_path) in message
    assert window.errorBox.isVisible() and "\n" not in window.errorBox.text()


def test_cli_gui_screenshot(tmp_path):
    """`liverseg gui --screenshot PNG --quit` renders the demo study and exits 0."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    shot = tmp_path / "shot.png"
    r = subprocess.run([sys.executable, "-m", "app", "gui", "--demo", "--screenshot", str(shot), "--quit"],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr
    from PySide6.QtGui import QImage
    img = QImage(str(shot))
    assert img.width() > 600 and img.height() > 400
