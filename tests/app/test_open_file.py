"""Opening what labs hold: a NIfTI, NRRD or MetaImage file (menu, drag and drop, recent), a series with a localizer."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.core.io.test_volume_file import canonical_ct, write_as

from .conftest import wait_idle
from .test_workflow import segment


def test_nifti_opens_segments_and_exports_on_its_own_grid(window, qtbot, threshold_models, tmp_path):
    hu = canonical_ct(8, 48, 48)
    arr, ras = write_as(tmp_path / "ct.nii.gz", hu, "permuted")
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.files.open_path(str(tmp_path / "ct.nii.gz"))
    wait_idle(qtbot, window)
    np.testing.assert_array_equal(window.state.study.hu, hu)  # shown like a DICOM axial series
    assert str(tmp_path / "ct.nii.gz") in window.files.recent()
    segment(window, qtbot, threshold_models)
    window.exports.export("nifti", str(tmp_path / "out" / "seg.nii.gz"))
    wait_idle(qtbot, window)
    seg = nib.load(str(tmp_path / "out" / "seg.nii.gz"))
    assert seg.shape == arr.shape
    np.testing.assert_allclose(seg.affine, ras, atol=1e-5)
    study = window.state.study
    np.testing.assert_array_equal(np.asarray(seg.dataobj), study.file_grid.to_file(study.label))
    with qtbot.waitSignal(window.jobFailed, timeout=30000) as blocker:  # never over the input
        window.exports.export("nifti", str(tmp_path / "ct.nii.gz"), force=True)
    assert "source volume file" in blocker.args[0]


def test_drop_a_file_onto_the_window(window, qtbot, tmp_path):
    write_as(tmp_path / "dropped.nii.gz", canonical_ct(), "RAS")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped.nii.gz"))])
    ev = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.dropEvent(ev)
    assert window.state.study.shape == canonical_ct().shape


def test_nrrd_and_metaimage_open_like_nifti(window, qtbot, tmp_path):
    from app.controllers.study_files import VOLUME_FILTER
    from tests.core.io.test_volume_formats import write_meta, write_nrrd
    assert all(f"*{s}" in VOLUME_FILTER.split(";;")[0] for s in (".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"))
    hu = canonical_ct()
    arr, ras = write_as(tmp_path / "ref.nii", hu, "permuted")
    write_meta(tmp_path / "ct.mhd", arr, ras, msb=True, compress=True)
    write_nrrd(tmp_path / "ct.nhdr", arr, ras, "RAS", encoding="gzip")
    for name in ("ct.mhd", "ct.nhdr"):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(tmp_path / name))])
        ev = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier)
        with qtbot.waitSignal(window.studyLoaded, timeout=60000):
            window.dropEvent(ev)
        wait_idle(qtbot, window)
        np.testing.assert_array_equal(window.state.study.hu, hu)  # patient's right on the left, head up
        assert window.state.study.file_grid.shape == arr.shape
        assert str(tmp_path / name) in window.files.recent()


def test_series_with_a_localizer_opens_its_axial_stack(window, qtbot, tmp_path):
    from tests.core.factory import hu_volume, write_series
    hu = hu_volume(6, 16)
    write_series(tmp_path / "s", hu, uid_key="ct")
    write_series(tmp_path / "s" / "scout", np.full((1, 24, 24), -500, np.int16), uid_key="ct", name="loc",
                 orientation=(1, 0, 0, 0, 0, -1))
    asked = []
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.files.open_path(str(tmp_path / "s"), choose=lambda s: asked.append(s) or 0)
    assert not asked  # no series chooser for a localizer
    np.testing.assert_array_equal(window.state.study.hu, hu)
    assert any("another size or orientation" in w for w in window.state.study.warnings)


def test_open_segmentation_edit_measure_export_and_as_reference(window, qtbot, tmp_path):
    """A label written earlier (here: NIfTI and DICOM SEG of a phantom's truth) comes back onto the study."""
    import zipfile

    from core.io.export import write_dicom_seg, write_nifti
    from core.synthetic.phantom import make_phantom, write_patient
    case = make_phantom(9, 12, 64)
    folder = write_patient(case, tmp_path / "zips", 1)
    with zipfile.ZipFile(folder / "PATIENT_DICOM.zip") as z:
        z.extractall(tmp_path / "dicom")
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.files.open_path(str(tmp_path / "dicom"))
    wait_idle(qtbot, window)
    write_nifti(tmp_path / "truth.nii.gz", case.label, window.state.study)
    write_dicom_seg(tmp_path / "truth.dcm", case.label, window.state.study.volume)
    with qtbot.waitSignal(window.summaryUpdated, timeout=60000):
        window.files.open_label(str(tmp_path / "truth.nii.gz"))
    np.testing.assert_array_equal(window.state.study.label, case.label)
    assert window.state.editor is not None and window.state.summary.liver_ml > 0  # editable and measured
    with qtbot.waitSignal(window.summaryUpdated, timeout=60000):
        window.files.open_label(str(tmp_path / "truth.dcm"), "reference")
    np.testing.assert_array_equal(window.state.study.reference, case.label)
    assert window.state.case_report["liver"]["dice"] == 1.0  # compared with the working label
    window.exports.export("nifti", str(tmp_path / "again.nii.gz"))
    wait_idle(qtbot, window)
    assert (tmp_path / "again.nii.gz").is_file()
    bad = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)), str(bad))
    with qtbot.waitSignal(window.jobFailed, timeout=30000) as blocker:
        window.files.open_label(str(bad))
    assert "does not line up" in blocker.args[0]
