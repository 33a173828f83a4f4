"""Segment many studies in one run: one output per study and a summary CSV.

``liverseg predict STUDIES --batch --out OUT_DIR``: every subfolder of ``STUDIES`` holding DICOM
files is a study (its largest CT series is segmented, as for a single study), and so is every volume
file in it (NIfTI, NRRD, MetaImage; a detached header's data file is not a study). The models load
once; each study's label is written to ``OUT_DIR/<study>.nii.gz``; a study that fails (not CT,
truncated files, ...) gets its one-line error in the summary and the run goes on. A rerun skips
studies whose output exists unless ``force``, so an interrupted run continues where it stopped.

Cohorts on a cluster: ``shard=(K, N)`` takes every N-th study from the K-th (1-based) of the
sorted list, deterministically, so a Slurm job array (``--shard $SLURM_ARRAY_TASK_ID/N``) or any
scheduler's array jobs split the work without talking to each other; each shard writes
``summary-K-of-N.csv`` and :func:`merge_summaries` (``liverseg merge``) joins them.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..inference.engines import engines_line
from ..io.export import _write, check_target
from ..io.volume_file import VOLUME_SUFFIXES, is_volume_file
from ..runtime.choices import Engine
from ..runtime.errors import Cancelled, LiverSegError, one_line
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from .session import StudySession

SUMMARY_COLUMNS = ("study", "status", "liver_ml", "tumor_ml", "lesions", "engine", "seconds", "output", "error")
# The StudyRow field of a column where their names differ (the columns keep their names: summaries written before).
ROW_FIELDS = {"tumor_ml": "tumour_ml"}
SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass
class StudyRow:
    """One line of the summary CSV (its columns: :data:`SUMMARY_COLUMNS`, the fields through :data:`ROW_FIELDS`)."""

    study: str
    status: str  # "done", "skipped" (output exists), "error"
    liver_ml: str = ""
    tumour_ml: str = ""
    lesions: str = ""
    engine: str = ""
    seconds: str = ""
    output: str = ""
    error: str = ""


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` (1 <= K <= N) -> (K, N); None passes through."""
    if text is None:
        return None
    m = SHARD_RE.match(text)
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise LiverSegError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 3/10")
    return int(m.group(1)), int(m.group(2))


