"""Loading one series into a :class:`Volume`."""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ...runtime.errors import DicomError
from ...runtime.jobs import CancelToken, ProgressFn, check, report
from .geometry import compute_geometry
from .pixels import check_slice, memory_budget, read_into
from .scan import scan
from .types import ScanResult, SeriesInfo, SeriesMeta, Volume

log = logging.getLogger(__name__)


def _mixed_error(where: str, uid: str, parts: list[SeriesInfo]) -> DicomError:
    sizes = ", ".join(f"{p.rows}x{p.cols} ({p.n_slices} files)" for p in parts)
    return DicomError(f"{where}: mixed slice sizes or orientations in one series {uid}: {sizes}")


def select_series(result: ScanResult, series_uid: str | None, where: str,
                  acquisition: int | None = None) -> SeriesInfo:
    """Pick the series to load: the given UID (or key), else the CT with most slices; of a series
    that holds several acquisitions (:func:`core.io.dicom.scan.split_acquisitions`), the given
    ``acquisition``, else the one with most slices (the lowest AcquisitionNumber on a tie)."""
    if not result:
        n = len(result.skipped)
        example = f"; e.g. {os.path.basename(result.skipped[0][0])}: {result.skipped[0][1]}" if n else ""
        raise DicomError(f"{where}: no image series among {n} file(s){example}")
    if acquisition is not None:
        return _acquisition(result, series_uid, where, acquisition)
    if series_uid:
        by_key = [s for s in result if s.key == series_uid]
        if by_key:
            return by_key[0]
        parts = [s for s in result if s.series_uid == series_uid]
        if not parts:
            raise DicomError(f"{where}: no series with UID {series_uid}")
        if all(p.acquisition is not None for p in parts):
            return _default_acquisition(where, parts)
        return _largest_stack(where, series_uid, parts)
    cts = [s for s in result if s.is_ct]
    if not cts:
        found = ", ".join(f"{s.modality or '?'} ({s.n_slices} slices)" for s in result[:4])
        raise DicomError(f"{where}: no CT series (found {found})")
    # Most slices; on a tie, real CT (>= 12 bits) before 8-bit masks stored as CT (3D-IRCADb-01).
    best = max(cts, key=lambda s: (s.n_slices, s.headers[0].bits_stored > 8 if s.headers else False))
    if best.acquisition is not None:
        return _default_acquisition(where, [s for s in result if s.series_uid == best.series_uid
                                            and s.acquisition is not None])
    if best.split:
        return _largest_stack(where, best.series_uid, [s for s in result if s.series_uid == best.series_uid])
    return best


def _acquisition(result: ScanResult, series_uid: str | None, where: str, acquisition: int) -> SeriesInfo:
    """The stack of one AcquisitionNumber (of ``series_uid`` when given)."""
    parts = [s for s in result if s.acquisition is not None and (not series_uid or series_uid in (s.series_uid, s.key))]
    found = [s for s in parts if s.acquisition == acquisition]
    if len(found) == 1:
        return found[0]
    if not parts:  # a series that is one acquisition throughout is that acquisition
        whole = [s for s in result if s.headers and all(h.acquisition == acquisition for h in s.headers)
                 and (not series_uid or series_uid in (s.series_uid, s.key))]
        if len(whole) == 1:
            return whole[0]
        raise DicomError(f"{where}: no series here holds acquisition {acquisition} "
                         f"(AcquisitionNumber; `liverseg info` lists the series)")
    if not found:
        have = ", ".join(str(s.acquisition) for s in parts)
        raise DicomError(f"{where}: no acquisition {acquisition}; the series holds acquisitions {have}")
    raise DicomError(f"{where}: {len(found)} series hold an acquisition {acquisition}: name one by its key "
                     f"({', '.join(s.key for s in found)})")


def _default_acquisition(where: str, parts: list[SeriesInfo]) -> SeriesInfo:
    best = sorted(parts, key=lambda p: (-p.n_slices, p.acquisition or 0))[0]
    others = ", ".join(str(p.acquisition) for p in parts if p is not best)
    log.warning("%s: series %s holds acquisitions %s and %s at the same positions: loaded acquisition %s "
                "(open another with --acquisition N or by its key)", where, best.series_uid, best.acquisition,
                others, best.acquisition)
    return best


