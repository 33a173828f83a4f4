"""Resolving a model path: a fine-tune's work folder (a model folder per stage) stands for its stage's model."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.model.card import model_folder
from core.model.io import find_model_file, load_seg_model
from core.runtime.errors import ModelError
from tests.core.models import threshold_model

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def finetune_out(tmp_path_factory):
    """What ``liverseg finetune --out FT`` leaves: FT/liver and FT/tumor, each a model folder."""
    ft = tmp_path_factory.mktemp("ft")
    threshold_model(ft / "liver", "liver", 60)
    threshold_model(ft / "tumor", "tumor", 400)
    return ft


def test_a_work_folder_gives_the_stage_asked_for(finetune_out):
    liver = load_seg_model(finetune_out, "liver")
    tumour = load_seg_model(finetune_out, "tumor")
    assert Path(liver.path) == finetune_out / "liver" / "model.keras" and liver.stage == "liver"
    assert Path(tumour.path) == finetune_out / "tumor" / "model.keras" and tumour.stage == "tumor"
    assert tuple(liver.model.output_shape) == (None, 32, 32, 1)  # loaded from the stage folder


def test_without_a_stage_two_stage_folders_are_ambiguous_and_named(finetune_out):
    with pytest.raises(ModelError) as exc:
        find_model_file(finetune_out)
    message = str(exc.value)
    assert str(finetune_out / "liver") in message and str(finetune_out / "tumor") in message
    with pytest.raises(ModelError, match="give .*liver or .*tumor"):
        model_folder(finetune_out)  # export, quantise and share resolve folders the same way


def test_one_stage_folder_is_used_without_a_stage_and_refused_for_the_other(tmp_path):
    threshold_model(tmp_path / "ft" / "liver", "liver", 60)
    ft = tmp_path / "ft"
    assert find_model_file(ft) == ft / "liver" / "model.keras"
    assert model_folder(ft) == ft / "liver"
    with pytest.raises(ModelError) as exc:
        load_seg_model(ft, "tumor")
    assert "no model.keras in this folder" in str(exc.value) and str(ft / "liver") in str(exc.value)
    assert "not a tumor model" in str(exc.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"empty: no model.keras in this folder$"):
        load_seg_model(tmp_path / "empty", "liver")


def test_a_stage_folder_holding_the_other_stage_is_refused_by_its_card(tmp_path):
    threshold_model(tmp_path / "ft" / "liver", "tumor", 400)  # misfiled: the card says tumor
    with pytest.raises(ModelError, match="a tumor model, not a liver model"):
        load_seg_model(tmp_path / "ft", "liver")


def test_cli_predict_takes_a_finetune_folder_for_both_stages(finetune_out, tmp_path):
    from core.synthetic.phantom import make_phantom, write_patient
    folder = write_patient(make_phantom(3, 12, 48), tmp_path / "zips", 1)
    with zipfile.ZipFile(folder / "PATIENT_DICOM.zip") as z:
        z.extractall(tmp_path / "study")
    out = tmp_path / "label.nii.gz"
    r = subprocess.run([sys.executable, "-m", "app.cli", "predict", str(tmp_path / "study"), "--out", str(out),
                        "--liver-model", str(finetune_out), "--tumor-model", str(finetune_out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    import nibabel as nib
    label = nib.load(out).get_fdata()
    assert label.shape[2] == 12 and (label == 1).any()
