"""The dataset folder: one ``.npz`` file per case plus ``manifest.json``.

Each case file holds ``hu`` (int16 [Z, Y, X]), ``label`` (uint8 [Z, Y, X]:
0 background, 1 liver, 2 tumour), ``spacing`` ((z, y, x) mm), ``origin``,
``direction`` and ``meta`` (JSON: source, checksums), and, when the source
outlines more than liver and tumours, ``anatomy`` (uint8 [Z, Y, X], the codes
of :mod:`core.datasets.anatomy`). Two kinds of case:

* ``ct``: a CT with its labels (what evaluation, the viewer and calibration use);
* ``labelmap``: an expert label map without its CT (``hu`` absent): 3D-IRCADb-01
  ships such maps of 16 patients whose CT is not available here. Training renders
  CT from their anatomy (:mod:`core.synthetic.synth_ct`); nothing else reads them.

Members are stored uncompressed, so :func:`load_case` can memory-map them
(``mmap=True``) for training pipelines. Files are written atomically; the
manifest is rewritten after every case, so an interrupted import leaves a
consistent dataset.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ..runtime.atomic import atomic_open, write_json
from ..runtime.errors import DatasetError, one_line
from ..runtime.labels import LIVER, TUMOUR  # noqa: F401 (the codes, defined once; importable from here too)
from .anatomy import structures_present

MANIFEST = "manifest.json"
FORMAT = "liverseg-dataset"
VERSION = 1
KINDS = ("ct", "labelmap")


@dataclass
class Case:
    """One patient: CT in HU and its label volume.

    Attributes:
        case_id: name within the dataset (e.g. "3Dircadb1.17").
        hu: int16 [Z, Y, X] Hounsfield units; None for a label map without CT.
        label: uint8 [Z, Y, X], 0 background, 1 liver, 2 tumour.
        spacing: (z, y, x) mm.
        origin: LPS mm of voxel [0, 0, 0].
        direction: 3x3, columns are the x, y, z index axes in LPS.
        meta: source path, checksums and other JSON-able facts.
        anatomy: optional uint8 [Z, Y, X] structure codes (:mod:`core.datasets.anatomy`).
    """

    case_id: str
    hu: np.ndarray | None
    label: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    meta: dict = field(default_factory=dict)
    anatomy: np.ndarray | None = None

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    @property
    def kind(self) -> str:
        """"ct" or "labelmap" (no CT)."""
        return "ct" if self.hu is not None else "labelmap"

    def summary(self) -> dict:
        """The manifest entry of this case."""
        counts = np.bincount(self.label.ravel(), minlength=3)
        entry = {
            "file": case_file_name(self.case_id),
            "kind": self.kind,
            "shape": list(self.label.shape),
            "slices": int(self.label.shape[0]),
            "spacing": [round(float(s), 6) for s in self.spacing],
            "liver_ml": round(float(counts[LIVER] + counts[TUMOUR]) * self.voxel_ml, 4),
            "tumor_ml": round(float(counts[TUMOUR]) * self.voxel_ml, 4),
            "liver_slices": int(np.count_nonzero(np.any(self.label > 0, axis=(1, 2)))),
            "source": self.meta.get("source", ""),
            "source_sha256": self.meta.get("source_sha256", {}),
        }
        if self.anatomy is not None:
            entry["structures"] = structures_present(self.anatomy)
        return entry


def natural_key(s: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def case_file_name(case_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}", case_id):
        raise DatasetError(f"invalid case id {case_id!r}: use letters, digits, '.', '_' or '-'")
    return f"{case_id}.npz"


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest, or an empty one when the folder has none yet."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return {"format": FORMAT, "version": VERSION, "cases": {}}
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable manifest ({one_line(exc, 120)})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT or not isinstance(m.get("cases"), dict):
        raise DatasetError(f"{path}: not a LiverSeg dataset manifest")
    return m


def write_case(folder: str | Path, case: Case) -> dict:
    """Write one case file and add it to the manifest (both atomically).

    Returns:
        The case's manifest entry.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot create the dataset folder ({one_line(exc, 120)})") from None
    if case.label.ndim != 3 or any(a is not None and a.shape != case.label.shape for a in (case.hu, case.anatomy)):
        shapes = {k: getattr(a, "shape", None) for k, a in (("hu", case.hu), ("label", case.label),
                                                            ("anatomy", case.anatomy))}
        raise DatasetError(f"{case.case_id}: arrays of different shapes {shapes}")
    entry = case.summary()
    arrays = {"label": np.ascontiguousarray(case.label, dtype=np.uint8)}
    if case.hu is not None:
        arrays["hu"] = np.ascontiguousarray(case.hu, dtype=np.int16)
    if case.anatomy is not None:
        arrays["anatomy"] = np.ascontiguousarray(case.anatomy, dtype=np.uint8)
    try:
        with atomic_open(folder / entry["file"], "wb") as fh:
            np.savez(fh, **arrays,  # type: ignore[arg-type]  # numpy stub: **arrays checked as allow_pickle
                     spacing=np.asarray(case.spacing, dtype=np.float64),
                     origin=np.asarray(case.origin, dtype=np.float64),
                     direction=np.asarray(case.direction, dtype=np.float64),
                     meta=np.frombuffer(json.dumps(case.meta).encode("utf-8"), dtype=np.uint8))
        manifest = read_manifest(folder)
        manifest["cases"][case.case_id] = entry
        manifest["cases"] = dict(sorted(manifest["cases"].items(), key=lambda kv: natural_key(kv[0])))
        write_json(folder / MANIFEST, manifest)
    except OSError as exc:  # disk full, read-only or vanished folder: one clear line, nothing partial
        raise DatasetError(f"{folder}: cannot write case {case.case_id} ({one_line(exc, 120)})") from None
    return entry


