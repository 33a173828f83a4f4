"""Hostile inputs: mutated real and phantom DICOM, mutated and malicious IRCADb archives.

Every outcome must be a loaded volume / imported case, or the typed one-line
LiverSegError; never another exception, a hang (each case is bounded by the
hypothesis deadline) or a memory blow-up (volumes are bounded by the inputs).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.datasets.ircadb import import_ircadb
from core.io.dicom import DicomError, load_series
from core.runtime.errors import LiverSegError
from core.synthetic.phantom import make_phantom, write_patient
from tests.core.factory import copy_with_mutation

COUNTS: dict[str, int] = {}


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


@pytest.fixture(scope="module")
def real_slices(p17_src, tmp_path_factory):
    """Three consecutive real slices of patient 17."""
    out = tmp_path_factory.mktemp("real")
    with zipfile.ZipFile(p17_src / "PATIENT_DICOM.zip") as z:
        for n in (40, 41, 42):
            (out / f"image_{n}").write_bytes(z.read(f"PATIENT_DICOM/image_{n}"))
    return sorted(out.iterdir())


@settings(max_examples=60, deadline=20000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(victim=st.integers(0, 2), cut=st.one_of(st.none(), st.integers(0, 530000)),
       flips=st.lists(st.tuples(st.integers(0, 530000), st.integers(0, 255)), max_size=12))
def test_mutated_real_patient_slices(real_slices, tmp_path_factory, victim, cut, flips):
    folder = tmp_path_factory.mktemp("m")
    copy_with_mutation(real_slices, folder, victim, flips, cut)
    try:
        v = load_series(folder)
    except DicomError as exc:
        assert "\n" not in str(exc)
        _count("real slices: refused")
    else:
        assert v.hu.dtype == np.int16 and v.hu.shape[1:] == (512, 512) and v.hu.shape[0] <= 3
        _count("real slices: loaded")


@pytest.fixture(scope="module")
def phantom_zips(tmp_path_factory):
    root = tmp_path_factory.mktemp("pz")
    folder = write_patient(make_phantom(31, 6, 32), root, 1)
    return (folder / "PATIENT_DICOM.zip").read_bytes(), (folder / "MASKS_DICOM.zip").read_bytes()


@settings(max_examples=60, deadline=20000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["PATIENT_DICOM.zip", "MASKS_DICOM.zip"]),
       flips=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), min_size=1, max_size=10),
       cut=st.one_of(st.none(), st.integers(0, 10 ** 6)))
def test_mutated_patient_archives(phantom_zips, tmp_path_factory, which, flips, cut):
    root = tmp_path_factory.mktemp("src")
    patient = root / "3Dircadb1.1"
    patient.mkdir()
    files = dict(zip(["PATIENT_DICOM.zip", "MASKS_DICOM.zip"], phantom_zips, strict=True))
    data = bytearray(files[which])
    for pos, b in flips:
        data[pos % len(data)] = b
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    files[which] = bytes(data)
    for name, content in files.items():
        (patient / name).write_bytes(content)
    out = root.parent / (root.name + "-out")
    try:
        ids = import_ircadb(root, out)
    except LiverSegError as exc:
        assert "\n" not in str(exc)
        assert not list(out.glob("*.npz")) if out.exists() else True
        _count("archives: refused")
    else:
        assert ids == ["3Dircadb1.1"]
        _count("archives: imported")
    assert not list(out.glob(".*.tmp")) if out.exists() else True


def _zip(members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("depth", [3, 5, 20])
def test_deeply_nested_archives(tmp_path, depth):
    data = _zip([("x", b"1")])
    for _ in range(depth):
        data = _zip([("PATIENT_DICOM/inner.zip", data)])
    outer = tmp_path / "nest.zip"
    outer.write_bytes(_zip([("3Dircadb1/3Dircadb1.1/PATIENT_DICOM.zip", data)]))
    with pytest.raises(LiverSegError, match="nested"):
        import_ircadb(outer, tmp_path / "out")
    _count("archives: nested refused")


def test_report_counts():
    """Print what the fuzzers tried (docs/RELIABILITY.md quotes these counts)."""
    print("hostile-input outcomes:", dict(sorted(COUNTS.items())))
    assert sum(COUNTS.values()) > 0
