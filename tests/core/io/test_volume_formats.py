"""NRRD and MetaImage CT volumes: read like the same data and geometry stored as NIfTI, labels back on
the file's grid, bad input refused in one line."""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from core.io.export import write_nifti
from core.io.label_file import LabelFileError, read_label
from core.io.volume_file import VolumeFileError, is_volume_file, read_volume_file
from core.study.batch import find_studies, study_name
from core.study.study import Study
from tests.core.io.test_volume_file import SPACING, canonical_ct, write_as

ORDERS = ["RAS", "LPS", "permuted"]
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
MET = {np.dtype("int16"): "MET_SHORT", np.dtype("uint16"): "MET_USHORT", np.dtype("uint8"): "MET_UCHAR",
       np.dtype("int8"): "MET_CHAR", np.dtype("int32"): "MET_INT", np.dtype("uint32"): "MET_UINT",
       np.dtype("float32"): "MET_FLOAT", np.dtype("float64"): "MET_DOUBLE"}


def reference(tmp_path: Path, order: str, hu=None):
    """``hu`` stored in ``order`` as NIfTI: (file array, RAS affine, the NIfTI path's volume)."""
    hu = canonical_ct(z=6, y=7, x=8) if hu is None else hu
    path = tmp_path / f"ref-{order}.nii"
    arr, ras = write_as(path, hu, order)
    return arr, ras, read_volume_file(path)


def write_nrrd(path: Path, arr: np.ndarray, ras: np.ndarray, space: str, **header) -> Path:
    """``arr`` (i, j, k) with its RAS affine, stored in NRRD ``space`` ("RAS", "LPS" or a long name)."""
    world = ras if space.lower() in ("ras", "right-anterior-superior") else RAS_FROM_LPS @ ras
    nrrd.write(str(path), np.ascontiguousarray(arr), {"space": space, "space directions": world[:3, :3].T,
                                                     "space origin": world[:3, 3], **header})
    return path


def meta_header(arr: np.ndarray, ras: np.ndarray, data_file: str = "LOCAL", msb=False, compressed=None,
                element_type=None, extra: str = "") -> str:
    lps = RAS_FROM_LPS @ ras
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    axes = (lps[:3, :3] / spacing).T  # row a: axis a's direction (ITK's TransformMatrix)
    lines = ["ObjectType = Image", "NDims = 3", "BinaryData = True", f"BinaryDataByteOrderMSB = {msb}",
             f"CompressedData = {compressed is not None}",
             *([f"CompressedDataSize = {len(compressed)}"] if compressed is not None else []),
             "TransformMatrix = " + " ".join(f"{v:g}" for v in axes.ravel()),
             "Offset = " + " ".join(f"{v:g}" for v in lps[:3, 3]), "CenterOfRotation = 0 0 0",
             "AnatomicalOrientation = ???", "ElementSpacing = " + " ".join(f"{v:g}" for v in spacing),
             "DimSize = " + " ".join(map(str, arr.shape)), f"ElementType = {element_type or MET[arr.dtype]}"]
    return "\n".join(lines) + "\n" + extra + f"ElementDataFile = {data_file}\n"


def write_meta(path: Path, arr: np.ndarray, ras: np.ndarray, msb=False, compress=False, **kw) -> Path:
    """A MetaImage written by hand: ``.mha`` inline, ``.mhd`` with a ``.raw`` / ``.zraw`` beside it."""
    raw = arr.astype(arr.dtype.newbyteorder(">" if msb else "<")).tobytes(order="F")  # x fastest
    data = zlib.compress(raw) if compress else raw
    if path.suffix == ".mhd":
        name = path.with_suffix(".zraw" if compress else ".raw").name
        (path.parent / name).write_bytes(data)
        path.write_text(meta_header(arr, ras, name, msb, data if compress else None, **kw))
    else:
        path.write_bytes(meta_header(arr, ras, "LOCAL", msb, data if compress else None, **kw).encode() + data)
    return path


