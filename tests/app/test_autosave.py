"""Crash recovery in the window: edits are saved in the background, and a new window opening the
same study is offered them back (Restore gives the same labels and review states; Discard and an
export remove them; a changed file is not offered another's work)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSettings

from core.study import autosave as au
from core.study.session import Segmented
from tests.core.io.test_volume_file import write_as
from tests.core.models import cube_volume

from .conftest import wait_idle


def _volume(tmp_path):
    """A CT file holding a liver with two lesions, and that label."""
    hu, label = cube_volume()
    hu[4:6, 36:40, 30:34], label[4:6, 36:40, 30:34] = 320, 2
    write_as(tmp_path / "ct.nii.gz", hu, "RAS")
    return str(tmp_path / "ct.nii.gz"), label


def _new_window(qtbot, tmp_path, name):
    from app.main_window import MainWindow
    win = MainWindow(QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat))
    win.confirm_close = False
    qtbot.addWidget(win)
    win.show()
    win.autosave.timer.setInterval(100)
    return win


def _settled(qtbot, win):
    """Jobs done, measurements shown, and the autosave written."""
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: not win.autosave.timer.isActive() and not win.autosave.busy, timeout=30000)


def _open(qtbot, win, path):
    with qtbot.waitSignal(win.studyLoaded, timeout=60000):
        win.files.open_path(path)
    _settled(qtbot, win)


def _answer(qtbot, win, button: str):
    box = win.autosave.box
    assert box is not None and box.isVisible()
    [b for b in box.buttons() if b.text() == button][0].click()


def _edit(qtbot, win):
    """Accept the larger lesion, reject the smaller, paint a stroke of liver."""
    _settled(qtbot, win)  # the lesion table is up to date
    res = win.results
    res.select(0)
    with qtbot.waitSignal(win.summaryUpdated, timeout=30000):
        win.review.review("accept")
    res.select(1)
    with qtbot.waitSignal(win.summaryUpdated, timeout=30000):
        win.review.review("reject")
    win.editing.set_tool("liver")
    with qtbot.waitSignal(win.summaryUpdated, timeout=30000):
        win.editing._stroke_started()
        win.editing._paint(1, 5.0, 5.0)
        win.editing._stroke_done()
    _settled(qtbot, win)


def test_edits_survive_a_crash_and_restore_in_a_new_window(qtbot, tmp_path, isolated_autosave):
    path, label = _volume(tmp_path)
    w = _new_window(qtbot, tmp_path, "first")
    _open(qtbot, w, path)
    assert w.autosave.box is None and not isolated_autosave.exists()  # nothing to offer, nothing saved yet
    with qtbot.waitSignal(w.autosave.saved, timeout=30000):  # after the segmentation
        w.segmentation.show_segmentation(Segmented(label.copy()), w.state.session)
    _edit(qtbot, w)
    reviews = [r.review for r in w.results.records]
    assert reviews == ["accepted"] and len(w.state.summary.rejected_lesions) == 1
    assert [p.name for p in isolated_autosave.iterdir()] == [au.slot_path(w.autosave._identity).name]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(au.SUFFIX)]  # never beside the study
    # the first window "crashes": it is never closed; a new one opens the same file
    w2 = _new_window(qtbot, tmp_path, "second")
    with qtbot.waitSignal(w2.autosave.offered, timeout=30000) as offer:
        w2.files.open_path(path)
    assert offer.args[0].startswith("An unsaved segmentation of this study from ")
    assert w2.state.study.label is None
    with qtbot.waitSignal(w2.autosave.restored, timeout=30000):
        _answer(qtbot, w2, "Restore")
    _settled(qtbot, w2)
    np.testing.assert_array_equal(w2.state.study.label, w.state.study.label)
    assert w2.state.study.label is not w.state.study.label and w2.state.editor.review == w.state.editor.review
    assert [r.review for r in w2.results.records] == reviews
    assert w2.state.summary.rejected_lesions == w.state.summary.rejected_lesions
    assert w2.state.summary.tumour_ml == w.state.summary.tumour_ml
    for win in (w, w2):
        win.jobs.cancel_all()


def test_export_and_discard_remove_the_recovery_and_a_changed_file_gets_none(qtbot, tmp_path, isolated_autosave):
    path, label = _volume(tmp_path)
    w = _new_window(qtbot, tmp_path, "first")
    _open(qtbot, w, path)
    w.segmentation.show_segmentation(Segmented(label.copy()), w.state.session)
    _settled(qtbot, w)
    ident = w.autosave._identity
    assert au.find(ident) is not None
    w.exports.export("nifti", str(tmp_path / "out" / "seg.nii.gz"))  # the user saved the work
    _settled(qtbot, w)
    assert au.find(ident) is None
    _edit(qtbot, w)  # unsaved again
    assert au.find(ident) is not None

    w2 = _new_window(qtbot, tmp_path, "second")
    with qtbot.waitSignal(w2.autosave.offered, timeout=30000):
        w2.files.open_path(path)
    _answer(qtbot, w2, "Discard")
    _settled(qtbot, w2)
    assert au.find(ident) is None and w2.state.study.label is None and not list(isolated_autosave.glob("*" + au.SUFFIX))

    w.editing._stroke_started()  # another edit in the first window saves again, for the old file
    w.editing._paint(2, 6.0, 6.0)
    w.editing._stroke_done()
    _settled(qtbot, w)
    assert au.find(ident) is not None
    hu, _ = cube_volume()
    write_as(tmp_path / "ct.nii.gz", hu + 1, "RAS")  # the file now holds another scan
    w3 = _new_window(qtbot, tmp_path, "third")
    _open(qtbot, w3, path)
    assert w3.autosave.box is None and w3.state.study.label is None  # nothing offered: not the same study
    for win in (w, w2, w3):
        win.jobs.cancel_all()


def test_closing_the_window_writes_the_pending_save(qtbot, tmp_path):
    path, label = _volume(tmp_path)
    w = _new_window(qtbot, tmp_path, "first")
    _open(qtbot, w, path)
    w.autosave.timer.setInterval(600000)  # the debounce has not run out when the user quits
    w.segmentation.show_segmentation(Segmented(label.copy()), w.state.session)
    wait_idle(qtbot, w)
    ident = w.autosave._identity
    assert w.autosave.timer.isActive() and au.find(ident) is None
    w.close()
    assert not w.autosave.busy
    np.testing.assert_array_equal(au.load(ident).label, label)
