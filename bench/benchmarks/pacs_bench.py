"""PACS speed: retrieving a series from a local Orthanc against reading the same files
from disk, and query latency. Needs Orthanc with its DICOMweb plugin (apt-get install orthanc
orthanc-dicomweb).

Patient 17 (119 slices of 512 x 512) from ../shared when present, else a 119-slice phantom. Rounds
are interleaved: ``load_series`` of the files on disk, then a retrieve by C-GET and by WADO-RS into
an empty cache (each timed until the files are in the cache), then ``load_series`` of the
retrieved folder (so "retrieve and open" = retrieve + load). Goals: retrieve <= 2 x load + 1 s;
query <= 0.5 s.

    .venv/bin/python bench/benchmarks/pacs_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from core.io.dicom import load_series
    from core.pacs import connections as C
    from core.pacs.cache import RetrieveCache
    from core.pacs.connections import PacsConnection
    from core.pacs.operations import query_series, query_studies, retrieve_series
    from core.pacs.types import PacsQuery
    from tests.pacs_server import AET, PASSWORD, USER, OrthancServer

    tmp = Path(tempfile.mkdtemp(prefix="pacs-bench-"))
    src = ROOT.parent / "shared" / "data" / "3Dircadb1.17" / "PATIENT_DICOM.zip"
    if not src.exists():
        from core.synthetic.phantom import make_phantom, write_patient
        src = write_patient(make_phantom(1, slices=119, size=512), tmp / "ph", 1) / "PATIENT_DICOM.zip"
    with zipfile.ZipFile(src) as z:
        z.extractall(tmp / "disk")
    server = OrthancServer(tmp / "orthanc")
    try:
        n = server.upload_zip_series(src, "PATIENT_DICOM/")
        C._session_secrets["bench web"] = PASSWORD
        dimse = PacsConnection("bench", host="127.0.0.1", port=server.dicom_port, called_ae=AET, timeout=60)
        web = PacsConnection("bench web", "dicomweb", url=server.dicomweb_url, auth="basic", username=USER,
                             timeout=60)
        study = query_studies(dimse, PacsQuery())[0]
        series = query_series(dimse, study.study_uid)[0]
        times: dict[str, list[float]] = {}

        def timed(name, fn):
            t = time.perf_counter()
            out = fn()
            times.setdefault(name, []).append(time.perf_counter() - t)
            return out

        load_series(tmp / "disk")  # warm imports and the page cache
        for r in range(args.rounds):
            timed("load_series (disk)", lambda: load_series(tmp / "disk"))
            for label, conn in (("C-GET", dimse), ("WADO-RS", web)):
                cache = RetrieveCache(tmp / f"cache-{r}-{label}")
                got = timed(f"retrieve {label}", lambda conn=conn, cache=cache: retrieve_series(
                    conn, study.study_uid, series.series_uid, cache))
                timed(f"retrieve {label} + load", lambda got=got: load_series(got.path))
                times[f"retrieve {label} + load"][-1] += times[f"retrieve {label}"][-1]
                timed(f"cached {label}", lambda conn=conn, cache=cache: retrieve_series(
                    conn, study.study_uid, series.series_uid, cache))
                shutil.rmtree(cache.root)
                timed(f"study query {label}",
                      lambda conn=conn: query_studies(conn, PacsQuery(patient_id=study.patient_id)))
                timed(f"series query {label}", lambda conn=conn: query_series(conn, study.study_uid))
        med = {k: statistics.median(v) for k, v in times.items()}
        load = med["load_series (disk)"]
        print(f"{src.parent.name}: {n} slices, {args.rounds} interleaved rounds, medians")
        for k, v in med.items():
            extra = ""
            if k.startswith("retrieve") and "+" not in k:
                extra = f"  ratio to load {v / load:.2f}; goal 2 x load + 1 s = {2 * load + 1:.2f} s: " \
                        f"{'met' if v <= 2 * load + 1 else 'NOT met'}"
            elif "query" in k:
                extra = f"  goal 0.5 s: {'met' if v <= 0.5 else 'NOT met'}"
            print(f"  {k:28s} {v:7.3f} s{extra}")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
