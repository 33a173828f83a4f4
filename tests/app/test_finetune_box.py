"""The Train tab's fine-tune: a tiny base model fine-tuned on the phantom dataset, the before/after
table, *Use as default* and *Restore bundled defaults*."""

from __future__ import annotations

import pytest

from tests.app.conftest import wait_idle


@pytest.fixture(scope="module")
def tiny_base(tiny_dataset, tmp_path_factory):
    from core.training.trainer import TrainConfig, train
    root = tmp_path_factory.mktemp("gui-base")
    for stage in ("liver", "tumor"):
        train(TrainConfig(dataset=str(tiny_dataset), out=str(root / stage), stage=stage, epochs=1, batch_size=8,
                          image_size=64, base_filters=8, depth=3, val_fraction=0.34, export_onnx=False,
                          steps_per_epoch=4, label=f"tiny base {stage}"))
    return root


def test_finetune_from_the_train_tab_then_use_as_default_and_restore(window, qtbot, tiny_dataset, tiny_base):
    from core.inference.library import default_models, user_default_models
    tp = window.train_panel
    box = tp.finetune
    tp.dataset.setText(str(tiny_dataset))
    assert box.base.currentData() == "default" and not box.use_btn.isEnabled()
    box.set_base(str(tiny_base))
    box.stages.setCurrentIndex(box.stages.findText("liver"))
    box.minutes.setValue(0.5)
    with qtbot.waitSignal(tp.curves.updated, timeout=180000):
        box.start_btn.click()
    assert not box.start_btn.isEnabled() and tp.stop_btn.isEnabled()
    wait_idle(qtbot, window, 240000)
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
