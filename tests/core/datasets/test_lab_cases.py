"""A corrected study stored as a lab training case (volume file, DICOM folder, demo), and
``liverseg import`` of such a dataset into another one."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.datasets.dataset import list_cases, load_case, read_manifest
from core.datasets.lab_cases import (
    CaseExists,
    add_study,
    default_lab_dataset,
    find_case_of_study,
    import_lab_dataset,
    study_case_id,
)
from core.datasets.nifti_import import import_dataset
from core.runtime.errors import DatasetError
from core.study.session import StudySession
from tests.core.io.test_volume_file import canonical_ct, write_as

ROOT = Path(__file__).resolve().parents[3]


def corrected(shape) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    z, y, x = shape
    lab[1:z - 1, y // 4: 3 * y // 4, x // 4: 3 * x // 4] = 1
    lab[z // 2, y // 2 - 2: y // 2 + 2, x // 2 - 2: x // 2 + 2] = 2
    return lab


@pytest.fixture
def file_study(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_as(src / "patient 1.nii.gz", canonical_ct(), "permuted")
    return StudySession.open(src / "patient 1.nii.gz")


def test_a_volume_file_case_reloads_equal(file_study, tmp_path):
    study = file_study.study
    label = corrected(study.shape)
    lab = tmp_path / "lab"
    cid = add_study(lab, study, label, "Dr. Ada")
    assert cid == study_case_id(study) and cid.startswith("patient_1.")
    assert study_case_id(StudySession.open(tmp_path / "src" / "patient 1.nii.gz").study) == cid  # stable
    assert list_cases(lab) == [cid] and find_case_of_study(lab, study) == cid
    c = load_case(lab, cid)
    np.testing.assert_array_equal(c.hu, study.hu)
    np.testing.assert_array_equal(c.label, label)
    assert c.spacing == pytest.approx(study.spacing) and c.origin == pytest.approx(study.origin)
    np.testing.assert_allclose(c.direction, study.direction)
    m = c.meta
    assert m["source"] == str(tmp_path / "src" / "patient 1.nii.gz") and m["volume_file"] == m["source"]
    assert m["corrected_by"] == "Dr. Ada" and m["kind"] == "lab"
    assert datetime.datetime.fromisoformat(m["added"]).date() == datetime.date.today()
    counts = np.bincount(label.ravel(), minlength=3)
    assert m["label_counts"] == {"background": counts[0], "liver": counts[1], "tumour": counts[2]}
    assert read_manifest(lab)["cases"][cid]["source"] == m["source"]
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["patient 1.nii.gz"]  # nothing near the source


def test_never_inside_the_source_folder(file_study, tmp_path):
    study = file_study.study
    for bad in (tmp_path / "src", tmp_path / "src" / "lab", tmp_path / "src" / "a" / "b"):
        with pytest.raises(DatasetError, match="inside the study's source folder"):
            add_study(bad, study, corrected(study.shape), "me")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["patient 1.nii.gz"]
    add_study(tmp_path / "beside", study, corrected(study.shape), "me")  # a sibling folder is fine


def test_a_dicom_study_keeps_its_uids_and_its_folder_untouched(phantom_study, tmp_path):
    folder, truth = phantom_study
    before = sorted(p.name for p in folder.rglob("*"))
    session = StudySession.open(folder)
    study = session.study
    with pytest.raises(DatasetError, match="inside the study's source folder"):
        add_study(folder / "lab", study, truth.label, "me", source_dirs=session.source_dirs)
    cid = add_study(tmp_path / "lab", study, truth.label, "me", source_dirs=session.source_dirs)
    meta = study.volume.meta
    assert cid.startswith(meta.patient_id.replace(" ", "_")) and cid == study_case_id(study)
    c = load_case(tmp_path / "lab", cid)
    assert c.meta["study_uid"] == meta.study_uid and c.meta["series_uid"] == meta.series_uid
    assert c.meta["patient_id"] == meta.patient_id and c.meta["source"] == str(folder)
    np.testing.assert_array_equal(c.hu, study.hu)
    np.testing.assert_array_equal(c.label, truth.label)
    assert sorted(p.name for p in folder.rglob("*")) == before


def test_the_same_study_is_replaced_only_when_asked(file_study, tmp_path):
    study = file_study.study
    first, second = corrected(study.shape), corrected(study.shape)
    second[0] = 1
    cid = add_study(tmp_path / "lab", study, first, "a")
    with pytest.raises(CaseExists) as info:
        add_study(tmp_path / "lab", study, second, "b")
    assert info.value.case_id == cid
    np.testing.assert_array_equal(load_case(tmp_path / "lab", cid).label, first)
    assert add_study(tmp_path / "lab", study, second, "b", replace=True) == cid
    c = load_case(tmp_path / "lab", cid)
    np.testing.assert_array_equal(c.label, second)
    assert c.meta["corrected_by"] == "b" and list_cases(tmp_path / "lab") == [cid]


def test_labels_of_another_shape_or_with_other_values_are_refused(file_study, tmp_path):
    study = file_study.study
    z, y, x = study.shape
    with pytest.raises(DatasetError, match="does not match the CT"):
        add_study(tmp_path / "lab", study, np.zeros((z, y, x + 1), np.uint8), "me")
    bad = corrected(study.shape)
    bad[0, 0, 0] = 3
    with pytest.raises(DatasetError, match="label values"):
        add_study(tmp_path / "lab", study, bad, "me")
    with pytest.raises(DatasetError, match="no label"):
        add_study(tmp_path / "lab", study, None, "me")
    assert not (tmp_path / "lab").exists()


def test_the_demo_study_and_the_default_folder(tmp_path, monkeypatch):
    assert default_lab_dataset().parts[-3:] == ("LiverSegStudio", "datasets", "lab")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        assert default_lab_dataset() == tmp_path / "data" / "LiverSegStudio" / "datasets" / "lab"
    monkeypatch.setattr("platformdirs.user_data_dir", lambda name, appauthor=None: str(tmp_path / "data" / name))
    demo = StudySession.open_demo().study
    cid = add_study(default_lab_dataset(), demo, demo.reference, "me")
    assert cid == study_case_id(demo) and cid.startswith("Demo_study")
    assert find_case_of_study(default_lab_dataset(), demo) == cid


def test_liverseg_import_merges_a_lab_dataset(file_study, phantom_study, tmp_path):
    study = file_study.study
    lab = tmp_path / "lab"
    ids = sorted([add_study(lab, study, corrected(study.shape), "a"),
                  add_study(lab, StudySession.open(phantom_study[0]).study, phantom_study[1].label, "b")])
    merged = tmp_path / "merged"
    r = subprocess.run([sys.executable, "-m", "app", "import", str(lab), "--out", str(merged)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 case(s)" in r.stdout
    assert sorted(list_cases(merged)) == ids
    for cid in ids:
        a, b = load_case(lab, cid), load_case(merged, cid)
        np.testing.assert_array_equal(a.hu, b.hu)
        np.testing.assert_array_equal(a.label, b.label)
        assert b.meta["source"] == a.meta["source"] and b.meta["corrected_by"] == a.meta["corrected_by"]
        assert b.meta["imported_from"] == str(lab / f"{cid}.npz")
    stamp = {cid: (merged / f"{cid}.npz").stat().st_mtime_ns for cid in ids}
    assert import_dataset(lab, merged) == list_cases(lab)  # unchanged: skipped
    assert {cid: (merged / f"{cid}.npz").stat().st_mtime_ns for cid in ids} == stamp
    with pytest.raises(DatasetError, match="inside the source dataset"):
        import_lab_dataset(lab, lab / "sub")


def test_import_never_replaces_a_case_from_elsewhere_without_force(file_study, tmp_path):
    from core.datasets.dataset import Case, write_case
    study = file_study.study
    cid = add_study(tmp_path / "lab", study, corrected(study.shape), "a")
    other = tmp_path / "other"
    write_case(other, Case(cid, study.hu, np.zeros(study.shape, np.uint8), study.spacing,
                           meta={"source": str(tmp_path / "elsewhere")}))
    with pytest.raises(DatasetError, match="already there"):
        import_dataset(tmp_path / "lab", other)
    assert not load_case(other, cid).label.any()
    assert import_dataset(tmp_path / "lab", other, force=True) == [cid]
    np.testing.assert_array_equal(load_case(other, cid).label, corrected(study.shape))
