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
        window.files.open_demo()
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
        window.files.open_demo()
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
        window.files.open_path(str(p17_extracted), choose=lambda series: 0)
    assert window.viewer.axial.hu.shape == (119, 512, 512)
    assert window.viewer.axial.ct_item.width() == 512
    assert window.files.recent()[0] == str(p17_extracted)


def test_series_chooser_is_asked(window, qtbot, tmp_path):
    from tests.core.factory import hu_volume, write_series
    write_series(tmp_path / "a", hu_volume(4, 16), uid_key="one")
    write_series(tmp_path / "b", hu_volume(6, 16), uid_key="two")
    asked = []

    def choose(series):
        asked.append([s.n_slices for s in series])
        return 1
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.files.open_path(str(tmp_path), choose=choose)
    assert asked == [[6, 4]] and window.state.study.shape == (4, 16, 16)


def test_broken_folder_gives_a_dialog(window, qtbot, tmp_path):
    (tmp_path / "junk.txt").write_text("not dicom")
    with qtbot.waitSignal(window.jobFailed, timeout=30000) as blocker:
        window.files.open_path(str(tmp_path))
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


def _viewer(qtbot, shape=(12, 20, 16)):
    from app.widgets.slice_view import OrthoViewer
    v = OrthoViewer()
    qtbot.addWidget(v)
    hu = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    label = np.zeros(shape, np.uint8)
    label[3:9, 5:15, 4:12] = 1
    v.set_study(hu, (2.5, 0.8, 0.8), label, label.copy())
    return v


def _count_draws(v):
    """{axis: [CT image updates, overlay updates]}, counted from now."""
    counts = {}
    for view in v.views:
        counts[view.axis] = n = [0, 0]
        for i, item in enumerate((view.ct_item, view.ov_item)):
            def counted(*a, _set=item.setImage, _i=i, _n=n, **k):
                _n[_i] += 1
                return _set(*a, **k)
            item.setImage = counted
    return counts


def test_views_render_the_shared_state(qtbot):
    v = _viewer(qtbot)
    s = v.state
    assert all(view.state is s for view in v.views)
    assert v.cursor == s.cursor == (6, 10, 8) and [view.index for view in v.views] == [6, 10, 8]
    s.set_index(0, 2)  # a change in the model shows in the widgets
    assert v.axial.index == 2 and v.axial.slider.value() == 2 and v.axial.pos_label.text() == "3/12"
    np.testing.assert_array_equal(v.axial.ct_item.image, v.axial.hu[2])
    assert v.coronal.hline.value() == pytest.approx((12 - 1 - 2 + 0.5) * 2.5)
    s.apply_preset("Bone 2500/480")
    assert all(tuple(view.ct_item.levels) == pytest.approx((-770, 1730)) for view in v.views)
    s.set_mode("reference")
    assert all(view.mode == "reference" for view in v.views)
    s.set_overlay("liver", alpha=40)
    assert all(view.ov_item.lut[1][3] == 40 for view in v.views)
    v.sagittal.slider.setValue(3)  # and the widgets write the user's changes into it
    assert s.cursor == (2, 10, 3)
    qtbot.keyClick(v.coronal, Qt.Key.Key_PageUp)
    assert s.cursor == (2, 19, 3)  # clamped to the volume
    v.set_cursor(99, -4, 7)
    assert v.cursor == (11, 0, 7) and [view.index for view in v.views] == [11, 0, 7]
    v.axial.windowDragged.emit(4.0, 2.0)
    assert s.window == pytest.approx((478.0, 2508.0)) and v.window == s.window


def test_one_draw_per_change(qtbot):
    v = _viewer(qtbot)
    n = _count_draws(v)
    v.axial.set_index(v.axial.index + 1)  # one image update and one overlay redraw, in that view only
    assert n == {0: [1, 1], 1: [0, 0], 2: [0, 0]}
    v.axial.set_index(v.axial.index)
    v.set_mode("prediction")  # unchanged: nothing to draw
    assert n == {0: [1, 1], 1: [0, 0], 2: [0, 0]}
    n = _count_draws(v)
    v.set_labels(v.axial.label, v.axial.reference, mode="outlines")  # a new mode with new labels
    assert n == {0: [0, 1], 1: [0, 1], 2: [0, 1]}
    v.set_labels(v.axial.label, v.axial.reference, mode="outlines")  # the same mode: still one redraw
    assert n == {0: [0, 2], 1: [0, 2], 2: [0, 2]}
    v.set_labels(None, v.axial.reference)
    assert n == {0: [0, 3], 1: [0, 3], 2: [0, 3]} and v.axial.mode == "outlines"
    n = _count_draws(v)
    v.set_cursor(1, 2, v.cursor[2])  # two views change slice, the third only its crosshair
    assert n == {0: [1, 1], 1: [1, 1], 2: [0, 0]}
    n = _count_draws(v)
    v.set_window(100, 300)  # new levels (pyqtgraph re-renders the CT item), no overlay redraw
    assert n == {0: [1, 0], 1: [1, 0], 2: [1, 0]}
    v.set_overlay("tumour", visible=False)
    assert n == {0: [1, 1], 1: [1, 1], 2: [1, 1]} and v.axial.ov_item.lut[2][3] == 0


def test_display_panel_bound_to_the_state(qtbot):
    from app.widgets.display_panel import DisplayPanel
    v = _viewer(qtbot)
    d = DisplayPanel()
    qtbot.addWidget(d)
    d.bind(v.state)
    emitted = []
    d.modeChanged.connect(emitted.append)
    d.mode.setCurrentText("Reference (ground truth)")  # the combo writes into the state
    assert v.state.mode == "reference" and v.axial.mode == "reference" and emitted == ["reference"]
    d.preset.setCurrentText("Liver 150/90")
    assert v.window == (90.0, 150.0) and d.wl_label.text().startswith("W 150  L 90")
    d.boxes["liver"].setChecked(False)
    assert v.state.alpha("liver") == 0 and v.axial.ov_item.lut[1][3] == 0
    v.set_mode("outlines")  # and shows what changed elsewhere, without emitting
    v.axial.windowDragged.emit(10.0, 0.0)
    v.set_overlay("tumour", alpha=12)
    assert d.mode.currentText() == "Segmentation + reference outlines" and emitted == ["reference"]
    assert d.wl_label.text().startswith("W 170  L 90") and d.alphas["tumour"].value() == 12
