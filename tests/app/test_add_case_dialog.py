"""*File > Add to training set...*: the corrected study becomes a case of a lab dataset; a second
time the user is asked before its case is replaced."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QAction

from core.datasets.dataset import list_cases, load_case
from core.datasets.lab_cases import default_lab_dataset
from core.study.session import Segmented

from .conftest import wait_idle


def action(window) -> QAction:
    return window.findChild(QAction, "addToTrainingSet")


def show_label(window, qtbot, label) -> None:
    window.segmentation.show_segmentation(Segmented(label, {"engines": {}, "device": "test"}), window.state.session)
    wait_idle(qtbot, window)


def add(window, qtbot, folder, who="Dr. Test"):
    action(window).trigger()
    dialog = window.training_set.add_case_dialog
    assert dialog.isVisible()
    dialog.set_dataset(str(folder))
    dialog.set_corrected_by(who)
    dialog.accept()
    wait_idle(qtbot, window)
    return dialog


def test_add_the_corrected_demo_study_then_replace_it(window, qtbot, tmp_path, monkeypatch):
    assert action(window) is not None and not action(window).isEnabled()  # no study yet
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.files.open_demo()
    wait_idle(qtbot, window)
    assert not action(window).isEnabled()  # a study, but no working label yet
    label = window.state.study.reference.copy()
    label[label.shape[0] // 2, :4, :4] = 2  # "corrected"
    show_label(window, qtbot, label)
    assert action(window).isEnabled()

    asked = []
    monkeypatch.setattr(window.training_set, "ask_replace", lambda cid, ds: asked.append(cid) or True)
    lab = tmp_path / "lab"
    add(window, qtbot, lab)
    assert not asked
    (cid,) = list_cases(lab)
    c = load_case(lab, cid)
    np.testing.assert_array_equal(c.label, label)
    np.testing.assert_array_equal(c.hu, window.state.study.hu)
    assert c.meta["corrected_by"] == "Dr. Test" and c.meta["kind"] == "lab"
    assert str(lab) in window.statusBar().currentMessage() and "1 case(s)" in window.statusBar().currentMessage()

    second = label.copy()
    second[second.shape[0] // 2, -4:, -4:] = 1
    window.state.session.study.label[:] = second  # as the brushes do
    dialog = add(window, qtbot, lab, who="Dr. Two")
    assert asked == [cid]
    assert list_cases(lab) == [cid]
    c = load_case(lab, cid)
    np.testing.assert_array_equal(c.label, second)
    assert c.meta["corrected_by"] == "Dr. Two"

    monkeypatch.setattr(window.training_set, "ask_replace", lambda cid, ds: asked.append(cid) and False)
    window.state.session.study.label[:] = label
    add(window, qtbot, lab, who="Dr. Three")
    assert len(asked) == 2 and "Not added" in window.statusBar().currentMessage()
    assert load_case(lab, cid).meta["corrected_by"] == "Dr. Two"  # kept

    action(window).trigger()  # the next dialog remembers the folder and the name
    assert window.training_set.add_case_dialog is not dialog
    again = window.training_set.add_case_dialog
    assert again.dataset() == str(lab) and again.corrected_by() == "Dr. Three"
    window.training_set.add_case_dialog.reject()


def test_the_dialog_defaults_and_refusals(window, qtbot, tmp_path):
    from PySide6.QtWidgets import QDialogButtonBox

    from app.widgets.add_case_dialog import AddCaseDialog, os_user
    d = AddCaseDialog(window.settings)
    qtbot.addWidget(d)
    assert d.dataset() == str(default_lab_dataset()) and d.corrected_by() == os_user()
    assert "new dataset" in d.info.text()
    d.set_corrected_by("")
    assert not d.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()

    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.files.open_demo()
    wait_idle(qtbot, window)
    with qtbot.waitSignal(window.jobFailed, timeout=5000) as blocker:  # nothing to add yet
        window.training_set.add_to_training_set()
    assert "Nothing to add" in blocker.args[0]
    show_label(window, qtbot, np.full(window.state.study.shape, 3, np.uint8))
    with qtbot.waitSignal(window.jobFailed, timeout=30000) as blocker:
        add(window, qtbot, tmp_path / "lab")
    assert "label values" in blocker.args[0]
    assert not (tmp_path / "lab").exists()
