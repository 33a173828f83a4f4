"""core.study.review: accept / reject / reject-smaller on exact arrays, one undo step each, and the
states in the summary, the CSV and the JSON report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.evaluation.evaluate import study_summary
from core.study.editing import LabelEditor
from core.study.review import accept, lesion_at, next_lesion, reject, reject_smaller
from core.study.session import StudySession, lesion_table
from core.study.study import Study

SP = (1.0, 1.0, 1.0)


def three_lesions():
    label = np.zeros((4, 20, 20), np.uint8)
    label[:, 1:19, 1:19] = 1
    label[1:3, 2:6, 2:6] = 2  # 32 voxels: lesion 1
    label[1, 10:13, 10:13] = 2  # 9 voxels: lesion 2
    label[2, 16, 16] = 2  # 1 voxel: lesion 3
    return label


def test_reject_turns_the_component_into_liver_and_undo_restores_it_with_its_state():
    label = three_lesions()
    ed = LabelEditor(label)
    les = study_summary(label, SP, review=ed.review).lesions
    assert [r.voxels for r in les] == [32, 9, 1] and {r.review for r in les} == {"unseen"}
    assert reject(ed, [les[1]]) == 9
    assert (label == 2).sum() == 33 and label[1, 11, 11] == 1
    s = study_summary(label, SP, review=ed.review)
    assert len(s.lesions) == 2 and [r.voxels for r in s.rejected_lesions] == [9]
    assert s.rejected_lesions[0].review == "rejected"
    assert ed.undo() and (label == 2).sum() == 42 and ed.review == {}
    assert ed.redo() and label[1, 11, 11] == 1 and len(ed.review) == 1


def test_accept_survives_renumbering_and_is_one_undo_step():
    label = three_lesions()
    ed = LabelEditor(label)
    les = study_summary(label, SP, review=ed.review).lesions
    assert accept(ed, les[2]) and not accept(ed, les[2])  # the second time changes nothing
    reject(ed, [les[0]])  # the largest goes: ids shift
    now = study_summary(label, SP, review=ed.review).lesions
    assert [(r.voxels, r.review) for r in now] == [(9, "unseen"), (1, "accepted")]
    ed.undo()
    ed.undo()
    assert {r.review for r in study_summary(label, SP, review=ed.review).lesions} == {"unseen"}


def test_reject_smaller_keeps_accepted_lesions():
    label = three_lesions()
    ed = LabelEditor(label)
    les = study_summary(label, SP, review=ed.review).lesions
    accept(ed, les[2])
    les = study_summary(label, SP, review=ed.review).lesions
    gone = reject_smaller(ed, les, 0.02)  # 0.009 mL and 0.001 mL; the accepted one stays
    assert [r.voxels for r in gone] == [9] and (label == 2).sum() == 33
    assert ed.undo() and (label == 2).sum() == 42


def test_lesion_at_and_next_lesion():
    label = three_lesions()
    les = study_summary(label, SP).lesions
    assert lesion_at(les, label, (1, 11, 12)).voxels == 9
    assert lesion_at(les, label, (0, 0, 0)) is None and lesion_at(les, label, (9, 0, 0)) is None
    assert next_lesion(les, None) == 0 and next_lesion(les, 2) == 0 and next_lesion(les, 0, -1) == 2
    les[0].review = "accepted"
    assert next_lesion(les, None, unseen_first=True) == 1
    assert next_lesion([], None) is None


def test_session_review_and_fix_go_to_the_csv_and_report(tmp_path):
    label = three_lesions()
    hu = np.where(label == 2, 10, 60).astype(np.int16)
    s = StudySession(Study(hu, SP, label=label))
    les = s.measure()[0].lesions
    assert s.review_lesions("accept", [les[0]]) == 1
    assert s.review_lesions("reject", [les[1]]) == 1
    s.measure()
    fix = s.compute_fix("remove", (2, 16, 16))
    assert s.apply_fix(fix) == 1
    summary, _ = s.measure()
    table = lesion_table(summary)
    assert [(r.id, r.review) for r in table] == [(1, "accepted"), (2, "rejected")]
    s.export("csv", tmp_path / "l.csv")
    rows = (tmp_path / "l.csv").read_text().splitlines()
    assert rows[0].endswith(",review") and rows[1].endswith(",accepted") and rows[2].endswith(",rejected")
    s.export("report", tmp_path / "r.json")
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["lesions"][0]["review"] == "accepted" and rep["rejected_lesions"][0]["voxels"] == 9
    with pytest.raises(ValueError, match="unknown tool"):
        s.compute_fix("lasso", (0, 0, 0))


@pytest.mark.shared
def test_patient17_proposal_to_reference_lesions_in_one_action_per_error(p17_src, tmp_path):
    """One review action per error on the real patient: the expert's two tumours, one of them missed (left as liver),
    plus three false lesions under 0.5 mL: Reject smaller (one action for the three) and one Add lesion
    click give both lesions found and no false one."""
    from core.datasets.dataset import load_case
    from core.datasets.ircadb import import_ircadb
    from core.evaluation.metrics import lesion_components, lesion_detection
    import_ircadb(p17_src, tmp_path / "ds")
    c = load_case(tmp_path / "ds", "3Dircadb1.17")
    recs, comps = lesion_components(c.label == 2, c.spacing)
    proposal = c.label.copy()
    proposal[comps == recs[1]["_label"]] = 1  # missed
    liver = np.argwhere((c.label == 1) & (comps == 0))
    for k in range(3):  # three small false lesions, as the models propose them
        z, y, x = liver[len(liver) // 4 * (k + 1)]
        proposal[z, y:y + 3, x:x + 3] = 2
    s = StudySession(Study(c.hu, c.spacing, label=proposal))
    before = lesion_detection(proposal == 2, c.label == 2, c.spacing)  # case_report's "lesions"
    assert (before["hits"], before["false_positives"]) == (1, 3)
    lesions = s.measure()[0].lesions
    actions = 0
    assert s.review_lesions("reject_smaller", lesions, 0.5) == 3
    actions += 1
    s.apply_fix(s.compute_fix("add_lesion", recs[1]["anchor"]))
    actions += 1
    after = lesion_detection(s.label == 2, c.label == 2, c.spacing)
    assert (after["hits"], after["false_positives"], actions) == (2, 0, 2)
