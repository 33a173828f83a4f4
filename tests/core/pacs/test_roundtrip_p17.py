"""The PACS round trip on the real patient 17: query, retrieve, segment, send the SEG, read it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.catalog.library import default_models
from core.io.dicom import load_series
from core.io.label_file import read_dicom_seg
from core.pacs import connections as C
from core.pacs.cache import RetrieveCache
from core.pacs.connections import PacsConnection
from core.pacs.operations import query_series, query_studies, retrieve_series, send_files
from core.pacs.types import PacsQuery
from core.study.session import StudySession
from core.study.study import Study
from tests.pacs_server import AET, PASSWORD, USER


@pytest.mark.timeout(600)
def test_query_retrieve_segment_send_and_read_back_patient_17(orthanc_p17, tmp_path, monkeypatch):
    monkeypatch.setattr(C, "_keyring", lambda: None)
    monkeypatch.setattr(C, "_session_secrets", {"web": PASSWORD})
    dimse = PacsConnection("lab", host="127.0.0.1", port=orthanc_p17.dicom_port, called_ae=AET)
    web = PacsConnection("web", "dicomweb", url=orthanc_p17.dicomweb_url, auth="basic", username=USER)
    studies = [s for s in query_studies(dimse, PacsQuery()) if not s.patient_id.startswith("phantom")]
    assert len(studies) == 1
    series = query_series(dimse, studies[0].study_uid, "CT")
    assert [s.n_instances for s in series] == [119]
    got = retrieve_series(dimse, studies[0].study_uid, series[0].series_uid, RetrieveCache(tmp_path / "cache"))
    session = StudySession.open(got.path)
    assert session.study.shape == (119, 512, 512)
    liver, tumour = default_models()
    session.segment(liver.path, tumour.path)
    label = session.label.copy()
    assert (label == 1).sum() > 100_000 and (label == 2).any()
    seg = session.export("seg", tmp_path / "seg.dcm")
    result = send_files(web, [seg])
    assert result.ok, result.describe()
    seg_series = query_series(web, studies[0].study_uid, "SEG")
    assert len(seg_series) == 1
    back = retrieve_series(web, studies[0].study_uid, seg_series[0].series_uid, RetrieveCache(tmp_path / "back"))
    try:
        read = read_dicom_seg(sorted(Path(back.path).glob("*.dcm"))[0], Study.from_volume(load_series(got.path)))
    finally:
        orthanc_p17.delete(seg_series[0].series_uid)
    np.testing.assert_array_equal(read, label)