def find_studies(root: str | os.PathLike) -> list[Path]:
    """The studies in ``root``: subfolders that hold files (a DICOM series, at any depth) and
    volume files (NIfTI, NRRD, MetaImage), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise LiverSegError(f"{root}: not a folder of studies")
    studies = sorted((p for p in root.iterdir() if not p.name.startswith(".") and (
        (p.is_dir() and any(f.is_file() for f in p.rglob("*"))) or is_volume_file(p))), key=lambda p: p.name)
    if not studies:
        raise LiverSegError(f"{root}: no study subfolders or volume files (a batch run segments each as one study)")
    names = [study_name(p) for p in studies]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise LiverSegError(f"{root}: {', '.join(twice)}: a folder and a volume file of the same name "
                            f"would write the same output")
    return studies


def take_shard(items: list, shard: tuple[int, int] | None) -> list:
    """Every N-th item from the K-th (1-based): disjoint shards that together cover the list."""
    if shard is None:
        return list(items)
    k, n = shard
    return list(items[k - 1::n])


def summary_name(shard: tuple[int, int] | None) -> str:
    return "summary.csv" if shard is None else f"summary-{shard[0]}-of-{shard[1]}.csv"


def study_name(study: Path) -> str:
    """``ct-12.nii.gz`` (or ``.nrrd``, ``.mha``, ...) -> ``ct-12``; a folder keeps its name."""
    name = study.name
    for suffix in VOLUME_SUFFIXES:
        if study.is_file() and name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _segment_one(name: str, study: Path, out: Path, liver, tumour, engine: Engine, device: str | None,
                 cancel) -> StudyRow:
    t = time.perf_counter()
    session = StudySession.open(study, cancel=cancel)
    seg = session.segment(liver, tumour, engine=engine, device=device, cancel=cancel)
    summary, _ = session.measure()
    session.export("nifti", out, force=True)  # the skip / --force decision is made by the caller
    return StudyRow(name, "done", f"{summary.liver_ml:.1f}", f"{summary.tumour_ml:.2f}",
                    str(len(summary.lesions)), engines_line(seg.info.get("engines") or {}),
                    f"{time.perf_counter() - t:.1f}", str(out))


def _given(path: Path) -> Callable[[], Path]:
    return lambda: path


def run_batch(root: str | os.PathLike, out_dir: str | os.PathLike, liver, tumour=None, *, force: bool = False,
              shard: tuple[int, int] | None = None, engine: Engine = "auto", device: str | None = None,
              progress: ProgressFn | None = None, cancel: CancelToken | None = None,
              sources: list[tuple[str, Callable[[], Path]]] | None = None) -> tuple[list[StudyRow], Path]:
    """Segment every study (of this shard) under ``root``; returns the rows and the summary CSV path.

    The models (:class:`core.model.io.SegModel`) are loaded by the caller, once. Nothing is
    written inside ``root``; each output and the summary are written atomically. A cancel stops
    between studies (and inside one), keeping the summary of what was done.

    ``sources`` replaces the folder's studies with named ones fetched on demand (a PACS query:
    :mod:`core.pacs.batch`), already sharded by the caller; a fetch that fails is that study's error.
    """
    root, out_dir = Path(root), Path(out_dir)
    if sources is None:
        sources = [(study_name(s), _given(s)) for s in take_shard(find_studies(root), shard)]
    summary = check_target(out_dir / summary_name(shard), True, [str(root)])  # never inside the studies
    previous = {}
    if summary.exists():  # a rerun: studies skipped keep their figures from the last run
        try:
            previous = {r.study: r for r in read_summary(summary) if r.status == "done"}
        except LiverSegError:
            previous = {}
    rows: list[StudyRow] = []
    for i, (name, fetch) in enumerate(sources):
        check(cancel)
        report(progress, "studies", i, len(sources), name)
        out = out_dir / f"{name}.nii.gz"
        if out.exists() and not force:
            rows.append(previous.get(name) or StudyRow(name, "skipped", output=str(out),
                                                             error="output exists (--force to redo)"))
        else:
            try:
                rows.append(_segment_one(name, fetch(), out, liver, tumour, engine, device, cancel))
            except Cancelled:
                write_summary(summary, rows)
                raise
            except (LiverSegError, OSError, ValueError, MemoryError) as exc:
                rows.append(StudyRow(name, "error", error=one_line(exc, 300)))
        write_summary(summary, rows)  # after every study: an interrupted run keeps its summary
    report(progress, "studies", len(sources), len(sources))
    write_summary(summary, rows)
    return rows, summary


def summary_csv(rows: Iterable[StudyRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    w.writeheader()
    column = {f: c for c, f in ROW_FIELDS.items()}
    for r in rows:
        w.writerow({column.get(k, k): v for k, v in asdict(r).items()})
    return buf.getvalue()


def write_summary(path: Path, rows: Iterable[StudyRow]) -> Path:
    _write(path, summary_csv(rows).encode("utf-8"))
    return path


def read_summary(path: str | os.PathLike) -> list[StudyRow]:
    """A summary CSV back (ours: the header must be SUMMARY_COLUMNS)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LiverSegError(f"{p}: cannot read ({one_line(exc, 120)})") from None
    reader = csv.DictReader(io.StringIO(text))
    names = tuple(reader.fieldnames or ())
    old = {"tumour_ml": "tumor_ml"}  # the column's other spelling, in summaries written with it
    columns = tuple(old.get(n, n) for n in names)
    if columns != SUMMARY_COLUMNS:
        raise LiverSegError(f"{p}: not a LiverSeg batch summary (columns {reader.fieldnames})")
    return [StudyRow(**{ROW_FIELDS.get(c, c): row.get(n) or "" for n, c in zip(names, columns, strict=True)})
            for row in reader]


def merge_summaries(paths: Iterable[str | os.PathLike], out: str | os.PathLike, force: bool = False) -> list[StudyRow]:
    """Join per-shard summaries into one, sorted by study; a study in two shards is an error."""
    rows: dict[str, StudyRow] = {}
    for path in paths:
        for r in read_summary(path):
            if r.study in rows:
                raise LiverSegError(f"{path}: study {r.study} is also in another summary (overlapping shards?)")
            rows[r.study] = r
    merged = [rows[k] for k in sorted(rows)]
    write_summary(check_target(out, force), merged)
    return merged
