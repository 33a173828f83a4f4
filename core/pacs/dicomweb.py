"""DICOMweb: QIDO-RS queries, WADO-RS retrieval and STOW-RS sends with dicomweb-client.

Authentication is HTTP basic (user name + keyring password) or a bearer token. Every request is
bounded by the connection's timeout; an answer that is not what the standard says (bad JSON, a
truncated multipart stream, an HTML error page) becomes one :class:`PacsError` line naming the URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydicom.dataset import Dataset

from ..runtime.errors import Cancelled, PacsError, one_line
from ..runtime.jobs import CancelToken, check
from .answers import SERIES_FIELDS, STUDY_FIELDS, series_hit, study_hit, text
from .connections import PacsConnection
from .outgoing import read_for_sending
from .types import PacsQuery, SeriesHit, StoreResult, StudyHit

logging.getLogger("dicomweb_client").setLevel(logging.WARNING)
MAX_PAGES = 100


def _datasets(items, where: str) -> list[Dataset]:
    if not isinstance(items, list):
        raise PacsError(f"{where}: malformed answer (expected a JSON list, got {type(items).__name__})")
    out = []
    for item in items:
        try:
            out.append(Dataset.from_json(item))
        except Exception as exc:
            raise PacsError(f"{where}: malformed answer ({one_line(exc, 160)})") from None
    return out


def _session():
    """A requests session that sends DICOM wildcards as ``*``: dicomweb-client escapes them as ``%2A``,
    which RFC 3986 makes equivalent but some servers (Orthanc 1.10) then match literally."""
    import requests

    class Session(requests.Session):
        def request(self, method, url, *args, **kwargs):
            return super().request(method, url.replace("%2A", "*"), *args, **kwargs)

    return Session()


class DicomwebClient:
    def __init__(self, conn: PacsConnection, secret: str | None = None):
        from dicomweb_client import DICOMwebClient
        self.conn = conn
        session = _session()
        headers = {}
        if conn.auth == "basic":
            session.auth = (conn.username, secret or "")
        elif conn.auth == "token":
            headers["Authorization"] = f"Bearer {secret or ''}"
        session.trust_env = False  # a lab's proxy settings must not route a loopback PACS
        self._client = DICOMwebClient(conn.url.rstrip("/"), session=session, headers=headers or None,
                                      timeout=float(conn.timeout))
        self._client.set_http_retry_params(retry=False)  # our own timeout bounds every call

    @contextmanager
    def _call(self, what: str):
        import requests
        where = f"PACS {self.conn.describe()}"
        try:
            yield
        except (PacsError, Cancelled):
            raise
        except requests.exceptions.HTTPError as exc:
            code = getattr(exc.response, "status_code", "?")
            hint = {401: " (wrong user name, password or token)", 403: " (not allowed)",
                    404: " (not found: check the DICOMweb URL)"}.get(code, "") if isinstance(code, int) else ""
            raise PacsError(f"{where}: {what} refused, HTTP {code}{hint}") from None
        except requests.exceptions.ConnectionError as exc:
            raise PacsError(f"{where}: cannot connect for {what} ({one_line(exc, 160)})") from None
        except requests.exceptions.Timeout:
            raise PacsError(f"{where}: {what}: no answer within {self.conn.timeout:g} s") from None
        except Exception as exc:  # bad JSON, a broken multipart body, a non-DICOM part
            raise PacsError(f"{where}: malformed answer to {what} ({type(exc).__name__}: "
                            f"{one_line(exc, 160)})") from None

    def echo(self) -> None:
        with self._call("QIDO-RS study query"):
            self._client.search_for_studies(limit=1)

    def find_studies(self, query: PacsQuery) -> list[StudyHit]:
        filters = {k: v for k, v in (("PatientID", query.patient_id), ("PatientName", query.patient_name),
                                     ("StudyDate", query.date_range), ("AccessionNumber", query.accession),
                                     ("ModalitiesInStudy", query.modality)) if v}
        what = "QIDO-RS study query"
        with self._call(what):
            items = self._client.search_for_studies(search_filters=filters, fields=list(STUDY_FIELDS),
                                                    limit=query.limit, fuzzymatching=False)
            return [study_hit(d) for d in _datasets(items, f"PACS {self.conn.describe()}, {what}")]

    def find_series(self, study_uid: str, modality: str = "") -> list[SeriesHit]:
        what = "QIDO-RS series query"
        with self._call(what):
            items = self._client.search_for_series(study_instance_uid=study_uid, fields=list(SERIES_FIELDS),
                                                   search_filters={"Modality": modality} if modality else None)
            return [series_hit(d, study_uid) for d in _datasets(items, f"PACS {self.conn.describe()}, {what}")]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        """Paged by offset while pages bring new instances (servers cap their answers), at most
        :data:`MAX_PAGES` pages: a server that repeats itself cannot keep us looping."""
        what = "QIDO-RS instance query"
        where = f"PACS {self.conn.describe()}, {what}"
        uids: dict[str, None] = {}
        with self._call(what):
            for _ in range(MAX_PAGES):
                items = self._client.search_for_instances(study_instance_uid=study_uid, series_instance_uid=series_uid,
                                                          fields=["SOPInstanceUID"], offset=len(uids) or None)
                before = len(uids)
                uids.update((text(d, "SOPInstanceUID"), None) for d in _datasets(items, where))
                if len(uids) == before:
                    break
        return sorted(uids)

    def retrieve(self, study_uid: str, series_uid: str, dest: Path, on_file: Callable[[], None],
                 cancel: CancelToken | None = None) -> int:
        n = 0
        with self._call("WADO-RS retrieve"):
            # any transfer syntax the PACS stores: no server-side transcoding, pylibjpeg decodes
            for ds in self._client.iter_series(study_uid, series_uid,
                                               media_types=(("application/dicom", "*"),)):
                check(cancel)
                sop = text(ds, "SOPInstanceUID")
                name = "".join(c for c in sop if c.isdigit() or c == ".") or f"i{n}"
                ds.save_as(Path(dest) / f"{name}.dcm", enforce_file_format=True)
                n += 1
                on_file()
        return n

    def store(self, paths: Sequence[Path], cancel: CancelToken | None = None,
              on_file: Callable[[], None] | None = None) -> StoreResult:
        datasets = read_for_sending(paths)
        check(cancel)
        result = StoreResult()
        with self._call("STOW-RS send"):
            answer = self._client.store_instances(datasets)
        for item in answer.get("ReferencedSOPSequence", []) or []:
            result.accepted.append(text(item, "ReferencedSOPInstanceUID"))
        for item in answer.get("FailedSOPSequence", []) or []:
            result.failed.append((text(item, "ReferencedSOPInstanceUID"),
                                  f"failure reason {text(item, 'FailureReason') or 'not given'}"))
        return result
