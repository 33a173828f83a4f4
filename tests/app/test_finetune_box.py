"""The Train tab's fine-tune: a tiny base model fine-tuned on the phantom dataset, the before/after
table, *Use as default* and *Restore bundled defaults*."""

from __future__ import annotations

from pathlib import Path

from tests.app.conftest import wait_idle


def test_finetune_from_the_train_tab_then_use_as_default_and_restore(window, qtbot, tiny_dataset, tiny_base):
    from core.catalog.library import default_models, user_default_models
    tp = window.train_panel
    box = tp.finetune
    tp.dataset.setText(str(tiny_dataset))
    assert box.base.currentData() == "default" and not box.use_btn.isEnabled()
    box.set_base(str(tiny_base))
    box.stages.setCurrentIndex(box.stages.findText("liver"))
    box.minutes.setValue(0.5)
    box.start_btn.click()
    assert not box.start_btn.isEnabled() and tp.stop_btn.isEnabled()
    wait_idle(qtbot, window, 600000)
    assert len(tp.curves.loss_curve.getData()[0]) >= 1  # the liver run's curves were followed
    out = box.outcome
    assert out is not None and not out.cancelled and out.results["liver"].epochs_done >= 1
    assert box.table.rowCount() == len(out.cases) == 1
    row = out.cases[0]
    assert box.table.item(0, 0).text() == row.case_id
    assert box.table.item(0, 1).text() == f"{row.before.liver_dice:.3f}"
    assert box.table.item(0, 2).text() == f"{row.after.liver_dice:.3f}"
    assert box.table.item(0, 6).text() == row.after.lesions
    tuned = out.tuned_models["liver"]
    assert tuned.startswith(str(out.results["liver"].run_dir)) and out.tuned_models["tumor"].startswith(str(tiny_base))

    assert box.use_btn.isEnabled()
    box.use_btn.click()
    assert set(user_default_models()) == {"liver"} and user_default_models()["liver"].path == tuned
    assert default_models()[0].path == tuned
    combo = window.segment_panel.liver
    assert combo.currentData().path == tuned and combo.currentText().startswith("[lab] fine-tuned on 2 case(s)")
    assert box.restore_btn.isEnabled()
    box.restore_btn.click()
    assert user_default_models() == {} and default_models()[0].path != tuned
    assert window.segment_panel.liver.currentData().path != tuned and not box.restore_btn.isEnabled()


def test_from_a_corrected_study_to_a_running_finetune_in_five_clicks(window, qtbot, tiny_dataset, tiny_base,
                                                                      isolated_user_dirs):
    """File > Add to training set... (2 clicks: the menu, the item), OK, the Train tab, Fine-tune."""
    from core.catalog.library import set_user_defaults
    from core.datasets.dataset import Case, load_case, write_case
    from core.datasets.lab_cases import default_lab_dataset
    lab = default_lab_dataset()
    earlier = load_case(tiny_dataset, "p0")  # a case the lab added before
    write_case(lab, Case("earlier", earlier.hu, earlier.label, earlier.spacing))
    set_user_defaults({s: str(tiny_base / s / "model.keras") for s in ("liver", "tumor")})  # the lab's defaults
    try:
        run = _walk(window, qtbot, lab)
    finally:
        set_user_defaults({})  # later tests see the bundled defaults again
    assert run.parent == isolated_user_dirs / "user-models"  # the user's models folder, not the study's


def _walk(window, qtbot, lab):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QAction
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QDialogButtonBox

    from core.datasets.dataset import list_cases, load_case
    from core.study.session import Segmented
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.files.open_demo()
    wait_idle(qtbot, window)
    corrected = window.state.study.reference.copy()
    window.segmentation.show_segmentation(Segmented(corrected, {"engines": {}, "device": "test"}), window.state.session)
    wait_idle(qtbot, window)

    clicks = 0
    window.findChild(QAction, "addToTrainingSet").trigger()
    clicks += 2  # File, Add to training set...
    dialog = window.training_set.add_case_dialog
    assert dialog.dataset() == str(lab) and dialog.corrected_by()  # prefilled
    QTest.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    clicks += 1
    wait_idle(qtbot, window)
    assert len(list_cases(lab)) == 2
    added = next(c for c in list_cases(lab) if c != "earlier")
    assert load_case(lab, added).meta["kind"] == "lab"
    bar = window.tabs.tabBar()
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(window.tabs.indexOf(window.train_panel)).center())
    clicks += 1
    tp = window.train_panel
    assert window.tabs.currentWidget() is tp and tp.dataset.text() == str(lab)
    QTest.mouseClick(tp.finetune.start_btn, Qt.MouseButton.LeftButton)
    clicks += 1
    assert clicks <= 6 and window.training._train_job is not None and window.jobs.busy
    run = Path(tp.finetune.run_folder)
    assert run.name.startswith("finetune-")
    qtbot.waitUntil(lambda: (run / "liver" / "config.json").is_file(), timeout=600000)  # the run is under way
    tp.stop_btn.click()
    wait_idle(qtbot, window, 600000)
    assert (run / "liver" / "split.json").is_file() and not window.jobs.busy
    return run
