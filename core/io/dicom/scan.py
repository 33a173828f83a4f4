"""Walking a folder for DICOM image series."""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...runtime.errors import DicomError
from ...runtime.jobs import CancelToken, ProgressFn, check, report
from .geometry import compute_geometry, orientation_key
from .headers import FileSource, SliceHeader, Source, read_header
from .pixels import ts_name
from .types import ScanResult, SeriesInfo

log = logging.getLogger(__name__)

CHUNK = 32  # files per task: keeps thread hand-offs (and GIL churn) rare
IO_WORKERS = 8  # threads when reading is I/O-bound


def list_files(root: Path) -> list[str]:
    """All regular files under ``root`` (recursively, symlinked folders not followed)."""
    if root.is_file():
        return [str(root)]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = os.path.join(dirpath, f)
            if os.path.isfile(p):
                out.append(p)
    return out


def read_headers(sources: Sequence[Source], progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None, workers: int | None = None):
    """Read every header; returns (headers, skipped).

    Header parsing is CPU-bound Python, which threads only slow down (the GIL),
    while on slow storage (network shares, cold disks) waiting for the files
    dominates and threads help. So, by default, the first chunk is read in
    this thread and timed: if its wall time is mostly waiting (more than twice
    its CPU time), the rest is read by a pool of threads. ``workers`` forces
    the pool size (1 = serial).
    """
    n = len(sources)
    chunks = [sources[i:i + CHUNK] for i in range(0, n, CHUNK)]
    headers: list[SliceHeader] = []
    skipped: list[tuple[str, str]] = []
    done = 0

    def work(chunk):
        return [(s, read_header(s)) for s in chunk]

    def collect(results):
        nonlocal done
        for s, r in results:
            if isinstance(r, str):
                skipped.append((s.name, r))
                log.info("skipped %s: %s", s.name, r)
            else:
                headers.append(r)
        done += len(results)
        report(progress, "scan", done, n)

    if workers is None and chunks:
        check(cancel)
        wall, cpu = time.perf_counter(), time.thread_time()
        collect(work(chunks[0]))
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        chunks = chunks[1:]
        workers = IO_WORKERS if wall > 2 * cpu + 0.005 else 1
    if (workers or 1) <= 1 or len(chunks) <= 1:
        for c in chunks:
            check(cancel)
            collect(work(c))
    else:
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(work, c) for c in chunks]
            try:
                for f in futures:
                    check(cancel)
                    collect(f.result())
            finally:
                for f in futures:
                    f.cancel()
    return headers, skipped


def split_acquisitions(headers: list[SliceHeader]) -> list[tuple[int | None, list[SliceHeader]]]:
    """One stack per AcquisitionNumber when acquisitions repeat table positions, else one stack.

    Some scanners store the phases of a multi-phase protocol (e.g. arterial and portal-venous)
    under one SeriesInstanceUID, told apart only by AcquisitionNumber; stacked together they
    interleave two volumes. Acquisitions that never share a slice position (a step-and-shoot scan
    numbering each rotation) stay one stack.
    """
    by_acq: dict[int | None, list[SliceHeader]] = defaultdict(list)
    for h in headers:
        by_acq[h.acquisition].append(h)
    if len(by_acq) < 2 or any(h.ipp is None for h in headers):
        return [(None, headers)]
    seen: dict[tuple, int | None] = {}
    for acq, hs in by_acq.items():
        for h in hs:
            pos = tuple(round(c, 2) for c in h.ipp)  # type: ignore[union-attr]
            if seen.setdefault(pos, acq) != acq:
                return sorted(by_acq.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    return [(None, headers)]


def _acquisition_note(acq: int, parts: list[tuple[int | None, list[SliceHeader]]]) -> str:
    listed = ", ".join(f"{a}: {len(hs)} slices" for a, hs in parts)
    return (f"the series holds {len(parts)} acquisitions at the same table positions (AcquisitionNumber "
            f"{listed}), each its own volume: this is acquisition {acq}")


def group_headers(headers: Iterable[SliceHeader], skipped=(), root: str = "") -> ScanResult:
    """Group slices by SeriesInstanceUID, then by size and orientation, then by acquisition
    where one series holds several at the same positions (:func:`split_acquisitions`)."""
    groups: dict[tuple, list[SliceHeader]] = defaultdict(list)
    for h in headers:
        groups[(h.series_uid, h.rows, h.cols, orientation_key(h))].append(h)
    per_uid: dict[str, list[tuple]] = defaultdict(list)
    for gk in groups:
        per_uid[gk[0]].append(gk)
    infos = []
    for uid, keys in per_uid.items():
        keys.sort(key=lambda k: -len(groups[k]))
        for i, k in enumerate(keys):
            split = len(keys) > 1
            key = (uid or "(no SeriesInstanceUID)") if i == 0 else f"{uid}#{i + 1}"
            parts = split_acquisitions(groups[k])
            for acq, hs in parts:
                geo = compute_geometry(hs)
                warns = list(geo.warnings)
                if acq is not None:
                    warns.insert(0, _acquisition_note(acq, parts))
                if split:
                    warns.insert(0, f"series UID also holds {sum(len(groups[o]) for o in keys if o != k)} "
                                    f"slice(s) of another size or orientation (a localizer?): "
                                    + ("skipped" if i == 0 else "this stack is not the largest"))
                first = geo.slices[0]
                infos.append(SeriesInfo(
                    key=key if acq is None else f"{key}#acq{acq}",
                    series_uid=uid, study_uid=first.study_uid, modality=first.modality,
                    description=first.description, n_slices=len(geo.slices), rows=first.rows, cols=first.cols,
                    spacing=geo.spacing, transfer_syntax=ts_name(first.transfer_syntax), warnings=tuple(warns),
                    files=tuple(h.name for h in geo.slices), split=split, acquisition=acq, headers=tuple(hs)))
    infos.sort(key=lambda s: (-s.n_slices, s.series_uid, s.acquisition or 0, s.key))
    return ScanResult(infos, skipped, root)


def scan(path: str | os.PathLike, progress: ProgressFn | None = None,
         cancel: CancelToken | None = None, workers: int | None = None) -> ScanResult:
    """Find the image series in a folder (recursively).

    Files with or without an extension are read; non-DICOM files, DICOMDIR and
    non-image objects (SR, presentation states...) are skipped with a logged
    reason, kept in ``result.skipped``.

    Args:
        path: a folder (or a single file).
        progress: receives ``Progress("scan", done, total)`` events.
        cancel: checked between chunks of files.
        workers: header-reading threads (default: chosen by timing the first files).

    Returns:
        A :class:`ScanResult`: the series, most slices first.

    Raises:
        DicomError: the folder does not exist or holds no file at all.
    """
    root = Path(path)
    if not root.exists():
        raise DicomError(f"{root}: no such file or folder")
    files = list_files(root)
    if not files:
        raise DicomError(f"{root}: empty folder (no files)")
    headers, skipped = read_headers([FileSource(f) for f in files], progress, cancel, workers)
    return group_headers(headers, skipped, str(root))
