"""core.study.phase: the contrast phase read from the aorta, the liver's vessels and parenchyma."""

from __future__ import annotations

import numpy as np
import pytest

from core.study.phase import PhaseEstimate, aorta_hu, detect_phase

PX = 0.8  # mm


def torso(aorta: float, liver: float, vessels: float, slices: int = 6, size: int = 320, seed: int = 0):
    """An axial torso: body, a vertebral body (cancellous 180 HU in a 600 HU cortex) with the aorta in
    front of it and to the patient's left (+x), and a liver on the right (-x) crossed by vessels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    c = size / 2
    hu = np.full((size, size), -1000.0, np.float32)
    hu[((xx - c) / 140) ** 2 + ((yy - c) / 110) ** 2 <= 1] = 40  # body (muscle / fat average)
    vb = ((xx - c) ** 2 + (yy - (c + 55)) ** 2) <= 24 ** 2
    hu[vb] = 600
    hu[((xx - c) ** 2 + (yy - (c + 55)) ** 2) <= 21 ** 2] = 180
    hu[((xx - (c + 12)) ** 2 + (yy - (c + 15)) ** 2) <= 13 ** 2] = aorta  # 21 mm aorta
    liv = ((xx - (c - 60)) / 60) ** 2 + ((yy - (c - 10)) / 55) ** 2 <= 1
    hu[liv] = liver
    ves = liv & ((np.abs(yy - (c - 10)) < 4) | (np.abs(xx - (c - 60)) < 4))
    hu[ves] = vessels
    vol = np.repeat(hu[None], slices, axis=0) + rng.normal(0, 8, (slices, size, size))
    label = np.repeat(liv[None].astype(np.uint8), slices, axis=0)
    return np.clip(vol, -1024, 3071).astype(np.int16), label


@pytest.mark.parametrize("phase, aorta, liver, vessels", [
    ("unenhanced", 45, 58, 40),
    ("arterial", 300, 75, 130),
    ("portal-venous", 180, 110, 175),
    ("delayed", 120, 95, 115),
])
def test_each_phase_from_its_typical_values(phase, aorta, liver, vessels):
    hu, label = torso(aorta, liver, vessels)
    est = detect_phase(hu, (2.5, PX, PX), label)
    assert isinstance(est, PhaseEstimate)
    assert est.phase == phase, est.reason
    # unenhanced, the brightest disk before the spine is whatever soft tissue is brightest there
    assert est.aorta_hu == pytest.approx(max(aorta, liver), abs=12)
    assert est.liver_hu == pytest.approx(liver, abs=6)
    assert set(est.to_json()) == {"phase", "aorta_hu", "vessels_hu", "liver_hu", "reason"}


def test_lipiodol_in_the_liver_is_not_taken_for_enhanced_vessels():
    hu, label = torso(45, 55, 40)
    hu[:, 150:165, 90:110] = 900  # a dense lipiodol deposit after chemo-embolisation
    assert detect_phase(hu, (2.5, PX, PX), label).phase == "unenhanced"


def test_the_aorta_is_found_left_of_the_spine_even_when_the_image_is_mirrored():
    hu, label = torso(300, 75, 130)
    assert aorta_hu(hu[0].astype(np.float32), PX) == pytest.approx(300, abs=12)
    flipped = hu[:, :, ::-1]  # x running to the patient's right (direction[0, 0] = -1)
    est = detect_phase(flipped, (2.5, PX, PX), label[:, :, ::-1], direction=np.diag([-1.0, 1.0, 1.0]))
    assert est.phase == "arterial"


def test_without_a_liver_mask_only_a_clear_aorta_decides():
    hu, _ = torso(300, 75, 130)
    assert detect_phase(hu, (2.5, PX, PX)).phase == "arterial"
    hu, _ = torso(180, 110, 175)
    assert detect_phase(hu, (2.5, PX, PX)).phase == "enhanced"
    air = np.full((4, 64, 64), -1000, np.int16)
    assert detect_phase(air, (2.5, PX, PX)).phase == "unknown"


def test_the_report_carries_the_phase_beside_the_summary(tmp_path):
    """``phase`` is a top-level key of the JSON report (the StudySummary's own keys unchanged), and
    the PDF report is written with it."""
    import json

    from core.runtime.summary import StudySummary
    from core.study.session import Segmented, StudySession
    from core.study.study import Study
    from core.synthetic.phantom import make_phantom
    c = make_phantom(3, 48, 128)
    s = StudySession(Study(c.hu, c.spacing, c.origin, np.eye(3), "phantom", reference=c.label))
    assert s.contrast_phase(np.zeros_like(c.label)).phase == "enhanced"  # no liver: the aorta alone
    rep = s.report()  # the reference's liver: the vessels speak too
    assert rep["phase"] == s.contrast_phase().to_json() and rep["phase"]["phase"] == "arterial"
    summary = StudySummary.from_json(rep)
    assert {k: rep[k] for k in summary.to_json()} == summary.to_json() and "phase" not in summary.to_json()
    s.adopt(Segmented(c.label.copy()))
    s.phase = PhaseEstimate("delayed", 120.0, None, None, "given")
    assert s.report()["phase"]["phase"] == "delayed"  # what the session knows is what it reports
    s.adopt(Segmented(c.label.copy()))
    assert s.phase is None  # a new label: read again
    json_path = s.export("report", tmp_path / "r.json")
    assert json.loads(json_path.read_text())["phase"]["phase"] == "arterial"
    assert s.export("pdf", tmp_path / "r.pdf").stat().st_size > 1000


def test_info_prints_each_acquisitions_phase_with_the_flag(tmp_path, capsys):
    from app.cli import main
    from tests.core.factory import write_series
    write_series(tmp_path / "s", torso(300, 75, 130)[0], uid_key="ct", acquisition=1)  # written at 0.7 mm pixels
    write_series(tmp_path / "s", torso(45, 58, 40)[0], uid_key="ct", name="b", acquisition=2)
    assert main(["info", str(tmp_path / "s")]) == 0
    assert "contrast phase" not in capsys.readouterr().out  # reading the pixels only on request
    assert main(["info", str(tmp_path / "s"), "--phase"]) == 0
    out = capsys.readouterr().out
    assert "#acq1" in out and "#acq2" in out
    phases = [line.split(": ", 1)[1].split()[0] for line in out.splitlines() if "contrast phase:" in line]
    assert phases == ["arterial", "unenhanced"], out


def test_a_bright_spot_before_the_spine_does_not_make_an_unenhanced_liver_enhanced():
    """A calcified aortic wall (or bone at a 10 mm slice's edge) reads 130 HU; the liver at 55 HU with
    vessels no brighter than it says there is no contrast."""
    hu, label = torso(130, 55, 45)
    est = detect_phase(hu, (10.0, PX, PX), label)
    assert est.phase == "unenhanced" and "no contrast" in est.reason
