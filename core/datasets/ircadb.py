"""Importing 3D-IRCADb-01 (as downloaded, or extracted) into a dataset folder.

Accepted sources:
    * the database archive ``3Dircadb1.zip`` (patient folders holding the
      inner ``PATIENT_DICOM.zip`` / ``MASKS_DICOM.zip``, read in memory);
    * a folder of ``3Dircadb1.N`` patient folders;
    * one patient folder;
with the inner zips either as shipped or already extracted. Nothing is
extracted and the source is never modified. Labels: 0 background, 1 liver,
2 tumour = union of every ``livertumor*`` mask (``livertumor1``,
``livertumor01``, ``livertumors``...); cysts (``liverkyst``) and other
structures are not tumour. Every structure outlined (vessels, bone, skin,
organs) also goes into the case's anatomy map (:mod:`core.datasets.anatomy`).

A patient folder with ``MASKS_DICOM`` but no ``PATIENT_DICOM`` (the expert label
maps of patients whose CT is not at hand) becomes a ``labelmap`` case: the grid
comes from the mask files' own headers, and there is no ``hu``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.archive import SafeZip
from ..io.dicom.geometry import compute_geometry
from ..io.dicom.headers import BytesSource, FileSource, Source, read_header
from ..io.dicom.load import load_info, select_series
from ..io.dicom.pixels import check_slice, read_into
from ..io.dicom.scan import group_headers, list_files, read_headers
from ..runtime.errors import ArchiveError, DatasetError, DicomError
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..runtime.labels import TUMOUR
from . import anatomy
from .dataset import Case, read_manifest, refuse_replacing, write_case

log = logging.getLogger(__name__)

# Patient folders: the dataset's own (3Dircadb1.N), and our phantoms in its layout (phantom-s<seed>-N).
PATIENT_RE = re.compile(r"^(?:3Dircadb1\.(\d+)|phantom-s(\d+)-(\d+))$", re.IGNORECASE)


def is_phantom_name(name: str) -> bool:
    """A case named as our synthetic phantoms are (``phantom-s<seed>-N``)."""
    m = PATIENT_RE.match(name)
    return bool(m and m.group(2))


def patient_order(name: str) -> tuple:
    """Sort key: real patients by number, then phantoms by seed and number."""
    m = PATIENT_RE.match(name)
    if not m:
        return (2, name)
    return (0, int(m.group(1))) if m.group(1) else (1, int(m.group(2)), int(m.group(3)))


def structure_kind(name: str) -> str:
    """"liver", "tumour" or "" (not part of the training label) for a MASKS_DICOM folder name."""
    code = anatomy.structure_code(name)
    return {anatomy.LIVER: "liver", anatomy.TUMOUR: "tumour"}.get(code, "")


@dataclass
class PatientData:
    """The files of one patient, opened."""

    case_id: str
    name: str
    ct: list[Source]
    masks: dict[str, list[Source]]
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass
class PatientRef:
    """A patient found in the source; ``open()`` reads its files."""

    case_id: str
    name: str
    open: Callable[[], PatientData]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _split_members(z: SafeZip, prefix_parts: int = 0) -> tuple[list[Source], dict[str, list[Source]]]:
    """CT and mask slices among a zip's members (paths .../PATIENT_DICOM/f, .../MASKS_DICOM/s/f)."""
    ct: list[Source] = []
    masks: dict[str, list[Source]] = {}
    for info in z.infos:
        parts = info.filename.replace("\\", "/").split("/")[prefix_parts:]
        if parts[-1].lower().endswith(".zip"):
            z.open_inner(info)  # refuses archives nested too deep; a shallow one is not a slice
            continue
        upper = [p.upper() for p in parts]
        if "PATIENT_DICOM" in upper and upper.index("PATIENT_DICOM") == len(parts) - 2:
            ct.append(BytesSource(f"{z.name}::{info.filename}", z.read(info)))
        elif "MASKS_DICOM" in upper and upper.index("MASKS_DICOM") == len(parts) - 3 and parts[-1]:
            masks.setdefault(parts[-2], []).append(BytesSource(f"{z.name}::{info.filename}", z.read(info)))
    return ct, masks


def _patient_from_folder(folder: Path, case_id: str) -> PatientRef:
    def open_() -> PatientData:
        ct: list[Source] = []
        masks: dict[str, list[Source]] = {}
        sums: dict[str, str] = {}
        for kind in ("PATIENT_DICOM", "MASKS_DICOM"):
            zpath, dpath = folder / f"{kind}.zip", folder / kind
            if zpath.is_file():
                data = zpath.read_bytes()
                sums[zpath.name] = _sha(data)
                z = SafeZip(data, str(zpath))
                c, m = _split_members(z)
                ct += c
                for k, v in m.items():
                    masks.setdefault(k, []).extend(v)
            elif dpath.is_dir():
                h = hashlib.sha256()
                if kind == "PATIENT_DICOM":
                    files = list_files(dpath)
                    ct += [FileSource(f) for f in files]
                else:
                    files = []
                    for sub in sorted(p for p in dpath.iterdir() if p.is_dir()):
                        fs = list_files(sub)
                        masks[sub.name] = [FileSource(f) for f in fs]
                        files += fs
                for f in files:
                    h.update(os.path.relpath(f, folder).encode())
                    h.update(Path(f).read_bytes())
                sums[kind + "/"] = h.hexdigest()
        return PatientData(case_id, str(folder), ct, masks, sums)

    return PatientRef(case_id, str(folder), open_)


