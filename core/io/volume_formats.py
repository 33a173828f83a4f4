"""NRRD (``.nrrd`` / ``.nhdr``) and MetaImage (``.mha`` / ``.mhd``) volumes, opened for :mod:`core.io.volume_file`.

Each opener reads only the header and returns a :class:`Source`: the file's array shape (its
three spatial axes first), its voxel -> world affine in RAS (the NIfTI convention, so the rest of
:func:`core.io.volume_file.read_volume_file` is the same for every format: reorientation, the
:class:`~core.io.volume_file.FileGrid` written back with each label) and a ``load`` that reads the
voxels in that (i, j, k) order.

* NRRD through pynrrd (raw, gzip, bzip2 and ASCII encodings, attached or detached data): the
  ``space`` (RAS, LAS or LPS, short or long names) says what ``space directions`` and ``space
  origin`` mean; a file without a space is taken as axis-aligned LPS, with a warning.
* MetaImage by a small reader of our own (ITK's convention: ``TransformMatrix`` holds the
  direction of each axis in LPS, one after the other; ``Offset`` the first voxel's centre): the
  element types MET_CHAR .. MET_DOUBLE in either byte order, zlib / gzip ``CompressedData``,
  ``ElementDataFile`` LOCAL or one file beside the header, ``HeaderSize`` (-1: the data ends
  the file). A per-slice file list is refused with a clear line.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nrrd
import numpy as np

from ..runtime.errors import VolumeFileError, one_line
from .dicom.geometry import LPS_FROM_RAS

NRRD_SUFFIXES = (".nrrd", ".nhdr")
META_SUFFIXES = (".mha", ".mhd")
NRRD_SPACES = {  # world axes of each space, as signs in LPS
    "left-posterior-superior": (1, 1, 1), "lps": (1, 1, 1),
    "right-anterior-superior": (-1, -1, 1), "ras": (-1, -1, 1),
    "left-anterior-superior": (1, -1, 1), "las": (1, -1, 1),
}
META_TYPES = {"MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2", "MET_INT": "i4",
              "MET_UINT": "u4", "MET_LONG": "i4", "MET_ULONG": "u4", "MET_LONG_LONG": "i8",
              "MET_ULONG_LONG": "u8", "MET_FLOAT": "f4", "MET_DOUBLE": "f8"}
META_FROM = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "I": (2, 1.0), "S": (2, -1.0)}
MAX_HEADER_LINES = 400


@dataclass
class Source:
    """A volume file opened (header read, voxels not yet).

    Attributes:
        kind: the format's name, for messages ("NRRD", "MetaImage", "NIfTI").
        shape: the array's shape, the three spatial axes first (further axes: components, time).
        affine: 4x4, (i, j, k) voxel index -> RAS mm.
        load: reads the voxels, an array of ``shape``.
        warnings: said about the header (an orientation assumed).
    """

    kind: str
    shape: tuple[int, ...]
    affine: np.ndarray
    load: Callable[[], np.ndarray]
    warnings: tuple[str, ...] = ()


def _refuse(path, why: str):
    return VolumeFileError(f"{path}: {why}")


def _affine_ras(directions_lps: np.ndarray, origin_lps) -> np.ndarray:
    """Columns: each spatial axis's step in LPS mm; -> the RAS affine."""
    a = np.eye(4)
    a[:3, :3] = directions_lps
    a[:3, 3] = origin_lps
    return LPS_FROM_RAS @ a


def _sizes(path, raw) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in raw)
    except (TypeError, ValueError):
        raise _refuse(path, f"unreadable sizes {raw!r}") from None
    if any(s < 1 for s in sizes) or any(s > 1 << 20 for s in sizes):
        raise _refuse(path, f"absurd size {' x '.join(map(str, sizes))}")
    return sizes


# -- NRRD ---------------------------------------------------------------------

