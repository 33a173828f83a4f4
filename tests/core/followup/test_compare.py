"""core.followup.compare and outputs, and ``liverseg compare``: categories end to end on moved
phantom pairs, the patient check, the files written."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from app.cli import main
from core.followup.compare import JSON_KEYS, compare_studies
from core.followup.outputs import CSV_COLUMNS, write_all
from core.followup.timepoint import FollowupError
from core.runtime.errors import Cancelled
from core.runtime.jobs import CancelToken
from tests.core.followup.pairs import Lesion, make_pair

MIXED = [Lesion("shrunk", (15, 11, 10), (9, 6.6, 6)), Lesion("grown", (8, 6, 6), (12, 9, 8)),
         Lesion("gone", (7, 5, 5), None), Lesion("new", None, (7, 6, 6))]


@pytest.fixture(scope="module")
def mixed():
    p = make_pair(MIXED)
    p.baseline, p.followup = replace(p.baseline, phase="portal-venous"), replace(p.followup, phase="portal-venous")
    return p, compare_studies(p.baseline, p.followup)


def test_a_new_lesion_makes_progression_whatever_the_sum(mixed):
    p, c = mixed
    r = c.recist
    assert [t.status for t in r.targets] == ["same", "same"]  # the 30 and 16 mm lesions, not the 14 mm one
    assert abs(r.baseline_sum_mm - 46) <= 2 * 3.2 and abs(r.followup_sum_mm - 42) <= 2 * 3.2
    assert r.category == "PD" and len(r.new_lesions) == 1 and "new lesion" in r.basis[1]
    assert sorted(m.status for m in c.matches) == ["gone", "new", "same", "same"]
    assert c.mrecist.category == "NE" and "arterial" in c.mrecist.basis[0]  # portal-venous studies
    assert c.tumour_change_ml < 0 and c.registration.kind in ("rigid", "affine")
    assert c.warnings == ("the patient name could not be checked (missing in both studies)",)


@pytest.mark.parametrize("lesions, expected", [
    ([Lesion("a", (15, 11, 10), None), Lesion("b", (9, 7, 7), None)], "CR"),
    ([Lesion("a", (15, 11, 10), (9, 7, 6)), Lesion("b", (10, 8, 8), (6, 5, 5))], "PR"),  # 50 -> 30 mm
    ([Lesion("a", (15, 11, 10), (14, 10, 9)), Lesion("b", (10, 8, 8), (10, 8, 8))], "SD"),  # 50 -> 48 mm
    ([Lesion("a", (15, 11, 10), (19, 12, 10)), Lesion("b", (10, 8, 8), (12, 8, 8))], "PD"),  # 50 -> 62 mm
])
def test_categories_end_to_end(lesions, expected):
    p = make_pair(lesions, seed=5, deg=-3.0, shift_mm=(-5.0, 6.0, 0.0))
    c = compare_studies(p.baseline, p.followup, affine=False)
    assert c.recist.category == expected, c.recist.basis
    assert len(c.recist.targets) == 2 and not c.recist.new_lesions


def test_mrecist_on_arterial_studies_and_the_readers_targets():
    lesions = [Lesion("a", (15, 11, 10), (8, 6, 6), contrast=70.0), Lesion("b", (8, 6, 6), (5, 4, 4), contrast=70.0),
               Lesion("c", (7, 6, 6), (7, 6, 6), contrast=-40.0)]
    p = make_pair(lesions, seed=5)
    base, follow = replace(p.baseline, phase="arterial"), replace(p.followup, phase="arterial")
    c = compare_studies(base, follow, affine=False)
    m = c.mrecist
    assert c.baseline.phase.phase == "arterial" and m.category == "PR", m.basis  # viable 30 + 16 -> 16 + 10 mm
    assert all(les.viable_mm is not None for les in c.baseline.lesions)
    assert next(les for les in c.baseline.lesions if les.id == 3).viable_mm == 0.0  # hypodense: no enhancement
    assert [t.baseline_id for t in m.targets] == [1, 2] and abs(m.baseline_sum_mm - 46) <= 2 * 3.2
    chosen = compare_studies(base, follow, targets=[2], affine=False)
    assert chosen.recist.chosen_by == "reader" and [t.baseline_id for t in chosen.recist.targets] == [2]
    assert chosen.recist.category == "PR" and "chosen by the reader" in chosen.recist.basis[0]  # 16 -> 10 mm
    stay = compare_studies(base, follow, targets=[3], affine=False)
    assert stay.recist.category == "SD" and stay.mrecist.category == "NE"  # 14 -> 14 mm; never enhancing


def test_two_patients_are_refused_unless_on_purpose():
    p = make_pair([Lesion("a", (9, 7, 7), (9, 7, 7))], patient=("P1", "P2"))
    with pytest.raises(FollowupError, match="not the baseline's patient.*'P1' vs 'P2'"):
        compare_studies(p.baseline, p.followup)
    c = compare_studies(p.baseline, p.followup, allow_different_patients=True, affine=False)
    assert any("different patients compared on purpose" in w for w in c.warnings)
    same_name = replace(p.followup, patient_id="p1 ", patient_name="DOE^JOHN")
    assert compare_studies(replace(p.baseline, patient_name="Doe John"), same_name, affine=False).warnings == ()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        compare_studies(p.baseline, same_name, cancel=token)


def test_the_files_written(mixed, tmp_path):
    p, c = mixed
    paths = write_all(tmp_path, c, p.baseline, p.followup)
    assert [x.name for x in paths] == ["compare.json", "compare.csv", "compare.pdf"]
    j = json.loads(paths[0].read_text())
    assert tuple(j) == JSON_KEYS and j["format"] == "liverseg-compare/1" and j["recist"]["category"] == "PD"
    assert len(j["lesions"]["baseline"]) == 3 and {r["match"] for r in j["lesions"]["followup"]} == {"same", "new"}
    assert sum(r["target_recist"] for r in j["lesions"]["baseline"]) == 2
    assert j["mrecist"]["category"] == "NE" and j["not_decided"] and "Research use only" in j["notice"]
    rows = list(csv.DictReader(paths[1].open()))
    assert tuple(rows[0]) == CSV_COLUMNS and sorted(r["match"] for r in rows) == ["gone", "new", "same", "same"]
    assert paths[2].read_bytes()[:5] == b"%PDF-" and paths[2].stat().st_size > 5000
    with pytest.raises(FollowupError.__mro__[1], match="already exists"):
        write_all(tmp_path, c, p.baseline, p.followup)


def write_nifti(path, array, tp):
    import nibabel as nib

    from core.io.export import nifti_affine
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), nifti_affine(tp.spacing, tp.origin)),
             str(path))


def test_cli_compare_with_label_files(tmp_path, capsys):
    p = make_pair(MIXED)
    for name, tp in (("base", p.baseline), ("follow", p.followup)):
        write_nifti(tmp_path / f"{name}.nii.gz", tp.hu, tp)
        write_nifti(tmp_path / f"{name}-labels.nii.gz", tp.label, tp)
    out = tmp_path / "out"
    args = ["compare", str(tmp_path / "base.nii.gz"), str(tmp_path / "follow.nii.gz"), "--out", str(out),
            "--baseline-labels", str(tmp_path / "base-labels.nii.gz"),
            "--followup-labels", str(tmp_path / "follow-labels.nii.gz")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228-247): PD" in text
    assert "1 new" in text and "1 gone" in text and "2 same" in text
    j = json.loads((out / "compare.json").read_text())
    assert j["recist"]["category"] == "PD" and (out / "compare.pdf").exists() and (out / "compare.csv").exists()
    assert main(args) == 2 and "already exists" in capsys.readouterr().err
    assert main(args + ["--force", "--targets", "9"]) == 2
    assert "targets [9]: the baseline has lesions [1, 2, 3]" in capsys.readouterr().err
    assert main(args + ["--force", "--targets", "2"]) == 0
    assert json.loads((out / "compare.json").read_text())["recist"]["targets_chosen_by"] == "reader"


def test_the_readers_targets_recompute_the_categories_alone(mixed):
    """Comparison.with_targets: what the GUI's target checkboxes call; the registration and the
    matches stay, the categories are those compare_studies gives for the same targets."""
    p, c = mixed
    chosen = c.with_targets([3])
    assert chosen.registration is c.registration and chosen.matches is c.matches
    same = compare_studies(p.baseline, p.followup, targets=[3])
    assert chosen.recist == same.recist and chosen.mrecist == same.mrecist == c.mrecist  # mRECIST: portal-venous
    assert chosen.recist.chosen_by == "reader" and [t.status for t in chosen.recist.targets] == ["gone"]
    assert c.with_targets(None).recist == c.recist
    with pytest.raises(FollowupError, match="at most 2"):
        c.with_targets([1, 2, 3])


def test_the_patient_check_needs_only_the_headers():
    from core.followup.timepoint import Patient, check_same_patient
    with pytest.raises(FollowupError, match="'P1' vs 'P2'"):
        check_same_patient(Patient("a", "P1", "DOE^JO"), Patient("b", "P2", "Doe Jo"))
    assert check_same_patient(Patient("a", "P1", "DOE^JO"), Patient("b", "P1", "doe jo")) == []
