"""``liverseg pacs ...``, ``predict --send`` and ``predict --batch --pacs`` against the test Orthanc."""

from __future__ import annotations

import io

import pytest

from app.cli import main
from core.pacs import cache as cache_mod
from core.pacs import connections as C
from core.study.batch import read_summary
from tests.core.models import threshold_model
from tests.pacs_server import AET, PASSWORD, USER


@pytest.fixture
def saved(orthanc, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(C, "connections_path", lambda: tmp_path / "pacs.json")
    monkeypatch.setattr(C, "_keyring", lambda: None)
    monkeypatch.setattr(C, "_session_secrets", {})
    monkeypatch.setattr(cache_mod, "cache_root", lambda: tmp_path / "cache")
    assert main(["pacs", "add", "lab", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port), "--aet", AET]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["pacs", "add", "web", "--url", orthanc.dicomweb_url, "--user", USER, "--secret-stdin"]) == 0
    return tmp_path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return str(threshold_model(d / "liver", "liver", 60)), str(threshold_model(d / "tumor", "tumor", 400))


def test_add_list_echo_query_retrieve_remove(saved, capsys):
    err = capsys.readouterr().err
    assert "no keyring on this system" in err and PASSWORD not in (saved / "pacs.json").read_text()
    assert main(["pacs", "list"]) == 0
    out = capsys.readouterr().out
    assert f"lab\tDIMSE\t{AET}@127.0.0.1" in out and "web\tDICOMweb\thttp://127.0.0.1" in out and "basic auth" in out
    for name in ("lab", "web"):
        assert main(["pacs", "echo", name]) == 0
        assert "answered in" in capsys.readouterr().out
    assert main(["pacs", "query", "web", "--patient-id", "phantom-s3-1", "--series"]) == 0
    out = capsys.readouterr().out
    assert "phantom-s3-1" in out and "   24 images" in out and out.rstrip().endswith("1 study")
    study = out.split()[out.split().index("series") + 1]
    assert main(["pacs", "retrieve", "lab", "--study", study]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "\t24 files\t" in line and line.startswith(str(saved / "cache"))
    assert main(["pacs", "retrieve", "lab", "--study", study]) == 0
    assert capsys.readouterr().out.strip().endswith("\tcache")
    assert main(["pacs", "remove", "web"]) == 0
    assert main(["pacs", "echo", "web"]) == 2
    assert "no PACS connection named 'web' (lab;" in capsys.readouterr().err


def test_predict_sends_the_seg_and_batch_runs_over_a_query(saved, models, orthanc, capsys, tmp_path):
    main(["pacs", "query", "lab", "--patient-id", "phantom-s3-1"])
    study = capsys.readouterr().out.split()[-3]
    assert main(["pacs", "retrieve", "lab", "--study", study]) == 0
    folder = capsys.readouterr().out.strip().split("\t")[0]
    before = len(orthanc.rest("GET", "/series"))
    assert main(["predict", folder, "--out", str(tmp_path / "p.nii.gz"), "--liver-model", models[0],
                 "--tumor-model", models[1], "--send", "web"]) == 0
    out = capsys.readouterr().out
    assert "sent the DICOM SEG to web (DICOMweb" in out and "1 instance(s) accepted" in out
    new = [s for s in orthanc.rest("GET", "/series?expand") if s["MainDicomTags"].get("Modality") == "SEG"]
    assert len(orthanc.rest("GET", "/series")) == before + 1 and len(new) == 1
    orthanc.rest("DELETE", f"/series/{new[0]['ID']}")

    out_dir = tmp_path / "batch"
    args = ["predict", "--batch", "--pacs", "lab", "--patient-id", "phantom-s3-1", "--date-from", "20260101",
            "--date-to", "20260131", "--out", str(out_dir), "--liver-model", models[0], "--tumor-model", models[1]]
    assert main(args + ["--shard", "1/1"]) == 0
    rows = read_summary(out_dir / "summary-1-of-1.csv")
    assert [r.status for r in rows] == ["done"] and rows[0].study.startswith("phantom-s3-1_20260101_S1_")
    assert (out_dir / f"{rows[0].study}.nii.gz").is_file()
    none = [a if a != "20260101" else "20260102" for a in args]
    assert main(none[:none.index("--out") + 1] + [str(tmp_path / "none")] + none[none.index("--out") + 2:]) == 2
    assert "found no CT series" in capsys.readouterr().err
    assert main(["predict", "--pacs", "lab", "--out", str(tmp_path / "x.nii.gz")]) == 2
    assert "--pacs is for batch runs" in capsys.readouterr().err