def _patients_in_zip(path: Path) -> list[PatientRef]:
    outer = SafeZip(str(path), str(path))
    by_patient: dict[str, list] = {}
    for info in outer.infos:
        parts = info.filename.replace("\\", "/").split("/")
        for i, p in enumerate(parts[:-1]):
            if PATIENT_RE.match(p):
                by_patient.setdefault("/".join(parts[: i + 1]), []).append(info)
                break
    if not by_patient:
        raise ArchiveError(f"{path}: no 3Dircadb1.N patient folder inside the archive")
    refs = []
    for prefix, infos in sorted(by_patient.items(), key=lambda kv: (patient_order(kv[0].split("/")[-1]), kv[0])):
        case_id = prefix.split("/")[-1]
        depth = prefix.count("/") + 1

        def open_(infos=infos, case_id=case_id, depth=depth, prefix=prefix) -> PatientData:
            ct: list[Source] = []
            masks: dict[str, list[Source]] = {}
            sums: dict[str, str] = {}
            loose = []
            for info in infos:
                rel = info.filename.replace("\\", "/").split("/")[depth:]
                if len(rel) == 1 and rel[0].upper() in ("PATIENT_DICOM.ZIP", "MASKS_DICOM.ZIP"):
                    inner = outer.open_inner(info)
                    sums[rel[0]] = _sha(inner.source)  # type: ignore[arg-type]
                    c, m = _split_members(inner)
                    ct += c
                    for k, v in m.items():
                        masks.setdefault(k, []).extend(v)
                elif rel and rel[0].upper() in ("PATIENT_DICOM", "MASKS_DICOM"):
                    loose.append(info)
            if loose:
                sub = _LooseMembers(outer, loose)
                c, m = _split_members(sub, 0)  # type: ignore[arg-type]
                ct += c
                for k, v in m.items():
                    masks.setdefault(k, []).extend(v)
                h = hashlib.sha256()
                for info in loose:
                    h.update(f"{info.filename}:{info.CRC}:{info.file_size}".encode())
                sums[f"{prefix}/ (CRC32 digest)"] = h.hexdigest()
            return PatientData(case_id, f"{path}::{prefix}", ct, masks, sums)

        refs.append(PatientRef(case_id, f"{path}::{prefix}", open_))
    return refs


class _LooseMembers:
    """A view of some members of an outer archive, shaped like SafeZip for _split_members."""

    def __init__(self, outer: SafeZip, infos):
        self.outer, self.infos, self.name = outer, [i for i in infos if not i.is_dir()], outer.name

    def read(self, info):
        return self.outer.read(info)

    def open_inner(self, info):
        return self.outer.open_inner(info)


def find_patients(src: str | os.PathLike) -> list[PatientRef]:
    """The patients in a 3D-IRCADb-01 source (archive, folder of patients, or one patient)."""
    path = Path(src)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file():
        return _patients_in_zip(path)
    names = {p.name.upper() for p in path.iterdir()}
    if names & {"PATIENT_DICOM.ZIP", "PATIENT_DICOM", "MASKS_DICOM.ZIP", "MASKS_DICOM"}:
        m = PATIENT_RE.match(path.name)
        case_id = path.name if m else re.sub(r"[^A-Za-z0-9._-]", "_", path.name).strip("._-") or "case"
        return [_patient_from_folder(path, case_id)]
    found = sorted({p for pattern in ("3Dircadb1.*", "phantom-s*") for p in path.rglob(pattern)
                    if p.is_dir() and PATIENT_RE.match(p.name)}, key=lambda p: (patient_order(p.name), str(p)))
    if not found:
        zips = sorted(path.glob("*.zip"))
        if len(zips) == 1:
            return _patients_in_zip(zips[0])
        raise DatasetError(f"{path}: no 3D-IRCADb-01 patient found (expected 3Dircadb1.N folders, "
                           f"PATIENT_DICOM.zip, or the 3Dircadb1.zip archive)")
    return [_patient_from_folder(p, p.name) for p in found]


def _reference(p: PatientData, cancel: CancelToken | None):
    """(volume, geometry) of the grid the masks are mapped onto: the CT, else the liver mask series."""
    if p.ct:
        sources, what = p.ct, "PATIENT_DICOM"
    else:
        livers = [k for k in p.masks if structure_kind(k) == "liver"]
        if not livers:
            raise DatasetError(f"{p.name}: no PATIENT_DICOM slices and no liver mask in MASKS_DICOM")
        sources, what = p.masks[livers[0]], f"MASKS_DICOM/{livers[0]}"
    headers, skipped = read_headers(sources, cancel=cancel)
    info = select_series(group_headers(headers, skipped, f"{p.name}/{what}"), None, f"{p.name}/{what}")
    vol = load_info(info, cancel=cancel, where=f"{p.name}/{what}")
    return vol, compute_geometry(list(info.headers))


