"""core.datasets.anatomy and label-map cases: every structure read, masks-only patients imported as label maps."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from core.datasets import anatomy as A
from core.datasets.dataset import Case, list_cases, load_case, read_manifest, write_case
from core.datasets.ircadb import import_ircadb
from core.runtime.errors import DatasetError
from core.synthetic.phantom import make_phantom, write_patient
from tests.conftest import ROOT

SHARED = ROOT.parent / "shared" / "data"


def test_structure_codes_cover_the_ircadb_names():
    assert A.structure_code("liver") == A.LIVER
    for n in ("livertumor", "livertumor1", "livertumor01", "livertumors", "LiverTumor02"):
        assert A.structure_code(n) == A.TUMOUR, n
    for n in ("liverkyst", "livercyst", "liverkyste"):
        assert A.structure_code(n) == A.CYST, n
    assert A.structure_code("portalvein1") == A.PORTAL
    assert A.structure_code("venacava") == A.structure_code("venoussystem") == A.VENOUS
    assert A.structure_code("leftkidney") == A.structure_code("kidneys") == A.KIDNEY
    assert A.structure_code("rightlung") == A.structure_code("lungs") == A.LUNG
    assert A.structure_code("skin") == A.BODY
    assert A.structure_code("tumor") == A.ADRENAL  # patient 7's adrenal mass is not a liver tumour
    for n in ("metastasectomie", "Stones", "metal", "biliarysystem", "whatever"):
        assert A.structure_code(n) == A.OTHER, n


def test_paint_order_vessels_over_liver_tumour_over_all():
    shape = (1, 4, 4)
    body = np.ones(shape, bool)
    liver = np.zeros(shape, bool)
    liver[0, 1:3, 1:3] = True
    vessel = np.zeros(shape, bool)
    vessel[0, 1, 1] = True
    tumour = np.zeros(shape, bool)
    tumour[0, 2, 2] = True
    out = A.paint({A.BODY: body, A.LIVER: liver, A.PORTAL: vessel, A.TUMOUR: tumour}, shape)
    assert out[0, 0, 0] == A.BODY and out[0, 1, 1] == A.PORTAL and out[0, 2, 2] == A.TUMOUR
    assert out[0, 1, 2] == A.LIVER and out.dtype == np.uint8
    assert A.has_body(out) and not A.has_body(np.zeros(shape, np.uint8))
    assert A.structures_present(out) == ["body", "liver", "tumour", "portal vein"]


@pytest.fixture(scope="module")
def mixed_source(tmp_path_factory):
    """Two phantom patients with CT and one with its masks only (skin and bone outlined)."""
    root = tmp_path_factory.mktemp("mixed")
    cases = [make_phantom(s, 12, 64) for s in (31, 32, 33)]
    for i, c in enumerate(cases[:2], start=1):
        write_patient(c, root / "src", i, anatomy=True)
    write_patient(cases[2], root / "src", 3, anatomy=True, ct=False)
    return root / "src", cases


def test_masks_only_patient_becomes_a_label_map_case(mixed_source, tmp_path):
    src, cases = mixed_source
    ids = import_ircadb(src, tmp_path / "ds")
    assert ids == ["phantom-s31-1", "phantom-s32-2", "phantom-s33-3"]
    assert list_cases(tmp_path / "ds") == ["phantom-s31-1", "phantom-s32-2"]  # CT cases by default
    assert list_cases(tmp_path / "ds", "labelmap") == ["phantom-s33-3"]
    assert list_cases(tmp_path / "ds", "all") == ids
    entry = read_manifest(tmp_path / "ds")["cases"]["phantom-s33-3"]
    assert entry["kind"] == "labelmap" and "body" in entry["structures"] and "bone" in entry["structures"]
    lm = load_case(tmp_path / "ds", "phantom-s33-3")
    assert lm.hu is None and lm.kind == "labelmap"
    np.testing.assert_array_equal(lm.label, cases[2].label)  # same labels as if its CT were there
    assert lm.spacing == pytest.approx(cases[2].spacing)
    assert ((lm.anatomy == A.TUMOUR) == (lm.label == 2)).all()
    assert (lm.anatomy[lm.label == 1] != A.OUTSIDE).all()
    ct = load_case(tmp_path / "ds", "phantom-s31-1", mmap=True)
    assert ct.kind == "ct" and ct.anatomy is not None and (ct.anatomy == A.BONE).any()


def test_label_map_round_trip_and_refusals(tmp_path):
    label = np.zeros((3, 8, 8), np.uint8)
    label[1, 2:5, 2:5] = 1
    anat = np.where(label > 0, A.LIVER, A.BODY).astype(np.uint8)
    write_case(tmp_path, Case("m", None, label, (2.0, 1.0, 1.0), anatomy=anat))
    back = load_case(tmp_path, "m", mmap=True)
    assert back.hu is None
    np.testing.assert_array_equal(back.anatomy, anat)
    with pytest.raises(DatasetError, match="arrays of different shapes"):
        write_case(tmp_path, Case("bad", None, label, (1, 1, 1), anatomy=anat[:2]))
    with pytest.raises(ValueError, match="kind must be"):
        list_cases(tmp_path, "phantoms")


def test_masks_only_folder_without_liver_is_refused(tmp_path):
    folder = tmp_path / "3Dircadb1.9"
    folder.mkdir()
    with zipfile.ZipFile(folder / "MASKS_DICOM.zip", "w") as z:
        z.writestr("MASKS_DICOM/skin/image_0", b"not dicom")
    with pytest.raises(DatasetError, match="no liver mask"):
        import_ircadb(folder, tmp_path / "ds")


def test_real_label_map_patient_18():
    """A real masks-only patient as shipped: grid from the masks' headers, every structure read."""
    src = SHARED / "ircadb-masks" / "3Dircadb1.18"
    if not (src / "MASKS_DICOM.zip").exists():
        pytest.skip("../shared/data/ircadb-masks is absent: the real label-map test needs the shared data")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        import_ircadb(src, tmp)
        c = load_case(tmp, "3Dircadb1.18")
        entry = read_manifest(tmp)["cases"]["3Dircadb1.18"]
    assert c.hu is None and c.label.shape == (74, 512, 512)
    assert c.spacing == pytest.approx((2.5, 0.742188, 0.742188), rel=1e-4)
    assert set(entry["structures"]) == {"body", "liver", "tumour", "portal vein", "venous system", "bone",
                                        "gallbladder"}
    assert entry["liver_ml"] == pytest.approx(1681, rel=0.01) and entry["tumor_ml"] == pytest.approx(6.3, abs=0.2)
