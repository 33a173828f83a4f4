"""Query, retrieve and send against a real (private, loopback) Orthanc, by DIMSE and DICOMweb."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.io.dicom import load_series
from core.pacs import connections as C
from core.pacs import operations
from core.pacs.cache import PARTIAL, RetrieveCache
from core.pacs.connections import PacsConnection
from core.pacs.operations import query_series, query_studies, retrieve_series, send_files
from core.pacs.types import PacsQuery
from core.runtime.errors import Cancelled, PacsError
from core.runtime.jobs import CancelToken
from tests.pacs_server import AET, PASSWORD, USER

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture
def dimse(orthanc):
    return PacsConnection("test dimse", "dimse", host="127.0.0.1", port=orthanc.dicom_port, called_ae=AET)


@pytest.fixture
def web(orthanc, monkeypatch):
    monkeypatch.setattr(C, "_keyring", lambda: None)
    monkeypatch.setattr(C, "_session_secrets", {"test web": PASSWORD})
    return PacsConnection("test web", "dicomweb", url=orthanc.dicomweb_url, auth="basic", username=USER)


@pytest.fixture(params=["dimse", "web"])
def conn(request):
    return request.getfixturevalue(request.param)


def _phantom_series(conn):
    study = next(s for s in query_studies(conn, PacsQuery(patient_id="phantom-s3-1")))
    return study, query_series(conn, study.study_uid)[0]


def test_echo_query_and_series_counts(conn):
    assert "answered in" in operations.test_connection(conn)
    study, series = _phantom_series(conn)
    assert (study.patient_name, study.date, study.modalities) == ("phantom_1^seed_3", "20260101", "CT")
    assert (series.modality, series.n_instances) == ("CT", 24)
    assert query_studies(conn, PacsQuery(patient_id="phantom-s3-1", date_from="20260102")) == []
    assert query_studies(conn, PacsQuery(patient_id="phantom-s3-1", date_from="20251231", date_to="20260101"))
    assert query_studies(conn, PacsQuery(patient_name="phantom_1*"))
    assert query_studies(conn, PacsQuery(patient_id="nobody")) == []


def test_retrieve_gives_the_same_volume_as_the_files_and_is_cached(conn, orthanc, tmp_path):
    study, series = _phantom_series(conn)
    cache = RetrieveCache(tmp_path / "cache")
    events = []
    first = retrieve_series(conn, study.study_uid, series.series_uid, cache, progress=events.append)
    assert (first.n_files, first.from_cache) == (24, False)
    assert [e.done for e in events if e.stage == "retrieve"][-1] == 24
    with zipfile.ZipFile(orthanc.phantom_folder / "PATIENT_DICOM.zip") as z:
        z.extractall(tmp_path / "disk")
    here, there = load_series(tmp_path / "disk"), load_series(first.path)
    np.testing.assert_array_equal(here.hu, there.hu)
    assert here.spacing == there.spacing
    again = retrieve_series(conn, study.study_uid, series.series_uid, cache)
    assert again.from_cache and again.path == first.path


def test_a_wrong_called_ae_title_is_refused_and_named(orthanc):
    bad = PacsConnection("bad", host="127.0.0.1", port=orthanc.dicom_port, called_ae="WRONGAET")
    with pytest.raises(PacsError, match="refused the association.*called AE title 'WRONGAET'.*not recognised"):
        operations.test_connection(bad)


def test_a_wrong_password_is_named(orthanc, monkeypatch):
    monkeypatch.setattr(C, "_session_secrets", {"w": "not-it"})
    w = PacsConnection("w", "dicomweb", url=orthanc.dicomweb_url, auth="basic", username=USER)
    with pytest.raises(PacsError, match="HTTP 401 \\(wrong user name, password or token\\)"):
        query_studies(w, PacsQuery())


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_a_server_down_is_one_line_and_leaves_nothing_in_the_cache(protocol, tmp_path):
    from tests.pacs_server import free_port
    port = free_port()  # nothing listens there
    c = (PacsConnection("down", host="127.0.0.1", port=port, called_ae=AET, timeout=3) if protocol == "dimse" else
         PacsConnection("down", "dicomweb", url=f"http://127.0.0.1:{port}/dicom-web", timeout=3))
    cache = RetrieveCache(tmp_path)
    with pytest.raises(PacsError, match="cannot connect") as err:
        retrieve_series(c, "1.2.3", "1.2.3.4", cache)
    assert "\n" not in str(err.value) and "down" in str(err.value)
    assert cache.entries() == [] and not any(tmp_path.rglob("*.dcm"))


def test_a_cancelled_transfer_leaves_no_entry_and_the_next_one_is_complete(conn, tmp_path):
    study, series = _phantom_series(conn)
    cache, token = RetrieveCache(tmp_path), CancelToken()

    def progress(e):
        if e.stage == "retrieve" and e.done >= 5:
            token.cancel()

    with pytest.raises(Cancelled):
        retrieve_series(conn, study.study_uid, series.series_uid, cache, progress=progress, cancel=token)
    assert cache.entries() == [] and not any(tmp_path.rglob("*.dcm"))
    r = retrieve_series(conn, study.study_uid, series.series_uid, cache)
    assert (r.n_files, r.from_cache) == (24, False)


def test_a_transfer_killed_half_way_is_not_used_later(dimse, orthanc, tmp_path):
    """A process killed (SIGKILL) during C-GET leaves a partial folder that is never taken for the series."""
    study, series = _phantom_series(dimse)
    code = (
        "import os, signal, sys\n"
        "from core.pacs.cache import RetrieveCache\nfrom core.pacs.connections import PacsConnection\n"
        "from core.pacs.operations import retrieve_series\n"
        f"c = PacsConnection('k', host='127.0.0.1', port={orthanc.dicom_port}, called_ae={AET!r})\n"
        "def p(e):\n    if e.stage == 'retrieve' and e.done >= 6: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"retrieve_series(c, {study.study_uid!r}, {series.series_uid!r}, RetrieveCache({str(tmp_path)!r}), "
        "progress=p)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-500:]
    partials = [p for p in tmp_path.rglob(f"{PARTIAL}*") if p.is_dir()]
    assert len(partials) == 1 and 6 <= len(list(partials[0].glob("*.dcm"))) < 24
    cache = RetrieveCache(tmp_path)
    assert cache.lookup(study.study_uid, series.series_uid) is None
    r = retrieve_series(dimse, study.study_uid, series.series_uid, cache)
    assert (r.n_files, r.from_cache) == (24, False) and len(load_series(r.path).hu) == 24
    assert cache.clean(max_age_s=0) == partials


def test_a_series_that_changes_while_cached_is_downloaded_again(conn, orthanc, tmp_path):
    import pydicom

    from core.synthetic.phantom import make_phantom, write_patient
    folder = write_patient(make_phantom(conn.protocol == "dimse" and 11 or 12, slices=4, size=32),
                           tmp_path / "src", 1)
    orthanc.upload_zip_series(folder / "PATIENT_DICOM.zip", "PATIENT_DICOM/")
    pid = f"phantom-s{11 if conn.protocol == 'dimse' else 12}-1"
    study = query_studies(conn, PacsQuery(patient_id=pid))[0]
    series = query_series(conn, study.study_uid)[0]
    cache = RetrieveCache(tmp_path / "cache")
    first = retrieve_series(conn, study.study_uid, series.series_uid, cache)
    extra = pydicom.dcmread(next(iter(sorted((tmp_path / "cache").rglob("*.dcm")))))
    extra.SOPInstanceUID = extra.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    extra.InstanceNumber, extra.ImagePositionPatient[2] = 5, float(extra.ImagePositionPatient[2]) + 40
    from pydicom.filebase import DicomBytesIO
    buf = DicomBytesIO()
    extra.save_as(buf, enforce_file_format=True)
    orthanc.upload(buf.getvalue())
    second = retrieve_series(conn, study.study_uid, series.series_uid, cache)
    assert (first.n_files, second.n_files, second.from_cache) == (4, 5, False)
    assert len(list((tmp_path / "cache").rglob("*.dcm"))) == 5  # the old copy went


def test_a_seg_sent_back_is_stored_and_reads_back_voxel_for_voxel(conn, orthanc, tmp_path):
    from core.io.export import write_dicom_seg
    from core.io.label_file import read_dicom_seg
    from core.study.study import Study
    study, series = _phantom_series(conn)
    r = retrieve_series(conn, study.study_uid, series.series_uid, RetrieveCache(tmp_path / "c"))
    vol = load_series(r.path)
    label = np.zeros(vol.hu.shape, np.uint8)
    label[5:15, 40:90, 30:80] = 1
    label[8:11, 60:70, 50:60] = 2
    seg = write_dicom_seg(tmp_path / "seg.dcm", label, vol)
    result = send_files(conn, [seg])
    assert result.ok and len(result.accepted) == 1, result.describe()
    seg_series = [s for s in query_series(conn, study.study_uid, "SEG")]
    assert seg_series
    back = retrieve_series(conn, study.study_uid, seg_series[-1].series_uid, RetrieveCache(tmp_path / "b"))
    try:
        got = read_dicom_seg(sorted(Path(back.path).glob("*.dcm"))[0], Study.from_volume(vol))
    finally:
        orthanc.delete(seg_series[-1].series_uid)  # the shared server's phantom study stays as it was
    np.testing.assert_array_equal(got, label)


def test_sending_a_non_dicom_file_is_refused_by_name(dimse, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(PacsError, match="notes.txt: not a DICOM file to send"):
        send_files(dimse, [bad])
    with pytest.raises(PacsError, match="missing.dcm: no such file"):
        send_files(dimse, [tmp_path / "missing.dcm"])