def same_source(a: str, b: str) -> bool:
    """Two source names (a folder or file, or ``archive::member``) that point at the same place."""
    def norm(x: str) -> str:
        path, sep, member = x.partition("::")
        return os.path.realpath(path) + sep + member
    return norm(a) == norm(b)


def refuse_replacing(out: Path, sources: list[tuple[str, str]]) -> None:
    """Before an import writes anything: refuse to replace a case of dataset ``out`` that was
    imported from another source. ``sources``: (case id, where the new one comes from).

    Raises:
        DatasetError: naming the case, where it came from and what would replace it.
    """
    existing = read_manifest(out)["cases"] if Path(out).exists() else {}
    for cid, source in sources:
        prev = existing.get(cid)
        if prev and prev.get("source") and not same_source(prev["source"], source) \
                and (Path(out) / prev.get("file", "")).is_file():
            raise DatasetError(f"{out}: case {cid} is already there, imported from {prev['source']}; "
                               f"importing {source} would replace it (use --force, or another dataset folder)")


def list_cases(folder: str | Path, kind: str = "ct") -> list[str]:
    """Case ids of a dataset folder, in natural order ("2" before "10").

    Args:
        kind: "ct" (the default: cases with a CT), "labelmap" (label maps without CT) or "all".
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such dataset folder")
    if kind not in KINDS + ("all",):
        raise ValueError(f"kind must be one of {KINDS + ('all',)}, got {kind!r}")
    cases = read_manifest(folder)["cases"]
    return sorted((c for c, e in cases.items() if kind == "all" or e.get("kind", "ct") == kind), key=natural_key)


def _memmap_member(zf: zipfile.ZipFile, path: Path, name: str) -> np.ndarray:
    """Memory-map an uncompressed ``.npy`` member of an ``.npz`` file."""
    info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        return np.load(zf.open(name))
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        n_name, n_extra = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        fh.seek(info.header_offset + 30 + n_name + n_extra)
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        offset = fh.tell()
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


def load_case(folder: str | Path, case_id: str, mmap: bool = False) -> Case:
    """Load one case.

    Args:
        folder: dataset folder.
        case_id: one of :func:`list_cases`.
        mmap: memory-map ``hu`` and ``label`` read-only instead of reading them.

    Raises:
        DatasetError: missing or corrupt file, inconsistent arrays.
    """
    path = Path(folder) / case_file_name(case_id)
    if not path.exists():
        raise DatasetError(f"{path}: no such case file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            big = {}
            for k in ("hu", "label", "anatomy"):
                if f"{k}.npy" in names:
                    big[k] = _memmap_member(zf, path, f"{k}.npy") if mmap else np.load(zf.open(f"{k}.npy"))
            small = {k: np.load(zf.open(f"{k}.npy")) for k in ("spacing", "origin", "direction", "meta")}
        meta = json.loads(small["meta"].tobytes().decode("utf-8"))
    except DatasetError:
        raise
    except Exception as exc:  # zipfile/numpy/json raise many types on corrupt files
        raise DatasetError(f"{path}: corrupt case file ({one_line(exc, 120)})") from None
    label, hu, anatomy = big.get("label"), big.get("hu"), big.get("anatomy")
    if (label is None or label.ndim != 3 or label.dtype != np.uint8
            or (hu is not None and (hu.shape != label.shape or hu.dtype != np.int16))
            or (anatomy is not None and (anatomy.shape != label.shape or anatomy.dtype != np.uint8))
            or (hu is None and anatomy is None)):
        desc = ", ".join(f"{k} {a.shape} {a.dtype}" for k, a in big.items())
        raise DatasetError(f"{path}: inconsistent arrays ({desc or 'none'})")
    return Case(case_id, hu, label, cast("tuple[float, float, float]", tuple(float(s) for s in small["spacing"])),
                cast("tuple[float, float, float]", tuple(float(s) for s in small["origin"])), small["direction"],
                meta, anatomy)