def same_as_reference(v, ref) -> None:
    np.testing.assert_array_equal(v.hu, ref.hu)
    assert v.spacing == pytest.approx(ref.spacing, rel=1e-5)
    assert v.spacing == pytest.approx(SPACING, rel=1e-5)
    assert v.origin == pytest.approx(ref.origin, abs=1e-4)
    assert v.origin == pytest.approx((-90.0, 40.0, 300.0), abs=1e-4)
    np.testing.assert_allclose(v.direction, ref.direction, atol=1e-6)
    np.testing.assert_allclose(v.file_grid.affine_array(), ref.file_grid.affine_array(), atol=1e-5)
    assert v.warnings == ()


def label_lines_up(tmp_path: Path, v, arr: np.ndarray, ras: np.ndarray, name: str) -> None:
    """A label computed on our layout is written onto the file's grid with the file's affine."""
    label = (v.hu >= 200).astype(np.uint8)
    assert label.sum() > 0
    out = write_nifti(tmp_path / f"seg-{name}.nii.gz", label, Study.from_volume(v))
    back = nib.load(str(out))
    np.testing.assert_allclose(back.affine, ras, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(back.dataobj), (arr >= 200).astype(np.uint8))


def reads_like_nifti(tmp_path, path, kind, arr, ras, ref, order):
    """``path`` is a volume file that reads as the NIfTI reference, on a grid of its ``kind``,
    and a label written for it lines up with the input."""
    assert is_volume_file(path)
    v = read_volume_file(path)
    same_as_reference(v, ref)
    assert v.file_grid.kind == kind and v.file_grid.shape == arr.shape
    label_lines_up(tmp_path, v, arr, ras, order)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("space,suffix,encoding", [("LPS", ".nrrd", "gzip"), ("RAS", ".nrrd", "raw"),
                                                   ("left-anterior-superior", ".nhdr", "raw"),
                                                   ("right-anterior-superior", ".nhdr", "gzip")])
def test_nrrd_reads_like_the_same_nifti(tmp_path, order, space, suffix, encoding):
    arr, ras, ref = reference(tmp_path, order)
    if space == "left-anterior-superior":  # LAS is neither of the usual two: flip y by hand
        las_from_ras = np.diag([-1.0, 1.0, 1.0, 1.0])
        path = tmp_path / f"ct{suffix}"
        nrrd.write(str(path), arr, {"space": space, "space directions": (las_from_ras @ ras)[:3, :3].T,
                                    "space origin": (las_from_ras @ ras)[:3, 3], "encoding": encoding})
    else:
        path = write_nrrd(tmp_path / f"ct{suffix}", arr, ras, space, encoding=encoding)
    if suffix == ".nhdr":
        assert (tmp_path / ("ct.raw.gz" if encoding == "gzip" else "ct.raw")).is_file()  # detached data
    reads_like_nifti(tmp_path, path, "NRRD", arr, ras, ref, order)


def test_nrrd_without_orientation_is_read_as_lps_with_a_warning(tmp_path):
    arr, _, ref = reference(tmp_path, "LPS")  # stored x to the left, y posterior, z superior
    nrrd.write(str(tmp_path / "plain.nrrd"), arr, {"spacings": SPACING[::-1], "encoding": "bzip2"})
    v = read_volume_file(tmp_path / "plain.nrrd")
    np.testing.assert_array_equal(v.hu, ref.hu)
    assert v.spacing == pytest.approx(SPACING, rel=1e-5)
    assert v.origin == (0.0, 0.0, 0.0)
    assert any("orientation is not known" in w for w in v.warnings)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("suffix,msb,compress,dtype", [(".mha", False, False, "int16"), (".mha", True, False, "int32"),
                                                       (".mhd", False, True, "float32"), (".mhd", True, True, "int16"),
                                                       (".mha", False, True, "float64")])
