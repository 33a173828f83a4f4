"""Bringing back a segmentation: NIfTI in any storage order, DICOM SEG; mismatches refused."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from core.io.dicom import load_series
from core.io.export import write_dicom_seg, write_nifti
from core.io.label_file import LabelFileError, read_label, segment_code
from core.io.volume_file import read_volume_file
from core.study.study import Study
from tests.core.io.test_volume_file import canonical_ct, write_as


@pytest.fixture(scope="module")
def dicom_study(phantom_study):
    folder, case = phantom_study
    return Study.from_volume(load_series(folder)), case.label


def test_nifti_round_trip_in_any_storage_order(dicom_study, tmp_path):
    study, label = dicom_study
    p = write_nifti(tmp_path / "ours.nii.gz", label, study)
    np.testing.assert_array_equal(read_label(p, study), label)
    img = nib.load(str(p))
    for ornt in ([[2, -1], [0, 1], [1, -1]], [[0, -1], [1, -1], [2, 1]]):  # other tools' storage orders
        other = img.as_reoriented(np.array(ornt, float))
        nib.save(other, str(tmp_path / "other.nii.gz"))
        np.testing.assert_array_equal(read_label(tmp_path / "other.nii.gz", study), label)
    shifted = nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ np.diag([1, 1, 1, 1]) + np.array(
        [[0, 0, 0, 5.0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    nib.save(shifted, str(tmp_path / "shifted.nii.gz"))
    with pytest.raises(LabelFileError, match="does not line up with the study's") as info:
        read_label(tmp_path / "shifted.nii.gz", study)
    assert "\n" not in str(info.value) and "voxels of" in str(info.value)
    nib.save(nib.Nifti1Image((np.asarray(img.dataobj) * 3).astype(np.uint8), img.affine), str(tmp_path / "v.nii"))
    with pytest.raises(LabelFileError, match="label values"):
        read_label(tmp_path / "v.nii", study)


def test_label_for_a_nifti_study(tmp_path):
    write_as(tmp_path / "ct.nii.gz", canonical_ct(), "permuted")
    study = Study.from_volume(read_volume_file(tmp_path / "ct.nii.gz"))
    label = (study.hu > 0).astype(np.uint8) + (study.hu > 150).astype(np.uint8)
    p = write_nifti(tmp_path / "seg.nii.gz", label, study)
    np.testing.assert_array_equal(read_label(p, study), label)


def test_dicom_seg_round_trip_and_wrong_series(dicom_study, tmp_path):
    study, label = dicom_study
    p = write_dicom_seg(tmp_path / "seg.dcm", label, study.volume)
    np.testing.assert_array_equal(read_label(p, study), label)
    from dataclasses import replace
    v2 = replace(study.volume, meta=replace(study.volume.meta, series_uid="1.2.826.0.1.3680043.99"))
    with pytest.raises(LabelFileError, match="refers to series"):
        read_label(p, Study.from_volume(v2))
    other = Study(study.hu, study.spacing, study.origin, study.direction)  # not opened from DICOM
    with pytest.raises(LabelFileError, match="needs a study opened from its DICOM series"):
        read_label(p, other)
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(LabelFileError, match="not a label volume .NIfTI, NRRD, MetaImage. or a DICOM SEG"):
        read_label(tmp_path / "junk.txt", study)


def test_segment_names_of_other_tools():
    assert segment_code("Liver") == 1 and segment_code("liver tumor") == 2
    assert segment_code("Hepatic lesion 3") == 2 and segment_code("Spleen") == 0