def build_case(p: PatientData, progress: ProgressFn | None = None,
               cancel: CancelToken | None = None) -> Case:
    """Load a patient's CT (when there is one) and masks into a :class:`Case`."""
    if not p.ct and not p.masks:
        raise DatasetError(f"{p.name}: no PATIENT_DICOM slices")
    vol, geo = _reference(p, cancel)
    normal = geo.direction[:, 2]
    by_pos = {round(float(np.dot(normal, h.ipp)), 1): z for z, h in enumerate(geo.slices) if h.ipp is not None}
    by_name = {os.path.basename(h.name.split("::")[-1]): z for z, h in enumerate(geo.slices)}
    shape = vol.hu.shape
    codes: dict[int, np.ndarray] = {}
    scratch = np.empty(shape[1:], dtype=np.int16)
    total = sum(len(v) for v in p.masks.values())
    done = 0
    for structure, sources in sorted(p.masks.items()):
        code = anatomy.structure_code(structure)
        mask = codes.setdefault(code, np.zeros(shape, dtype=bool))
        for src in sources:
            check(cancel)
            h = read_header(src)
            done += 1
            report(progress, "masks", done, total)
            if isinstance(h, str):
                log.info("skipped mask file %s: %s", src.name, h)
                continue
            check_slice(h)
            if (h.rows, h.cols) != shape[1:]:
                raise DicomError(f"{h.name}: mask is {h.rows} x {h.cols}, CT is {shape[2]} x {shape[1]}")
            z = by_pos.get(round(float(np.dot(normal, h.ipp)), 1)) if h.ipp is not None else None
            if z is None:
                z = by_name.get(os.path.basename(h.name.split("::")[-1]))
            if z is None:
                raise DicomError(f"{h.name}: mask slice matches no CT slice (by position or by file name)")
            read_into(h, scratch)
            mask[z] |= scratch > 0
    if anatomy.LIVER not in codes:
        raise DatasetError(f"{p.name}: no liver mask in MASKS_DICOM")
    tumour = codes.get(anatomy.TUMOUR, np.zeros(shape, bool))
    label = codes[anatomy.LIVER].astype(np.uint8)
    outside = int(np.count_nonzero(tumour & (label == 0)))
    label[tumour] = TUMOUR
    anat = anatomy.paint(codes, shape)
    meta = {"source": p.name, "source_sha256": p.checksums, "series_uid": vol.meta.series_uid,
            "mask_structures": sorted(p.masks), "tumour_voxels_outside_liver": outside,
            "warnings": list(vol.warnings), "imported": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if not p.ct:
        meta["kind"] = "labelmap"
        meta["note"] = "expert label map without its CT: used only to render training CT (core.synthetic.synth_ct)"
    if outside:
        log.warning("%s: %d tumour voxels lie outside the liver mask", p.name, outside)
    return Case(p.case_id, vol.hu if p.ct else None, label, vol.spacing, vol.origin, vol.direction, meta, anat)


def import_ircadb(src: str | os.PathLike, out: str | os.PathLike, progress: ProgressFn | None = None,
                  cancel: CancelToken | None = None, force: bool = False) -> list[str]:
    """Import every patient of ``src`` into the dataset folder ``out``.

    A patient already in ``out`` from the same source files (same checksums)
    is skipped unless ``force``, so an interrupted import resumes. A case of the same name that
    came from another source (a phantom ``3Dircadb1.7`` of an older version, another download)
    is never replaced without ``force``: the import is refused before anything is written.

    Returns:
        The case ids imported or already present.

    Raises:
        ArchiveError, DicomError, DatasetError: one line naming the file and the problem.
    """
    out = Path(out)
    src_path = Path(src).resolve()
    if src_path.is_dir() and (out.resolve() == src_path or src_path in out.resolve().parents):
        raise DatasetError(f"{out}: the dataset folder must not be inside the source folder {src_path}")
    refs = find_patients(src)
    existing = read_manifest(out)["cases"] if out.exists() else {}
    if not force:  # before anything is written: never replace a case that came from elsewhere
        refuse_replacing(out, [(ref.case_id, ref.name) for ref in refs])
    ids = []
    for i, ref in enumerate(refs):
        check(cancel)
        report(progress, "import", i, len(refs), ref.case_id)
        data = ref.open()
        prev = existing.get(ref.case_id)
        if prev and not force and prev.get("source_sha256") == data.checksums and (out / prev["file"]).exists():
            log.info("%s: already imported, skipped", ref.case_id)
        else:
            write_case(out, build_case(data, progress, cancel))
        ids.append(ref.case_id)
    report(progress, "import", len(refs), len(refs))
    return ids
