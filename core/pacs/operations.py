"""The PACS jobs the CLI and the GUI run: test a connection, query, retrieve a series into the
cache, send files. Plain functions with a progress callback and a cancel token."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ..runtime.errors import PacsError
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from .cache import RetrieveCache
from .client import PacsClient, open_client
from .connections import PacsConnection
from .types import PacsQuery, RetrieveResult, SeriesHit, StoreResult, StudyHit


def _client(conn_or_client) -> PacsClient:
    return open_client(conn_or_client) if isinstance(conn_or_client, PacsConnection) else conn_or_client


def test_connection(conn: PacsConnection, secret: str | None = None) -> str:
    """C-ECHO (DIMSE) or a one-study QIDO query (DICOMweb); returns a line for the user."""
    t = time.perf_counter()
    open_client(conn, secret).echo()
    kind = "C-ECHO" if conn.protocol == "dimse" else "QIDO-RS"
    return f"{conn.describe()}: {kind} answered in {1000 * (time.perf_counter() - t):.0f} ms"


def query_studies(conn, query: PacsQuery) -> list[StudyHit]:
    hits = _client(conn).find_studies(query)
    return sorted(hits, key=lambda h: (h.date, h.patient_id, h.study_uid), reverse=True)


def query_series(conn, study_uid: str, modality: str = "") -> list[SeriesHit]:
    hits = _client(conn).find_series(study_uid, modality)
    return sorted(hits, key=lambda h: (_num(h.number), h.series_uid))


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")


def retrieve_series(conn, study_uid: str, series_uid: str, cache: RetrieveCache | None = None,
                    progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> RetrieveResult:
    """The series as a folder of DICOM files in the cache, downloaded only when the cache has no
    complete copy of the instances the PACS lists now. A failed or cancelled transfer leaves no
    entry behind."""
    client = _client(conn)
    cache = cache or RetrieveCache()
    t = time.perf_counter()
    report(progress, "query", 0, 1, "listing the series' instances")
    sop_uids = client.find_instances(study_uid, series_uid)
    if not sop_uids:
        raise PacsError(f"PACS {client.conn.describe()}: series {series_uid} has no instances")
    cached = cache.lookup(study_uid, series_uid, sop_uids)
    if cached is not None:
        report(progress, "retrieve", len(sop_uids), len(sop_uids), "in the cache")
        return RetrieveResult(str(cached), len(sop_uids), True, time.perf_counter() - t)
    cache.clean()
    partial = cache.begin(study_uid, series_uid)
    done = [0]

    def on_file():
        done[0] += 1
        report(progress, "retrieve", done[0], len(sop_uids), f"{done[0]} of {len(sop_uids)} instances")

    try:
        check(cancel)
        n = client.retrieve(study_uid, series_uid, partial, on_file, cancel)
        check(cancel)
        if n < len(sop_uids):
            raise PacsError(f"PACS {client.conn.describe()}: retrieve of series {series_uid} sent {n} of "
                            f"{len(sop_uids)} instances")
        if n > len(sop_uids):  # instances added during the transfer: the entry names what arrived
            sop_uids = sorted(p.stem for p in partial.glob("*.dcm"))
        final = cache.commit(partial, study_uid, series_uid, sop_uids, source=client.conn.describe())
    except BaseException:  # failed, cancelled or interrupted: no entry, no partial folder
        cache.discard(partial)
        raise
    report(progress, "retrieve", n, n)
    return RetrieveResult(str(final), n, False, time.perf_counter() - t)


def send_files(conn, paths: Sequence[Path], progress: ProgressFn | None = None,
               cancel: CancelToken | None = None) -> StoreResult:
    """C-STORE / STOW-RS the files; the result lists what the PACS accepted and refused."""
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise PacsError(f"{p}: no such file to send")
    report(progress, "send", 0, len(paths))
    done = [0]

    def on_file():
        done[0] += 1
        report(progress, "send", done[0], len(paths))

    result = _client(conn).store(paths, cancel, on_file)
    report(progress, "send", len(paths), len(paths), result.describe())
    return result