def test_metaimage_reads_like_the_same_nifti(tmp_path, order, suffix, msb, compress, dtype):
    arr, ras, ref = reference(tmp_path, order)
    path = write_meta(tmp_path / f"ct{suffix}", arr.astype(dtype), ras, msb=msb, compress=compress)
    reads_like_nifti(tmp_path, path, "MetaImage", arr, ras, ref, order)


def test_metaimage_unsigned_types_and_the_offset_keywords(tmp_path):
    arr, ras, _ = reference(tmp_path, "permuted")
    shifted = (arr.astype(np.int32) + 1024)
    for dtype in ("uint16", "uint32"):
        head = meta_header(shifted.astype(dtype), ras).replace("Offset =", "Position =")
        (tmp_path / f"{dtype}.mha").write_bytes(head.encode() + shifted.astype(dtype).tobytes(order="F"))
        v = read_volume_file(tmp_path / f"{dtype}.mha")
        np.testing.assert_array_equal(v.hu.astype(np.int32) - 1024, canonical_ct(z=6, y=7, x=8))
        assert v.origin == pytest.approx((-90.0, 40.0, 300.0))
    small = np.clip(arr // 10, -128, 127).astype(np.int8)  # MET_CHAR
    write_meta(tmp_path / "c.mha", small, ras)
    np.testing.assert_array_equal(read_volume_file(tmp_path / "c.mha").hu,
                                  np.clip(canonical_ct(z=6, y=7, x=8) // 10, -128, 127))


def test_metaimage_header_size_and_anatomical_orientation(tmp_path):
    arr, ras, ref = reference(tmp_path, "RAS")
    head = meta_header(arr, ras, "ct.raw", extra="HeaderSize = -1\n")
    (tmp_path / "ct.raw").write_bytes(b"\x00" * 37 + arr.tobytes(order="F"))  # data ends the file
    (tmp_path / "ct.mhd").write_text(head)
    same_as_reference(read_volume_file(tmp_path / "ct.mhd"), ref)
    (tmp_path / "ct.mhd").write_text(head.replace("HeaderSize = -1", "HeaderSize = 37"))
    same_as_reference(read_volume_file(tmp_path / "ct.mhd"), ref)
    # no TransformMatrix: the ITK orientation code says it (i from the left, j from posterior: "LPI")
    no_matrix = "\n".join(line for line in head.replace("HeaderSize = -1", "HeaderSize = 37").splitlines()
                          if not line.startswith("TransformMatrix")).replace("= ???", "= LPI") + "\n"
    (tmp_path / "ct.mhd").write_text(no_matrix)
    same_as_reference(read_volume_file(tmp_path / "ct.mhd"), ref)


def test_metaimage_agrees_with_itk(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    arr, ras, ref = reference(tmp_path, "permuted")
    ours = write_meta(tmp_path / "ours.mha", arr, ras, msb=True)
    img = sitk.ReadImage(str(ours))  # ITK reads our hand-written file as the geometry we meant
    lps = RAS_FROM_LPS @ ras
    assert img.GetSpacing() == pytest.approx(np.linalg.norm(lps[:3, :3], axis=0))
    assert img.GetOrigin() == pytest.approx(lps[:3, 3])
    np.testing.assert_allclose(np.array(img.GetDirection()).reshape(3, 3),
                               lps[:3, :3] / np.linalg.norm(lps[:3, :3], axis=0), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), np.transpose(arr, (2, 1, 0)))
    for name, compress in (("itk.mha", False), ("itk.mhd", True)):  # and we read what ITK writes
        sitk.WriteImage(img, str(tmp_path / name), useCompression=compress)
        same_as_reference(read_volume_file(tmp_path / name), ref)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_label_files_in_nrrd_and_metaimage_go_onto_the_study(tmp_path, suffix):
    arr, ras, ref = reference(tmp_path, "permuted")
    study = Study.from_volume(ref)
    lab = ((arr >= 200).astype(np.uint8) + (arr >= -900)).astype(np.uint8)  # 0, 1, 2 in the file's order
    path = tmp_path / f"seg{suffix}"
    if suffix == ".nrrd":
        write_nrrd(path, lab, ras, "RAS")
    else:
        write_meta(path, lab, ras)
    hu = canonical_ct(z=6, y=7, x=8)
    np.testing.assert_array_equal(read_label(path, study), (hu >= 200).astype(np.uint8) + (hu >= -900))
    moved = ras.copy()
    moved[:3, 3] += 10.0
    write_meta(tmp_path / "off.mha", lab, moved)
    with pytest.raises(LabelFileError, match="does not line up with the study"):
        read_label(tmp_path / "off.mha", study)


def test_batch_and_cli_take_nrrd_and_metaimage(tmp_path, capsys):
    from core.cli.commands import cmd_info
    arr, ras, _ = reference(tmp_path / "", "RAS")
    studies = tmp_path / "studies"
    studies.mkdir()
    write_nrrd(studies / "a.nrrd", arr, ras, "LPS")
    write_nrrd(studies / "b.nhdr", arr, ras, "RAS", encoding="raw")
    write_meta(studies / "c.mha", arr, ras)
    write_meta(studies / "d.mhd", arr, ras)
    found = find_studies(studies)
    assert [p.name for p in found] == ["a.nrrd", "b.nhdr", "c.mha", "d.mhd"]  # b.raw, d.raw are data, not studies
    assert [study_name(p) for p in found] == ["a", "b", "c", "d"]
    assert cmd_info(argparse.Namespace(path=str(studies / "d.mhd"))) == 0
    out = capsys.readouterr().out
    assert "MetaImage  size 8 x 7 x 6" in out and "stored RAS" in out
    assert cmd_info(argparse.Namespace(path=str(studies / "a.nrrd"))) == 0
    assert "NRRD  size 8 x 7 x 6" in capsys.readouterr().out


def refused(path, match):
    with pytest.raises(VolumeFileError) as info:
        read_volume_file(path)
    msg = str(info.value)
    assert match in msg and str(path) in msg and "\n" not in msg, msg


def test_bad_nrrd_files_refused_with_one_line(tmp_path):
    (tmp_path / "junk.nrrd").write_bytes(b"not a volume at all\n" * 20)
    refused(tmp_path / "junk.nrrd", "not a NRRD volume")
    nrrd.write(str(tmp_path / "flat.nrrd"), np.zeros((16, 16), np.int16))
    refused(tmp_path / "flat.nrrd", "2D image")
    nan = [np.nan] * 3
    nrrd.write(str(tmp_path / "rgb.nrrd"), np.zeros((3, 16, 16), np.uint8),
               {"space": "RAS", "space directions": [nan, [1, 0, 0], [0, 1, 0]],
                "kinds": ["RGB-color", "domain", "domain"]})
    refused(tmp_path / "rgb.nrrd", "2D image")
    nrrd.write(str(tmp_path / "4d.nrrd"), np.zeros((8, 8, 4, 3), np.int16),
               {"space": "RAS", "space directions": [[1, 0, 0], [0, 1, 0], [0, 0, 1], nan],
                "kinds": ["domain"] * 3 + ["list"]})
    refused(tmp_path / "4d.nrrd", "more than one volume")
    arr, ras, _ = reference(tmp_path, "LPS")
    write_nrrd(tmp_path / "ct.nhdr", arr, ras, "LPS", encoding="raw")
    (tmp_path / "ct.raw").unlink()
    refused(tmp_path / "ct.nhdr", "data file")
    refused(tmp_path / "ct.nhdr", "not found")
    write_nrrd(tmp_path / "cut.nrrd", arr, ras, "LPS", encoding="raw")
    (tmp_path / "cut.nrrd").write_bytes((tmp_path / "cut.nrrd").read_bytes()[:-100])
    refused(tmp_path / "cut.nrrd", "truncated or corrupt")
    text = (tmp_path / "cut.nrrd").read_bytes().replace(b"sizes: 8 7 6", b"sizes: 8 7 60000")
    (tmp_path / "huge.nrrd").write_bytes(text)
    refused(tmp_path / "huge.nrrd", "absurd size")


def test_bad_metaimage_files_refused_with_one_line(tmp_path):
    arr, ras, _ = reference(tmp_path, "LPS")
    (tmp_path / "junk.mha").write_bytes(bytes(range(256)) * 8)
    refused(tmp_path / "junk.mha", "not a MetaImage volume")
    good = meta_header(arr, ras)

    def mha(name, header, data=None):
        (tmp_path / name).write_bytes(header.encode() + (arr.tobytes(order="F") if data is None else data))
        return tmp_path / name
    refused(mha("flat.mha", good.replace("NDims = 3", "NDims = 2").replace("DimSize = 8 7 6", "DimSize = 8 7")),
            "2D image")
    refused(mha("one.mha", good.replace("DimSize = 8 7 6", "DimSize = 8 7 1"), arr[:, :, :1].tobytes(order="F")),
            "2D image")
    four = good.replace("NDims = 3", "NDims = 4").replace("DimSize = 8 7 6", "DimSize = 8 7 6 3")
    four = four.replace("TransformMatrix = 1 0 0 0 1 0 0 0 1",
                        "TransformMatrix = " + " ".join(map(str, np.eye(4).ravel())))
    refused(mha("4d.mha", four, arr.tobytes(order="F") * 3), "more than one volume")
    refused(mha("str.mha", good.replace("MET_SHORT", "MET_STRING")), "unsupported element type MET_STRING")
    refused(mha("rgb.mha", good.replace("ElementType", "ElementNumberOfChannels = 3\nElementType")), "3 components")
    refused(mha("cut.mha", good, arr.tobytes(order="F")[:-10]), "truncated voxel data")
    refused(mha("huge.mha", good.replace("DimSize = 8 7 6", "DimSize = 100000 7 6")), "absurd size")
    refused(mha("zero.mha", good.replace("DimSize = 8 7 6", "DimSize = 8 0 6")), "absurd size")
    refused(mha("list.mha", good.replace("ElementDataFile = LOCAL", "ElementDataFile = LIST")), "one file per slice")
    refused(mha("zip.mha", good.replace("CompressedData = False", "CompressedData = True")), "corrupt compressed")
    (tmp_path / "gone.mhd").write_text(meta_header(arr, ras, "gone.raw"))
    refused(tmp_path / "gone.mhd", "data file")
    refused(tmp_path / "gone.mhd", "not found")
    refused(tmp_path / "missing.mha", "no such file")


def test_cli_predict_takes_an_nrrd_and_writes_on_its_grid(tmp_path):
    import subprocess
    import sys

    from tests.core.io.test_volume_file import ROOT
    from tests.core.models import threshold_model
    hu = canonical_ct(z=8, y=32, x=32)
    arr, ras = write_as(tmp_path / "ref.nii", hu, "permuted")
    src = write_nrrd(tmp_path / "ct.nhdr", arr, ras, "RAS", encoding="gzip")
    lm = threshold_model(tmp_path / "liver", "liver", 60)
    r = subprocess.run([sys.executable, "-m", "app", "predict", str(src), "--liver-model", str(lm), "--liver-only",
                        "--out", str(tmp_path / "seg.nii.gz")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    seg = nib.load(str(tmp_path / "seg.nii.gz"))
    np.testing.assert_allclose(seg.affine, ras, atol=1e-5)
    assert seg.shape == arr.shape
    labelled = np.asarray(seg.dataobj) > 0
    assert labelled[arr >= 200].all() and not labelled[arr < 60].any()  # the bright block, on the file's grid
