"""``liverseg predict --batch --pacs NAME``: every CT series a query finds, segmented like a folder
of studies (:func:`core.study.batch.run_batch`), each series retrieved into the cache only when its
turn comes, sharded as a folder batch is."""

from __future__ import annotations

import re
from pathlib import Path

from ..runtime.jobs import CancelToken, ProgressFn, report
from .cache import RetrieveCache
from .client import open_client
from .connections import PacsConnection
from .operations import retrieve_series
from .types import PacsQuery, SeriesHit, StudyHit


def series_name(study: StudyHit, series: SeriesHit) -> str:
    """A file-safe, unique name: patient, date, series number and the series UID's tail."""
    raw = f"{study.patient_id or 'patient'}_{study.date or 'nodate'}_S{series.number or 'x'}_{series.series_uid[-12:]}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw)


def query_ct_series(conn: PacsConnection, query: PacsQuery, progress: ProgressFn | None = None
                    ) -> list[tuple[StudyHit, SeriesHit]]:
    """Every series of ``query.modality`` (CT) in the studies the query finds, in a fixed order."""
    client = open_client(conn)
    studies = sorted(client.find_studies(query), key=lambda s: s.study_uid)
    out = []
    for i, study in enumerate(studies):
        report(progress, "query", i, len(studies), study.patient_id)
        for series in client.find_series(study.study_uid, query.modality):
            out.append((study, series))
    report(progress, "query", len(studies), len(studies))
    return sorted(out, key=lambda p: (p[0].study_uid, p[1].series_uid))


def pacs_sources(conn: PacsConnection, pairs, cache: RetrieveCache | None = None,
                 cancel: CancelToken | None = None) -> list:
    """``run_batch`` sources: (name, fetch) where fetch retrieves the series into the cache."""
    cache = cache or RetrieveCache()

    def fetcher(study: StudyHit, series: SeriesHit):
        return lambda: Path(retrieve_series(conn, study.study_uid, series.series_uid, cache, cancel=cancel).path)

    return [(series_name(st, se), fetcher(st, se)) for st, se in pairs]
