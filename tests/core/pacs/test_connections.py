import json

import pytest

from core.pacs import connections as C
from core.pacs.connections import PacsConnection
from core.pacs.types import PacsQuery, StoreResult
from core.runtime.errors import PacsError
from tests.core.pacs.fake_keyring import memory_keyring


@pytest.fixture
def pacs_json(tmp_path, monkeypatch):
    path = tmp_path / "pacs.json"
    monkeypatch.setattr(C, "connections_path", lambda: path)
    monkeypatch.setattr(C, "_session_secrets", {})
    monkeypatch.delenv(C.SECRET_ENV, raising=False)
    return path


def test_connections_round_trip_and_the_secret_stays_out_of_the_file(pacs_json):
    web = PacsConnection("lab web", "dicomweb", url="http://127.0.0.1:8042/dicom-web", auth="basic", username="ana")
    dimse = PacsConnection("lab", "dimse", host="127.0.0.1", port=4242, called_ae="ORTHANC")
    with memory_keyring() as kr:
        C.upsert_connection(web)
        C.upsert_connection(dimse)
        assert C.store_secret("lab web", "pa55-word") is True
        assert C.load_connections() == [web, dimse]
        assert C.find_connection("lab") == dimse
        assert C.load_secret("lab web") == "pa55-word"
        assert kr.store == {(C.KEYRING_SERVICE, "lab web"): "pa55-word"}
        assert "pa55-word" not in pacs_json.read_text()
        C.remove_connection("lab web")
        assert kr.store == {} and [c.name for c in C.load_connections()] == ["lab"]
    with pytest.raises(PacsError, match="no PACS connection named 'nope' \\(lab;"):
        C.find_connection("nope")


def test_without_a_keyring_the_secret_lives_for_the_session_or_comes_from_the_environment(pacs_json, monkeypatch):
    monkeypatch.setattr(C, "_keyring", lambda: None)
    assert C.store_secret("x", "s1") is False
    assert C.load_secret("x") == "s1"
    monkeypatch.setenv(C.SECRET_ENV, "from-env")
    assert C.load_secret("y") == "from-env"
    assert not pacs_json.exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(name=" "), "needs a name"),
    (dict(name="a", host=""), "'a': no host"),
    (dict(name="a", host="h", port=70000), "port 70000"),
    (dict(name="a", host="h", called_ae="A" * 17), "called AE title 'AAAAAAAAAAAAAAAAA' is not"),
    (dict(name="a", host="h", calling_ae="BAD\\AE"), "calling AE title"),
    (dict(name="a", protocol="dicomweb", url="ftp://x"), "must start with http"),
    (dict(name="a", protocol="dicomweb", url="http://x", auth="basic"), "needs a user name"),
    (dict(name="a", protocol="ftp"), "protocol must be"),
])
def test_bad_connections_are_refused_with_their_name(kwargs, message):
    with pytest.raises(PacsError, match=message.replace("(", "\\(").replace("\\\\", "\\\\\\\\")):
        PacsConnection(**kwargs)


def test_an_unreadable_file_reads_as_no_connections_and_bad_entries_are_skipped(pacs_json):
    pacs_json.write_text("{not json")
    assert C.load_connections() == []
    pacs_json.write_text(json.dumps({"connections": [{"name": "ok", "host": "h"}, {"name": "bad", "port": 0,
                                                                                  "host": "h"}]}))
    assert [c.name for c in C.load_connections()] == ["ok"]
    with pytest.raises(PacsError, match="two PACS connections are named 'a'"):
        C.save_connections([PacsConnection("a", host="h"), PacsConnection("a", host="g")])


@pytest.mark.parametrize("a, b, expected", [("", "", ""), ("20260101", "20260131", "20260101-20260131"),
                                            ("20260101", "", "20260101-"), ("", "20260131", "-20260131"),
                                            ("20260105", "20260105", "20260105")])
def test_query_date_ranges(a, b, expected):
    assert PacsQuery(date_from=a, date_to=b).date_range == expected


def test_bad_query_dates_are_refused():
    with pytest.raises(PacsError, match="from date '2026-01-01' is not a date"):
        PacsQuery(date_from="2026-01-01")
    with pytest.raises(PacsError, match="ends before it starts"):
        PacsQuery(date_from="20260201", date_to="20260101")


def test_store_result_says_what_was_accepted():
    r = StoreResult(["1.2"], [("1.3", "status 0xA700")])
    assert not r.ok and r.describe() == "1 instance(s) accepted, 1 refused (status 0xA700)"
    assert StoreResult(["1.2"]).ok
