"""core.study.session: one study session (open, segment, measure, edit, export) for the CLI and the GUI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.evaluation.evaluate import study_summary
from core.io.export import ExportError, read_nifti_label
from core.runtime.errors import LiverSegError
from core.study.session import EXPORT_KINDS, Segmented, StudySession, load_model
from core.study.study import Study
from tests.core.models import cube_volume, threshold_model

ROOT = Path(__file__).resolve().parents[3]
OUT_NAMES = {"nifti": "seg.nii.gz", "seg": "seg.dcm", "csv": "lesions.csv", "report": "report.json",
             "pdf": "report.pdf"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return threshold_model(root / "liver", "liver", 60), threshold_model(root / "tumor", "tumor", 400)


def test_importing_the_session_loads_neither_qt_nor_keras():
    code = "import core.study.session, sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         check=True).stdout
    tops = {m.split(".")[0] for m in json.loads(out.splitlines()[-1])}
    assert not tops & {"PySide6", "shiboken6", "pyqtgraph", "keras", "tensorflow", "jax", "torch"}


def test_dicom_study_segment_measure_edit_and_export(phantom_study, models, tmp_path):
    import highdicom as hd
    folder, case = phantom_study
    s = StudySession.open(folder)
    assert s.source == str(folder) and s.study.volume is not None and s.study.shape == case.hu.shape
    assert s.label is None and s.editor is None and s.summary is None and s.engines == {}
    with pytest.raises(LiverSegError, match="nothing to measure"):
        s.measure()

    seg = s.segment(*models)
    assert s.label is seg.label and s.editor is not None and s.editor.label is seg.label
    assert seg.label.shape == case.hu.shape and (seg.label == 1).any()
    assert set(s.engines) == {"liver", "tumor"} and s.engines == seg.info["engines"]
    assert seg.models["liver"]["stage"] == "liver" and seg.models["tumor"]["stage"] == "tumor"
    assert seg.snapshot is None and seg.seconds > 0

    summary, report = s.measure()
    assert report is None and s.case_report is None  # no reference to compare with
    assert s.summary is summary and summary.liver_ml > 0
    expected = study_summary(seg.label, s.study.spacing, s.study.hu)
    assert summary.liver_ml == pytest.approx(expected.liver_ml)
    assert summary.tumour_ml == pytest.approx(expected.tumour_ml)

    # editing: one stroke of tumour brush, undone and redone through the session
    before = seg.label.copy()
    z = int(np.argmax((seg.label == 1).sum(axis=(1, 2))))
    ys, xs = np.nonzero(seg.label[z] == 1)
    s.editor.begin()
    assert s.editor.paint(z, float(ys.mean()), float(xs.mean()), 3, "tumor") > 0
    assert s.editor.end()
    edited = s.label.copy()
    assert s.measure()[0].tumour_ml > summary.tumour_ml
    assert s.undo() and np.array_equal(s.label, before)
    assert s.redo() and np.array_equal(s.label, edited)
    assert s.undo() and not s.undo()  # one stroke, one step
    summary, _ = s.measure()

    out = tmp_path / "out"
    paths = {kind: s.export(kind, out / name) for kind, name in OUT_NAMES.items()}
    assert set(paths) == set(EXPORT_KINDS)
    label, _ = read_nifti_label(paths["nifti"])
    np.testing.assert_array_equal(label, s.label)
    dcm = hd.seg.segread(paths["seg"])
    assert dcm.ReferencedSeriesSequence[0].SeriesInstanceUID == s.study.volume.meta.series_uid
    rows = list(csv.DictReader(open(paths["csv"])))
    assert len(rows) == len(summary.lesions)
    rep = json.loads(paths["report"].read_text())
    assert rep["study"] == str(folder) and rep["series_uid"] == s.study.volume.meta.series_uid
    assert rep["shape"] == list(case.hu.shape) and rep["liver_ml"] == pytest.approx(summary.liver_ml)
    assert rep["engine"]["engines"] == s.engines and rep["models"]["liver"]["stage"] == "liver"
    assert list(rep)[:4] == ["study", "series_uid", "shape", "spacing_mm"]

    # never overwritten without force, never into the source folder, whatever the kind
    with pytest.raises(ExportError, match="already exists"):
        s.export("nifti", paths["nifti"])
    s.export("nifti", paths["nifti"], force=True)
    listing = sorted(p.name for p in folder.iterdir())
    for kind, name in OUT_NAMES.items():
        with pytest.raises(ExportError, match="inside the source DICOM folder"):
            s.export(kind, folder / name, force=True)
        with pytest.raises(ExportError, match="inside the source DICOM folder"):
            s.guard(folder / "sub" / name, force=True)
    assert sorted(p.name for p in folder.iterdir()) == listing
    with pytest.raises(ValueError, match="export kind"):
        s.export("png", out / "x.png")


def test_run_segmentation_stores_nothing_until_adopted(phantom_study, models):
    folder, _ = phantom_study
    s = StudySession.open(folder)
    liver = load_model(models[0], "liver")
    assert load_model(models[0], "liver") is liver and load_model(liver, "liver") is liver  # loaded once
    result = s.run_segmentation(liver, None, snapshot=True)
    assert s.label is None and s.editor is None and s.segmentation is None  # the worker's step changes nothing
    assert result.snapshot is not result.label and np.array_equal(result.snapshot, result.label)
    assert result.models == {"liver": liver.meta, "tumor": None} and set(result.info["engines"]) == {"liver"}
    s.set_measurements({"stale": True})
    s.adopt(result)
    assert s.label is result.label and s.editor.label is result.label and s.segmentation is result
    assert s.summary is None  # measurements of the previous label are dropped
    summary, _ = s.measurements(result.snapshot)
    assert s.summary is None and summary.tumour_ml == 0.0  # measuring without storing


def test_case_with_reference_measures_against_it_and_refuses_dicom_seg(tmp_path):
    hu, truth = cube_volume()
    s = StudySession(Study(hu, (2.0, 1.0, 1.0), name="cube", reference=truth))
    assert s.source == "" and s.source_dirs == [""] and s.editor is None
    summary, report = s.measurements()
    assert report is None  # the reference is what is measured: nothing to compare
    assert summary.liver_ml == pytest.approx((truth > 0).sum() * 2.0 / 1000)

    label = s.draw_from_scratch()
    assert s.label is label and not label.any() and s.editor.label is label
    assert s.draw_from_scratch() is label  # an existing label is kept
    label[truth > 0] = 1
    s.editor.paint(5, 28.0, 20.0, 3, "tumor")
    summary, report = s.measure()
    assert report is not None and report["liver"]["dice"] == pytest.approx(1.0)
    assert 0 < report["tumor"]["dice"] < 1 and s.case_report is report

    with pytest.raises(ExportError, match="DICOM SEG needs a study opened from a DICOM folder"):
        s.export("seg", tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()
    back, _ = read_nifti_label(s.export("nifti", tmp_path / "seg.nii.gz"))
    np.testing.assert_array_equal(back, label)
    rep = json.loads(s.export("report", tmp_path / "r.json").read_text())
    assert rep["study"] == "cube" and rep["series_uid"] is None and rep["models"] == {"liver": None, "tumor": None}
    # an explicit label (the GUI's copy) with no summary is measured for the lesion table
    only_ref = s.export("csv", tmp_path / "ref.csv", label=truth)
    assert len(list(csv.DictReader(open(only_ref)))) == 1


def test_volume_file_session_writes_on_its_grid_and_never_over_it(tmp_path):
    import nibabel as nib

    from tests.core.io.test_volume_file import canonical_ct, write_as
    src = tmp_path / "in" / "ct.nii.gz"
    src.parent.mkdir()
    arr, affine = write_as(src, canonical_ct(z=8, y=32, x=32), "RAS")
    s = StudySession.open(src)
    assert s.source == str(src) and s.study.file_grid is not None
    s.draw_from_scratch()[s.study.hu == 200] = 1
    s.adopt(Segmented(s.label, {"engines": {}, "device": "loaded"}))
    out = s.export("nifti", tmp_path / "in" / "seg.nii.gz")  # beside the source file is fine
    img = nib.load(str(out))
    np.testing.assert_allclose(img.affine, affine, atol=1e-5)
    assert img.shape == arr.shape and int(np.asarray(img.dataobj).sum()) == int((s.label == 1).sum())
    with pytest.raises(ExportError, match="refusing to overwrite the source volume file"):
        s.export("nifti", src, force=True)
    with pytest.raises(ExportError, match="DICOM SEG needs a study opened from DICOM"):
        s.export("seg", tmp_path / "seg.dcm")


def test_runners_chosen_once_and_kept_across_studies(phantom_study, models, tmp_path):
    from core.inference.runners import CascadeRunners
    from core.study import session as session_mod
    folder, _ = phantom_study
    runners = StudySession.prepare_models(*models, engine="keras", device="cpu")
    assert isinstance(runners, CascadeRunners) and runners.device.gpu is False
    assert runners.liver.choice.engine == "keras" and runners.tumour is not None
    first = StudySession.open(folder).segment(*models, engine="keras", device="cpu")
    second = StudySession.open(folder).segment(*models, engine="keras", device="cpu")
    assert session_mod.cascade_runners(*models, engine="keras", device="cpu") is runners  # nothing re-chosen
    assert (first.label == second.label).all() and first.info["engines"] == second.info["engines"]
    assert not {k for k in vars(runners.liver_model) if "sess" in k or "forward" in k}  # nothing on the model
    card = Path(models[0]) / "model.json"
    card.write_text(card.read_text())  # a changed model file: new runners
    import os
    os.utime(card, ns=(card.stat().st_mtime_ns + 10**9,) * 2)
    assert session_mod.cascade_runners(*models, engine="keras", device="cpu") is not runners