def open_nrrd(path: Path) -> Source:
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if not magic.startswith(b"NRRD000"):
        raise _refuse(path, "not a NRRD volume (no NRRD magic line)")
    try:
        header = nrrd.read_header(str(path))
    except Exception as exc:
        raise _refuse(path, f"not a readable NRRD header ({one_line(exc, 100)})") from None
    sizes = _sizes(path, header.get("sizes", ()))
    if len(sizes) < 3:
        raise _refuse(path, f"a 2D image ({' x '.join(map(str, sizes))}); a CT volume has at least 2 slices")
    warnings: list[str] = []
    data_file = header.get("data file", header.get("datafile"))
    if data_file is not None:
        parts = str(data_file).split()
        if parts[0].upper() == "LIST" or len(parts) > 1:
            raise _refuse(path, f"data file {data_file!r}: data split over several files is not supported")
        target = Path(parts[0]) if Path(parts[0]).is_absolute() else path.parent / parts[0]
        if not target.is_file():
            raise _refuse(path, f"data file {target} not found")
    elif path.suffix.lower() == ".nhdr":
        raise _refuse(path, "a detached NRRD header (.nhdr) without a 'data file' field")
    space = str(header.get("space", "")).lower()
    dirs = header.get("space directions")
    if space and space not in NRRD_SPACES:
        if space.endswith(("-time", "t")):
            raise _refuse(path, f"space {header['space']!r}: a time series, more than one volume")
        warnings.append(f"space {header['space']!r} names no anatomical orientation; taken as LPS")
    signs = np.array(NRRD_SPACES.get(space, (1, 1, 1)), float)
    if dirs is not None:
        dirs = np.asarray(dirs, float)
        if dirs.ndim != 2 or dirs.shape[1] != 3 or len(dirs) != len(sizes):
            raise _refuse(path, f"space directions of shape {dirs.shape} for {len(sizes)} axes in a 3D space")
        spatial = [i for i in range(len(sizes)) if np.isfinite(dirs[i]).all()]
        steps = [dirs[i] * signs for i in spatial]
        origin = np.asarray(header.get("space origin", np.zeros(3)), float).reshape(-1)
        origin = origin * signs if origin.shape == (3,) else np.full(3, np.nan)
        if not space:
            warnings.append("no space field: the orientation is not known; taken as LPS")
    else:
        kinds = [str(k).lower() for k in header.get("kinds", ["domain"] * len(sizes))]
        spatial = [i for i, k in enumerate(kinds) if k in ("domain", "space", "???", "none")]
        spacings = np.asarray(header.get("spacings", [1.0] * len(sizes)), float)
        steps = [np.eye(3)[k % 3] * (spacings[i] if np.isfinite(spacings[i]) and spacings[i] > 0 else 1.0)
                 for k, i in enumerate(spatial)]
        origin = np.zeros(3)
        warnings.append("no space directions: the orientation is not known; taken as axis-aligned LPS")
    if len(spatial) < 3:
        raise _refuse(path, f"a 2D image ({' x '.join(str(sizes[i]) for i in spatial)}); "
                            f"a CT volume has at least 2 slices")
    if len(spatial) > 3:
        raise _refuse(path, f"{len(spatial)} spatial axes ({' x '.join(map(str, sizes))}); a CT volume has 3")
    other = [i for i in range(len(sizes)) if i not in spatial]
    order = spatial + other
    affine = _affine_ras(np.stack(steps, axis=1), origin if np.isfinite(origin).all() else np.zeros(3))

    def load() -> np.ndarray:
        data, _ = nrrd.read(str(path), index_order="F")
        return np.transpose(data, order) if order != list(range(len(order))) else data

    return Source("NRRD", tuple(sizes[i] for i in order), affine, load, tuple(warnings))


# -- MetaImage ----------------------------------------------------------------

def _meta_header(path: Path) -> tuple[dict[str, str], int]:
    """The header's ``Key = Value`` fields (keys lower-cased) and the offset just after it."""
    fields: dict[str, str] = {}
    with open(path, "rb") as fh:
        for n in range(MAX_HEADER_LINES):
            line = fh.readline(4096)
            if not line:
                break
            text = line.decode("latin-1").strip()
            if not text:
                continue
            key, eq, value = text.partition("=")
            if not eq or not key.strip().replace("_", "").isalnum():
                raise _refuse(path, "not a MetaImage volume (no 'Key = Value' header)" if n == 0 else
                                    f"not a MetaImage volume (header line {n + 1} is not 'Key = Value')")
            fields[key.strip().lower()] = value.strip()
            if key.strip().lower() == "elementdatafile":
                return fields, fh.tell()
    raise _refuse(path, "not a MetaImage volume (no ElementDataFile line ending the header)")


def _floats(path, fields, keys, n, default):
    for k in keys:
        if k in fields:
            try:
                vals = [float(v) for v in fields[k].split()]
            except ValueError:
                raise _refuse(path, f"unreadable {k} {fields[k]!r}") from None
            if len(vals) < n or not all(math.isfinite(v) for v in vals):
                raise _refuse(path, f"unreadable {k} {fields[k]!r} (expected {n} numbers)")
            return np.array(vals[:n])
    return np.asarray(default, float)


def _true(fields, *keys) -> bool:
    return any(fields.get(k, "").lower() in ("true", "1") for k in keys)


