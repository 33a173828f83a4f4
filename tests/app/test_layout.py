"""The views come first: a narrow tools panel by default, a draggable splitter, sizes remembered."""

from __future__ import annotations

from PySide6.QtCore import QSettings


def make_window(qtbot, ini):
    from app.main_window import MainWindow
    win = MainWindow(QSettings(str(ini), QSettings.Format.IniFormat))
    win.confirm_close = False
    qtbot.addWidget(win)
    return win


def test_panel_narrow_by_default_and_sizes_remembered(qtbot, tmp_path):
    ini = tmp_path / "settings.ini"
    win = make_window(qtbot, ini)
    win.resize(1600, 900)
    win.show()
    qtbot.waitExposed(win)
    viewer_w, panel_w = win.splitter.sizes()
    assert panel_w <= 0.3 * (viewer_w + panel_w), (viewer_w, panel_w)
    assert viewer_w > 2 * panel_w
    win.splitter.setSizes([1000, 600])  # the user drags the handle
    wanted = win.splitter.sizes()
    win.close()
    again = make_window(qtbot, ini)
    again.resize(1600, 900)  # (the offscreen test screen is smaller than the saved geometry)
    again.show()
    qtbot.waitExposed(again)
    assert abs(again.splitter.sizes()[1] - wanted[1]) <= 2, (again.splitter.sizes(), wanted)
    again.close()
