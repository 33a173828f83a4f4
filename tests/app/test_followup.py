"""File > Compare with earlier study, end to end on a phantom pair with known lesions and a known
motion; the series chooser's acquisitions; the contrast phase in the Results tab."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from core.study.session import Segmented, StudySession
from core.study.study import Study
from tests.core.followup.pairs import Lesion, make_pair

from .conftest import wait_idle

# a, b shrink (enhancing), c stays (hypodense), "gone" goes, "new" appears under 10 mm (equivocal)
LESIONS = [Lesion("a", (15, 11, 10), (8, 6, 6), contrast=70.0), Lesion("b", (8, 6, 6), (5, 4, 4), contrast=70.0),
           Lesion("c", (7, 6, 6), (7, 6, 6), contrast=-40.0), Lesion("gone", (7, 5, 5), None, contrast=70.0),
           Lesion("new", None, (4, 3.5, 3.5), contrast=70.0)]


def write_nifti(path, a: np.ndarray, grid) -> str:
    """``a`` [Z, Y, X] stored i=x, j=y, k=z with ``grid``'s LPS geometry (as RAS for NIfTI)."""
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ grid.affine()
    nib.save(nib.Nifti1Image(np.ascontiguousarray(np.transpose(a, (2, 1, 0))), ras), str(path))
    return str(path)


@pytest.fixture(scope="module")
def pair():
    return make_pair(LESIONS, seed=3)


def open_followup(win, qtbot, tp):
    """The follow-up as the open study, its label as the working segmentation."""
    study = Study(tp.hu, tp.spacing, tp.origin, np.eye(3), "follow-up")
    with qtbot.waitSignal(win.studyLoaded, timeout=60000):
        win.files.show_study(StudySession(study))
    with qtbot.waitSignal(win.summaryUpdated, timeout=60000):
        win.segmentation.show_segmentation(Segmented(tp.label.copy()), win.state.session)
    wait_idle(qtbot, win)


def compared(win, qtbot, pair, tmp_path, **kw):
    base = pair.baseline
    path = write_nifti(tmp_path / "baseline.nii.gz", base.hu, base.grid)
    labels = write_nifti(tmp_path / "baseline-labels.nii.gz", base.label, base.grid)
    open_followup(win, qtbot, pair.followup)
    win.followup.compare_with(path, labels=labels, **kw)
    wait_idle(qtbot, win, 180000)
    return win.followup


def test_compare_with_an_earlier_study(window, qtbot, pair, tmp_path):
    f = compared(window, qtbot, pair, tmp_path)
    w, c = f.window, f.comparison
    assert w is not None and w.isVisible() and f._progress is None
    np.testing.assert_allclose(f.baseline.origin, pair.baseline.origin, atol=1e-3)  # the file's geometry kept
    status = {w.table.item(r, 0).text(): w.table.item(r, 1).text() for r in range(w.table.rowCount())}
    assert sorted(status.values()) == ["gone", "new", "same", "same", "same"], status
    assert c.baseline.phase.phase == c.followup.phase.phase == "arterial"
    assert (c.recist.category, c.mrecist.category) == ("PR", "PR"), (c.recist.basis, c.mrecist.basis)
    assert w.targets() == [1, 2] and "RECIST 1.1: PR" in w.categories.text()
    assert w.table.item(0, 2).text() == f"{c.baseline.lesions[0].longest_mm:.1f}"

    w.set_target(3, True)  # a third target is refused
    assert w.targets() == [1, 2] and "At most 2" in w.message.text() and f.comparison.recist.chosen_by == "software"
    w.set_target(1, False)
    w.set_target(2, False)
    assert f.comparison.recist.category == "NE"  # no target at all
    w.set_target(3, True)  # the hypodense lesion that stayed: stable, and never enhancing
    assert w.targets() == [3] and f.comparison.recist.chosen_by == "reader"
    assert (f.comparison.recist.category, f.comparison.mrecist.category) == ("SD", "NE")
    assert "RECIST 1.1: SD" in w.categories.text()
    w.default_btn.click()
    assert w.targets() == [1, 2] and f.comparison.recist.category == "PR"

    # the linked cursors: a click in the baseline moves the follow-up to the registered point
    a = next(les for les in c.baseline.lesions if les.id == 1)
    zyx = (a.axis_slice + 2, int(a.centroid[1]) + 3, int(a.centroid[2]) - 4)
    w.base_view.set_cursor(*zyx)
    truth = pair.matrix @ np.append(f.baseline.grid.to_lps([zyx])[0], 1.0)
    mapped = w.map_point("baseline", zyx)
    err = np.linalg.norm(f.followup.grid.to_lps([mapped])[0] - truth[:3])
    assert err < 2.0, err
    assert w.follow_view.cursor == tuple(int(v) for v in np.round(mapped))
    w.follow_view.set_cursor(20, 60, 70)  # and back
    assert w.base_view.cursor == tuple(int(v) for v in np.round(w.map_point("followup", (20, 60, 70))))
    w.show_row(len(c.baseline.lesions))  # the new lesion, in the follow-up
    new = next(les for les in c.followup.lesions if c.match_of("followup", les.id).status == "new")
    assert w.follow_view.cursor == (new.axis_slice, round(new.centroid[1]), round(new.centroid[2]))

    out = tmp_path / "out"
    f.export(str(out))
    wait_idle(qtbot, window)
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "compare.json", "compare.pdf"]
    doc = json.loads((out / "compare.json").read_text())
    assert doc["recist"]["category"] == "PR" and doc["followup"]["name"] == "follow-up"
    assert "Wrote compare.json" in w.message.text()