def open_metaimage(path: Path) -> Source:
    fields, offset = _meta_header(path)
    if fields.get("objecttype", "image").lower() != "image":
        raise _refuse(path, f"a MetaImage {fields['objecttype']}, not an image")
    try:
        ndims = int(fields["ndims"])
    except (KeyError, ValueError):
        raise _refuse(path, f"not a MetaImage volume (NDims {fields.get('ndims', 'missing')})") from None
    if ndims < 2:
        raise _refuse(path, f"{ndims}D data (NDims = {ndims}), not a volume")
    sizes = _sizes(path, fields.get("dimsize", "").split())
    if len(sizes) != ndims:
        raise _refuse(path, f"DimSize {fields.get('dimsize', '')!r} does not match NDims = {ndims}")
    etype = fields.get("elementtype", "").upper()
    if etype not in META_TYPES:
        raise _refuse(path, f"unsupported element type {etype or 'missing'} (supported: {', '.join(META_TYPES)})")
    channels = fields.get("elementnumberofchannels", "1").strip() or "1"
    if channels != "1":
        raise _refuse(path, f"{channels} components per voxel (colour or vector), not CT intensities")
    dtype = np.dtype((">" if _true(fields, "binarydatabyteordermsb", "elementbyteordermsb") else "<")
                     + META_TYPES[etype])
    nd = min(ndims, 3)
    spacing = _floats(path, fields, ("elementspacing", "elementsize"), nd, [1.0] * nd)
    if (spacing <= 0).any():
        raise _refuse(path, f"element spacing {' '.join(f'{s:g}' for s in spacing)}: not positive")
    origin = _floats(path, fields, ("offset", "position", "origin"), nd, [0.0] * nd)
    matrix = _floats(path, fields, ("transformmatrix", "rotation", "orientation"), ndims * ndims, [])
    warnings: list[str] = []
    if matrix.size:
        axes = matrix.reshape(ndims, ndims)[:nd, :nd]  # row a: axis a's direction (ITK: columns of Direction)
    else:
        axes = _from_anatomical(path, fields.get("anatomicalorientation", ""), nd)
    steps = np.zeros((3, 3))
    steps[:nd, :nd] = axes.T * spacing[None, :]
    origin3 = np.zeros(3)
    origin3[:nd] = origin
    data_file = fields["elementdatafile"]
    if data_file.upper() == "LIST" or len(data_file.split()) > 1:
        raise _refuse(path, f"ElementDataFile = {data_file}: one file per slice is not supported "
                            f"(save it as one .mha / .mhd volume)")
    if data_file.upper() == "LOCAL":
        target = path
    else:
        target = Path(data_file) if Path(data_file).is_absolute() else path.parent / data_file
        offset = 0
        if not target.is_file():
            raise _refuse(path, f"data file {target} not found")
    count = int(np.prod(sizes))
    binary = "binarydata" not in fields or _true(fields, "binarydata")

    def load() -> np.ndarray:
        if binary:
            flat = np.frombuffer(_meta_bytes(path, target, offset, fields, count * dtype.itemsize), dtype, count)
        else:
            with open(target, "rb") as fh:
                fh.seek(offset)
                words = fh.read().decode("latin-1").split()
            if len(words) < count:
                raise _refuse(path, f"truncated voxel data ({len(words)} of {count} values)")
            flat = np.array(words[:count], float).astype(dtype.newbyteorder("="))
        return flat.reshape(sizes, order="F")

    return Source("MetaImage", sizes, _affine_ras(steps, origin3), load, tuple(warnings))


def _from_anatomical(path, code: str, nd: int) -> np.ndarray:
    """Rows: each axis's LPS direction from an ITK orientation code (``RAI``: the axes run from the
    patient's right, anterior, inferior, i.e. the identity)."""
    code = code.strip().upper()
    if len(code) < nd or "?" in code[:nd]:
        return np.eye(nd)
    rows = np.zeros((nd, nd))
    for a, letter in enumerate(code[:nd]):
        if letter not in META_FROM or META_FROM[letter][0] >= nd:
            raise _refuse(path, f"unreadable AnatomicalOrientation {code!r}")
        rows[a, META_FROM[letter][0]] = META_FROM[letter][1]
    if abs(np.linalg.det(rows)) < 0.5:
        raise _refuse(path, f"AnatomicalOrientation {code!r} names one direction twice")
    return rows


def _meta_bytes(path: Path, target: Path, offset: int, fields: dict, need: int) -> bytes:
    try:
        skip = int(fields.get("headersize", "0") or 0)
    except ValueError:
        raise _refuse(path, f"unreadable HeaderSize {fields['headersize']!r}") from None
    with open(target, "rb") as fh:
        if _true(fields, "compresseddata"):
            fh.seek(offset)
            stream = zlib.decompressobj(47)  # zlib or gzip header, as MetaIO writes and reads
            try:
                raw = stream.decompress(fh.read(), need + 1)
            except zlib.error as exc:
                raise _refuse(path, f"corrupt compressed voxel data ({exc})") from None
        else:
            size = target.stat().st_size
            start = size - need if skip == -1 else offset + max(skip, 0)
            fh.seek(max(start, 0))
            raw = fh.read(need)
    if len(raw) < need:
        raise _refuse(path, f"truncated voxel data ({len(raw)} of {need} bytes)")
    return raw
