"""A DICOMweb server that answers nonsense: each case is one PacsError line naming the server."""

import http.server
import threading

import pytest

from core.pacs.cache import RetrieveCache
from core.pacs.connections import PacsConnection
from core.pacs.operations import query_series, query_studies, retrieve_series
from core.pacs.types import PacsQuery
from core.runtime.errors import PacsError

ANSWERS = {
    "/bad-json/studies": (200, "application/dicom+json", b"{not json"),
    "/not-a-list/studies": (200, "application/dicom+json", b'{"a": 1}'),
    "/bad-element/studies": (200, "application/dicom+json", b'[{"0020000D": {"vr": "XX", "Value": 5}}]'),
    "/html-error/studies": (500, "text/html", b"<html>Internal error</html>"),
}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        code, ctype, body = ANSWERS.get(path, (200, "application/dicom+json", b"[]"))
        if path.startswith("/broken-multipart/"):
            if path.endswith("/instances") or "series/" in path and "instances" in path:
                code, ctype, body = 200, "application/dicom+json", b'[{"00080018": {"vr": "UI", "Value": ["1.2"]}}]'
            else:
                code, ctype = 200, 'multipart/related; type="application/dicom"; boundary=xyz'
                body = b"--xyz\r\ngarbage"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize("root, message", [
    ("bad-json", "malformed answer to QIDO-RS study query"),
    ("not-a-list", "malformed answer"),
    ("bad-element", "malformed answer"),
    ("html-error", "QIDO-RS study query refused, HTTP 500"),
])
def test_a_malformed_query_answer_is_one_line(server, root, message):
    c = PacsConnection("odd", "dicomweb", url=f"{server}/{root}", timeout=5)
    with pytest.raises(PacsError, match=message) as err:
        query_studies(c, PacsQuery())
    assert "odd (DICOMweb" in str(err.value) and "\n" not in str(err.value)


def test_an_empty_answer_is_no_studies_and_no_series(server):
    c = PacsConnection("empty", "dicomweb", url=f"{server}/empty", timeout=5)
    assert query_studies(c, PacsQuery()) == [] and query_series(c, "1.2") == []


def test_a_broken_multipart_retrieve_leaves_nothing_in_the_cache(server, tmp_path):
    c = PacsConnection("broken", "dicomweb", url=f"{server}/broken-multipart", timeout=5)
    cache = RetrieveCache(tmp_path)
    with pytest.raises(PacsError, match="broken .*WADO-RS retrieve"):
        retrieve_series(c, "1.2", "1.2.3", cache)
    assert cache.entries() == [] and list(tmp_path.rglob("*.dcm")) == []
