"""A real follow-up pair: HCC_007's arterial acquisitions of 1997-12 and 1998-03 (HCC-TACE-Seg,
../shared), compared with their committed silver labels (no model run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.datasets.hcc_tace import load_volume, series_named
from core.followup.compare import compare_studies
from core.followup.timepoint import TimePoint
from core.io.label_file import read_nifti_label

LABELS = Path(__file__).resolve().parents[3] / "resources" / "training-labels" / "hcc-tace-seg"


def time_point(unpacked, name: str) -> TimePoint:
    s = series_named(name)
    vol = load_volume(unpacked, s)
    return TimePoint(vol.hu, read_nifti_label(LABELS / f"{name}.nii.gz", vol), vol.spacing, vol.origin,
                     vol.direction, name=name, patient_id=vol.meta.patient_id, patient_name=vol.meta.patient_name,
                     study_date=vol.meta.study_date)


@pytest.mark.shared
def test_hcc_007_large_tumour_is_matched_across_chemo_embolisation(hcc_unpacked):
    base = time_point(hcc_unpacked, "HCC_007_19971227_s4_acq2")
    follow = time_point(hcc_unpacked, "HCC_007_19980314_s4_acq1")
    c = compare_studies(base, follow)
    assert c.baseline.phase.phase == c.followup.phase.phase == "arterial"
    assert c.registration.fits[-1].liver_dice is not None and max(f.liver_dice for f in c.registration.fits) > 0.75
    big_base = max(c.baseline.lesions, key=lambda les: les.volume_ml)
    big_follow = max(c.followup.lesions, key=lambda les: les.volume_ml)
    assert big_base.volume_ml > 500 and big_follow.volume_ml > 400
    m = c.match_of("baseline", big_base.id)
    assert m is not None and m.status in ("same", "split", "merged"), m
    assert big_follow.id in m.followup_ids
    assert c.recist.category in ("CR", "PR", "SD", "PD")
