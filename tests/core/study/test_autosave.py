"""core.study.autosave: the working segmentation and its review saved for crash recovery, and given
back only to the same study on the same grid."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from core.study import autosave as au
from core.study.review import ACCEPTED, accept, reject
from core.study.session import StudySession
from core.study.study import Study
from tests.core.io.test_volume_file import canonical_ct, write_as
from tests.core.models import cube_volume


def reviewed_session() -> StudySession:
    """A named study (no file behind it) whose label has two lesions: one accepted, one rejected."""
    hu, label = cube_volume()
    label[4:6, 36:40, 30:34] = 2  # a second lesion
    s = StudySession(Study(hu, (2.5, 0.8, 0.8), name="cube"))
    from core.study.session import Segmented
    s.adopt(Segmented(label))
    lesions = s.measurements(compare=False)[0].lesions
    assert len(lesions) == 2
    accept(s.editor, lesions[0])
    reject(s.editor, [lesions[1]])
    return s


def test_save_find_load_gives_back_label_and_review(tmp_path):
    s = reviewed_session()
    ident = au.study_identity(s.study, s.source)
    assert ident.kind == "named" and ident.shape == s.study.shape
    path = au.save(ident, s.label, s.editor.review, tmp_path)
    assert path.parent == tmp_path and path.name.endswith(au.SUFFIX)
    assert not [p for p in tmp_path.iterdir() if p != path]  # no temp file left beside it

    info = au.find(au.study_identity(s.study, s.source), tmp_path)
    assert info is not None and info.path == path and abs(info.saved_at - os.path.getmtime(path)) < 5
    rec = au.load(ident, tmp_path)
    np.testing.assert_array_equal(rec.label, s.label)
    assert rec.label.dtype == np.uint8 and rec.review == s.editor.review
    assert sorted(e["state"] for e in rec.review.values()) == [ACCEPTED, "rejected"]

    restored = StudySession(Study(s.study.hu.copy(), s.study.spacing, name="cube"))
    restored.adopt(au.as_segmented(rec))
    assert restored.editor.review == s.editor.review
    assert restored.measurements(compare=False)[0].lesions == s.measurements(compare=False)[0].lesions

    assert [i.path for i in au.list_recoveries(tmp_path)] == [path]
    assert au.discard(ident, tmp_path) and not path.exists()
    assert au.find(ident, tmp_path) is None and not au.discard(ident, tmp_path)


def test_a_newer_save_replaces_the_older_in_the_same_slot(tmp_path):
    s = reviewed_session()
    ident = au.study_identity(s.study)
    first = au.save(ident, s.label, {}, tmp_path)
    s.label[0] = 1
    second = au.save(ident, s.label, s.editor.review, tmp_path)
    assert first == second and len(list(tmp_path.iterdir())) == 1
    assert au.load(ident, tmp_path).label[0].min() == 1


def test_another_grid_or_study_never_gets_the_recovery(tmp_path):
    s = reviewed_session()
    ident = au.study_identity(s.study)
    au.save(ident, s.label, s.editor.review, tmp_path)
    hu = s.study.hu
    other_grid = Study(hu[:-1].copy(), s.study.spacing, name="cube")  # same name, one slice fewer
    other_spacing = Study(hu, (2.0, 0.8, 0.8), name="cube")
    other_ct = Study(hu + 1, s.study.spacing, name="cube")
    for study in (other_grid, other_spacing, other_ct):
        other = au.study_identity(study)
        assert other.slot == ident.slot  # the same slot: a save of it would replace the old one
        assert au.find(other, tmp_path) is None
        with pytest.raises(au.RecoveryMismatch):
            au.load(other, tmp_path)
    assert au.find(au.study_identity(Study(hu, s.study.spacing, name="another")), tmp_path) is None
    with pytest.raises(ValueError, match="grid"):
        au.save(ident, s.label[:-1], {}, tmp_path)


def test_a_changed_volume_file_is_another_study(tmp_path):
    write_as(tmp_path / "ct.nii.gz", canonical_ct(), "RAS")
    s = StudySession.open(tmp_path / "ct.nii.gz")
    ident = au.study_identity(s.study, s.source)
    assert ident.kind == "file" and ident.names == {"path": str(tmp_path / "ct.nii.gz")}
    label = np.ones(s.study.shape, np.uint8)
    au.save(ident, label, {}, tmp_path / "autosave")
    again = StudySession.open(tmp_path / "ct.nii.gz")
    assert au.find(au.study_identity(again.study, again.source), tmp_path / "autosave") is not None
    shutil.copy(tmp_path / "ct.nii.gz", tmp_path / "copy.nii.gz")
    copy = StudySession.open(tmp_path / "copy.nii.gz")
    assert au.find(au.study_identity(copy.study, copy.source), tmp_path / "autosave") is None
    write_as(tmp_path / "ct.nii.gz", canonical_ct() + 5, "RAS")  # rewritten: new size or time
    os.utime(tmp_path / "ct.nii.gz", ns=(1, 1))
    changed = StudySession.open(tmp_path / "ct.nii.gz")
    assert au.find(au.study_identity(changed.study, changed.source), tmp_path / "autosave") is None


def test_dicom_identity_is_the_uids_not_the_folder(phantom_study, tmp_path):
    folder, _ = phantom_study
    s = StudySession.open(folder)
    ident = au.study_identity(s.study, s.source)
    meta = s.study.volume.meta
    assert ident.kind == "dicom" and ident.names == {"study_uid": meta.study_uid, "series_uid": meta.series_uid}
    au.save(ident, np.zeros(s.study.shape, np.uint8), {}, tmp_path / "autosave")
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)  # the same series elsewhere (a PACS cache, a USB stick)
    moved = StudySession.open(copy)
    assert au.find(au.study_identity(moved.study, moved.source), tmp_path / "autosave") is not None
    assert not list(folder.glob("*" + au.SUFFIX)) and not list(folder.parent.glob("*" + au.SUFFIX))


def test_damaged_or_foreign_files_are_refused(tmp_path):
    s = reviewed_session()
    ident = au.study_identity(s.study)
    path = au.save(ident, s.label, s.editor.review, tmp_path)
    path.write_bytes(path.read_bytes()[:100])  # cut short (not by us: our writes are atomic)
    assert au.find(ident, tmp_path) is None and au.list_recoveries(tmp_path) == []
    bad = s.label.copy()
    bad[0, 0, 0] = 7
    au.save(ident, bad, {}, tmp_path)
    with pytest.raises(au.RecoveryMismatch, match="beyond tumour"):
        au.load(ident, tmp_path)
    au.save(ident, s.label, {10 ** 9: {"state": ACCEPTED, "lesion": {}}}, tmp_path)
    with pytest.raises(au.RecoveryMismatch, match="outside the grid"):
        au.load(ident, tmp_path)