def _largest_stack(where: str, uid: str, parts: list[SeriesInfo]) -> SeriesInfo:
    """One series UID holding stacks of several sizes or orientations (a localizer / scout saved
    with the axial slices, as some scanners do): the largest consistent stack, the rest skipped
    with a warning (``SeriesInfo.warnings``), as 3D Slicer splits such a series. Refused when no
    stack is clearly the largest (two equal stacks: the user picks one by its key)."""
    if len(parts) == 1:
        return parts[0]
    parts = sorted(parts, key=lambda p: -p.n_slices)
    if parts[0].n_slices < 2 or parts[0].n_slices == parts[1].n_slices:
        raise _mixed_error(where, uid, parts)
    skipped = ", ".join(f"{p.n_slices} slice(s) of {p.rows}x{p.cols}" for p in parts[1:])
    log.warning("%s: series %s: loaded the largest consistent stack (%d slices), skipped %s of another "
                "size or orientation (localizer?)", where, uid, parts[0].n_slices, skipped)
    return parts[0]


def load_info(info: SeriesInfo, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
              where: str = "", workers: int | None = None) -> Volume:
    """Load one scanned series into an int16 HU volume.

    Raises:
        DicomError: not CT, a single slice, colour, absurd size, missing,
            truncated or corrupt pixel data.
    """
    where = where or (os.path.dirname(info.files[0]) if info.files else "?")
    if info.modality and info.modality != "CT":
        raise DicomError(f"{where}: series {info.key} is {info.modality}, not CT")
    geo = compute_geometry(list(info.headers))
    slices = geo.slices
    if len(slices) < 2:
        raise DicomError(f"{where}: only one slice in series {info.key}; a CT volume needs at least 2")
    for h in slices:
        check_slice(h)
    rows, cols = slices[0].rows, slices[0].cols
    need = len(slices) * rows * cols * 2
    if need > memory_budget():
        raise DicomError(f"{where}: {len(slices)} slices of {rows} x {cols} need {need / 2**30:.1f} GiB, "
                         f"more than the {memory_budget() / 2**30:.1f} GiB allowed")
    hu = np.empty((len(slices), rows, cols), dtype=np.int16)
    total = len(slices)
    if workers is None:  # decoders run in C; native reads are a memcpy each
        workers = min(4, os.cpu_count() or 1) if any(h.encapsulated for h in slices) else 1

    def work(i: int) -> int:
        read_into(slices[i], hu[i])
        return i

    if workers <= 1:
        for i in range(total):
            check(cancel)
            work(i)
            report(progress, "read", i + 1, total)
    else:
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(work, i) for i in range(total)]
            try:
                for k, f in enumerate(futures):
                    check(cancel)
                    f.result()
                    report(progress, "read", k + 1, total)
            finally:
                for f in futures:
                    f.cancel()

    first = slices[0]
    windows = Counter(h.window for h in slices if h.window)
    meta = SeriesMeta(
        series_uid=info.series_uid, study_uid=first.study_uid, frame_of_reference_uid=first.frame_uid,
        modality=first.modality or "CT", sop_class_uid=first.sop_class, patient_name=first.patient_name,
        patient_id=first.patient_id, study_date=first.study_date, description=first.description,
        manufacturer=first.manufacturer, sop_instance_uids=tuple(h.sop_uid for h in slices),
        files=tuple(h.name for h in slices), window=windows.most_common(1)[0][0] if windows else None,
        source=where, acquisition=info.acquisition)
    for w in geo.warnings:
        log.warning("%s: %s", where, w)
    split = tuple(w for w in info.warnings if (info.split or info.acquisition is not None) and w not in geo.warnings)
    return Volume(hu=hu, spacing=geo.spacing, origin=geo.origin, direction=geo.direction, meta=meta,
                  warnings=split + tuple(geo.warnings))


def load_series(path: str | os.PathLike, series_uid: str | None = None,
                progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                acquisition: int | None = None) -> Volume:
    """Load a CT series from a folder.

    Args:
        path: folder to scan recursively (or a single file, refused as one slice).
        series_uid: SeriesInstanceUID (or scan key) to load; by default the CT
            series with the most slices.
        progress: receives "scan" then "read" :class:`~core.runtime.jobs.Progress` events.
        cancel: checked between files.
        acquisition: of a series holding several acquisitions at the same positions, which one
            (AcquisitionNumber); by default the one with most slices.

    Returns:
        A :class:`Volume` with ``hu`` int16 [Z, Y, X] in HU.

    Raises:
        DicomError: one line naming the folder or file and the problem.
    """
    result = scan(path, progress, cancel)
    info = select_series(result, series_uid, str(path), acquisition)
    return load_info(info, progress, cancel, where=str(path))
