"""core.io.export and the predict/evaluate CLI: files other tools read, never overwriting, never in the source."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.evaluation.metrics import lesions
from core.io.dicom import load_series
from core.io.export import (
    ExportError,
    read_nifti_label,
    write_dicom_seg,
    write_json_report,
    write_lesions_csv,
    write_nifti,
)
from core.runtime.summary import LesionSummary
from tests.core.models import threshold_model

ROOT = Path(__file__).resolve().parents[3]


def test_nifti_geometry_matches_dicom(phantom_study, tmp_path):
    folder, case = phantom_study
    vol = load_series(folder)
    p = write_nifti(tmp_path / "seg.nii.gz", case.label, vol)
    back, affine = read_nifti_label(p)
    np.testing.assert_array_equal(back, case.label)
    # voxel (i=x, j=y, k=z) -> RAS mm must equal the DICOM LPS position with x and y negated
    ijk = np.array([5, 7, 3, 1.0])
    lps = vol.affine() @ ijk
    ras = affine @ ijk
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-4)
    with pytest.raises(ExportError, match="already exists"):
        write_nifti(p, case.label, vol)
    write_nifti(p, case.label, vol, force=True)
    with pytest.raises(ExportError, match="inside the source DICOM folder"):
        write_nifti(folder / "seg.nii.gz", case.label, vol)
    assert not list(tmp_path.glob(".*"))


def test_nifti_guard_holds_for_the_study_the_gui_passes(phantom_study, tmp_path):
    """The GUI passes a Study, not a Volume: the source-folder guard must hold for it too."""
    from types import SimpleNamespace

    from core.study.study import Study
    folder, case = phantom_study
    study = Study.from_volume(load_series(folder))
    assert study.source_dir == str(folder) or Path(study.source_dir) == folder
    with pytest.raises(ExportError, match="inside the source DICOM folder"):
        write_nifti(folder / "seg.nii.gz", case.label, study)
    case_study = Study(case.hu, case.spacing, name="dataset case")
    assert case_study.source_dir == ""  # a dataset case or the demo has no folder to protect
    write_nifti(tmp_path / "case.nii.gz", case.label, case_study)
    # something without a source folder is an error, never a silently empty guard
    bare = SimpleNamespace(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    with pytest.raises(AttributeError):
        write_nifti(tmp_path / "bare.nii.gz", case.label, bare)


def test_dicom_seg_references_the_series(phantom_study, tmp_path):
    import highdicom as hd
    folder, case = phantom_study
    vol = load_series(folder)
    p = write_dicom_seg(tmp_path / "seg.dcm", case.label, vol)
    seg = hd.seg.segread(p)
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["Liver", "Liver tumor"]
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"
    ref = seg.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == vol.meta.series_uid
    assert len(ref.ReferencedInstanceSequence) == vol.hu.shape[0]
    liver = seg.get_volume(combine_segments=False) if hasattr(seg, "get_volume") else None
    pix = seg.pixel_array  # [frames, rows, cols], frames ordered by segment then position
    assert pix.shape[1:] == case.label.shape[1:]
    assert int(pix.sum()) == int((case.label == 1).sum() + (case.label == 2).sum())
    del liver


def test_csv_and_report(tmp_path):
    m = np.zeros((3, 10, 10), np.uint8)
    m[1, 2:5, 2:5] = 2
    les = [LesionSummary.from_json(r) for r in lesions(m == 2, (2, 1, 1), np.full(m.shape, 50, np.int16))]
    p = write_lesions_csv(tmp_path / "l.csv", les)
    rows = list(csv.DictReader(open(p)))
    assert rows[0]["id"] == "1" and float(rows[0]["volume_ml"]) == pytest.approx(0.018)
    r = write_json_report(tmp_path / "r.json", {"a": float("nan"), "b": np.float32(1.5)})
    assert json.loads(r.read_text()) == {"a": None, "b": 1.5}
    with pytest.raises(ExportError, match="already exists"):
        write_lesions_csv(p, les)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_predict_and_refuse_overwrite(phantom_study, tmp_path):
    folder, case = phantom_study
    lm = threshold_model(tmp_path / "liver", "liver", 60)
    tm = threshold_model(tmp_path / "tumor", "tumor", 400)
    out = tmp_path / "out"
    args = ["predict", str(folder), "--liver-model", str(lm), "--tumor-model", str(tm),
            "--out", str(out / "seg.nii.gz"), "--seg", str(out / "seg.dcm"), "--lesions", str(out / "l.csv"),
            "--report", str(out / "r.json"), "--pdf", str(out / "r.pdf")]
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    assert (out / "r.pdf").read_bytes().startswith(b"%PDF")
    for name in ("seg.nii.gz", "seg.dcm", "l.csv", "r.json"):
        assert (out / name).is_file(), name
    rep = json.loads((out / "r.json").read_text())
    assert rep["liver_ml"] > 0 and rep["engine"]["engines"]["liver"] == "Keras, tensorflow CPU"
    label, _ = read_nifti_label(out / "seg.nii.gz")
    assert label.shape == case.hu.shape
    r = _cli(*args)
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr
    before = sorted(p.name for p in folder.iterdir())
    r = _cli("predict", str(folder), "--liver-model", str(lm), "--out", str(folder / "x.nii.gz"))
    assert r.returncode == 2 and "source DICOM folder" in r.stderr
    assert sorted(p.name for p in folder.iterdir()) == before
    r = _cli("predict", str(folder), "--liver-model", str(tmp_path / "missing"), "--out", str(out / "y.nii.gz"))
    assert r.returncode == 2 and "no such model file" in r.stderr


def test_cli_evaluate(tiny_dataset, tmp_path):
    lm = threshold_model(tmp_path / "liver", "liver", 60)
    tm = threshold_model(tmp_path / "tumor", "tumor", 400)
    r = _cli("evaluate", str(tiny_dataset), "--liver-model", str(lm), "--tumor-model", str(tm),
             "--out", str(tmp_path / "eval.json"), "--cases", "p0", "p1")
    assert r.returncode == 0, r.stderr
    assert "liver Dice" in r.stdout and "mean" in r.stdout
    rep = json.loads((tmp_path / "eval.json").read_text())
    assert set(rep["cases"]) == {"p0", "p1"} and 0 <= rep["mean"]["liver"]["dice"] <= 1


def test_patient17_cascade_geometry(p17_extracted, tmp_path):
    """The cascade on the real patient with tiny models: labels at the CT's own resolution, exported right."""
    from core.inference.cascade import segment
    from core.model.io import load_seg_model
    vol = load_series(p17_extracted / "PATIENT_DICOM")
    lm = load_seg_model(threshold_model(tmp_path / "l", "liver", 90), "liver")
    tm = load_seg_model(threshold_model(tmp_path / "t", "tumor", 300), "tumor")
    seg = segment(vol, lm, tm)
    assert seg.label.shape == (119, 512, 512)
    assert seg.info["tumor_slices"] <= 119
    p = write_nifti(tmp_path / "p17.nii.gz", seg.label, vol)
    back, affine = read_nifti_label(p)
    np.testing.assert_array_equal(back, seg.label)
    np.testing.assert_allclose(np.abs(np.diag(affine)[:3]), [0.743, 0.743, 1.6], atol=1e-3)
    s = write_dicom_seg(tmp_path / "p17.dcm", seg.label, vol)  # IRCADb has no FrameOfReferenceUID
    assert s.stat().st_size > 1000


def test_cli_predict_and_evaluate_use_the_default_models(phantom_study, tiny_dataset, tmp_path):
    """No model flags: the bundled defaults (real CT anatomy), named in the report; flags still override."""
    folder, _ = phantom_study
    r = _cli("predict", str(folder), "--out", str(tmp_path / "seg.nii.gz"), "--report", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["models"]["liver"]["card"]["stage"] == "liver" and rep["models"]["liver"]["card"]["kind"] == "real"
    assert rep["models"]["tumor"]["card"]["kind"] == "real" and "tumor" in rep["engine"]["engines"]
    r = _cli("predict", str(folder), "--liver-only", "--out", str(tmp_path / "l.nii.gz"),
             "--report", str(tmp_path / "l.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "l.json").read_text())["models"]["tumor"] is None
    r = _cli("evaluate", str(tiny_dataset), "--out", str(tmp_path / "eval.json"), "--cases", "p0")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "eval.json").read_text())
    assert rep["models"]["liver"]["default"] is True and rep["models"]["tumor"]["card"]["kind"] == "real"