def test_two_patients_only_on_purpose(window, qtbot, pair, tmp_path, monkeypatch):
    from core.followup.timepoint import Patient
    monkeypatch.setattr(Patient, "of_session", classmethod(
        lambda cls, s: cls(s.source or s.study.name, "P1" if s.source else "P2")))
    asked = []
    f = compared(window, qtbot, pair, tmp_path, confirm=lambda m: asked.append(m) or False)
    assert f.window is None and f.comparison is None and f._progress is None
    assert "not the baseline's patient" in asked[0]
    window.followup.compare_with(str(tmp_path / "baseline.nii.gz"), labels=str(tmp_path / "baseline-labels.nii.gz"),
                                 confirm=lambda m: True)
    wait_idle(qtbot, window, 180000)
    assert any("different patients compared on purpose" in w for w in f.comparison.warnings)


def test_the_earlier_study_is_segmented_with_the_selected_models(window, qtbot, pair, tmp_path, threshold_models):
    base = pair.baseline
    path = write_nifti(tmp_path / "baseline.nii.gz", base.hu, base.grid)
    open_followup(window, qtbot, pair.followup)
    window.followup.models = lambda: threshold_models
    window.followup.compare_with(path)
    wait_idle(qtbot, window, 180000)
    f = window.followup
    assert f.comparison is not None and (f.baseline.label == 1).any()  # segmented, then compared


def test_the_series_chooser_offers_each_acquisition(window, qtbot, tmp_path):
    from app.controllers.study_files import series_labels
    from tests.core.factory import hu_volume, write_series
    write_series(tmp_path / "s", hu_volume(6, 16), uid_key="ct", acquisition=2)
    write_series(tmp_path / "s", hu_volume(6, 16) + 100, uid_key="ct", name="b", acquisition=3)
    offered = []
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        window.files.open_path(str(tmp_path / "s"), choose=lambda s: offered.extend(s) or 1)
    labels = series_labels(offered)
    assert len(labels) == 2 and all("6 slices (one of 2 acquisitions at the same positions)" in t for t in labels)
    assert sorted(t.split("acquisition ")[1][0] for t in labels) == ["2", "3"]
    assert window.state.study.volume.meta.acquisition == offered[1].acquisition


def test_the_contrast_phase_is_shown(window, qtbot):
    from .conftest import demo_segmented
    demo_segmented(window, qtbot)
    wait_idle(qtbot, window)
    s = window.state.session
    assert s.phase is not None and s.phase == s.contrast_phase()  # read with the liver once segmented
    assert f"<b>{s.phase.phase}</b>" in window.results.phase.text()
    assert s.phase.reason in window.results.phase.toolTip()
