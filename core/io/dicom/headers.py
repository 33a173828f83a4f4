"""Reading one DICOM file's header (never its pixels) into a :class:`SliceHeader`.

Files are read with ``stop_before_pixels``; the position and length of the
Pixel Data element are recorded so that the loader can later read native
pixels straight into its preallocated volume without parsing the file again.
"""

from __future__ import annotations

import builtins
import io
import logging
import os
import struct
import warnings
from dataclasses import dataclass
from typing import cast

import pydicom
from pydicom.uid import UID

from ...runtime.errors import one_line

log = logging.getLogger(__name__)

DICOMDIR_UID = "1.2.840.10008.1.3.10"
# SOP classes that carry no CT slice even when they have Rows/Columns.
NON_IMAGE_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # structured reports
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, spatial registration, segmentation, fiducials
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated PDF/CDA
    "1.2.840.10008.5.1.4.1.1.481.",  # RT objects
    "1.2.840.10008.5.1.4.1.1.9.",  # waveforms
)
PIXEL_DATA = (0x7FE0, 0x0010)
UNDEFINED = 0xFFFFFFFF
LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UN", b"UC", b"UR", b"UT"}


@dataclass(frozen=True)
class FileSource:
    """A DICOM file on disk."""

    path: str

    @property
    def name(self) -> str:
        return self.path

    def open(self) -> io.BufferedIOBase:
        return open(self.path, "rb")

    def size(self) -> int:
        return os.path.getsize(self.path)


@dataclass(frozen=True)
class BytesSource:
    """A DICOM file held in memory (for example a member of a zip archive)."""

    name: str
    data: bytes

    def open(self) -> io.BufferedIOBase:
        return io.BytesIO(self.data)

    def size(self) -> int:
        return len(self.data)


Source = FileSource | BytesSource


@dataclass(frozen=True)
class SliceHeader:
    """What the loader needs from one image file, read without its pixels."""

    source: Source
    sop_uid: str
    sop_class: str
    series_uid: str
    study_uid: str
    frame_uid: str
    modality: str
    rows: int
    cols: int
    samples: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_rep: int
    n_frames: int
    transfer_syntax: str
    little_endian: bool
    ipp: tuple[float, float, float] | None
    iop: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    instance_number: int | None
    slope: float
    intercept: float
    gantry_tilt: float
    pixel_offset: int | None  # file offset of the Pixel Data value (None: unknown)
    pixel_length: int | None  # its length in bytes; UNDEFINED when encapsulated
    has_pixels: bool
    description: str = ""
    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    manufacturer: str = ""
    window: tuple[float, float] | None = None
    acquisition: int | None = None  # AcquisitionNumber: tells apart two phases stored in one series

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def encapsulated(self) -> bool:
        return self.pixel_length == UNDEFINED

    def normal(self) -> tuple[float, float, float] | None:
        if self.iop is None:
            return None
        r, c = self.iop[:3], self.iop[3:]
        n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
        return n


# Tags read from every header. Values are decoded here from pydicom's raw
# elements (``Dataset.get_item``), which is several times faster than letting
# pydicom build a DataElement for each access; malformed values read as absent.
TAGS = {
    "SOPClassUID": 0x00080016, "SOPInstanceUID": 0x00080018, "StudyDate": 0x00080020,
    "Modality": 0x00080060, "Manufacturer": 0x00080070, "SeriesDescription": 0x0008103E,
    "PatientName": 0x00100010, "PatientID": 0x00100020, "SliceThickness": 0x00180050,
    "GantryDetectorTilt": 0x00181120, "StudyInstanceUID": 0x0020000D, "SeriesInstanceUID": 0x0020000E,
    "AcquisitionNumber": 0x00200012, "InstanceNumber": 0x00200013, "ImagePositionPatient": 0x00200032,
    "ImageOrientationPatient": 0x00200037,
    "FrameOfReferenceUID": 0x00200052, "SamplesPerPixel": 0x00280002, "PhotometricInterpretation": 0x00280004,
    "NumberOfFrames": 0x00280008, "Rows": 0x00280010, "Columns": 0x00280011, "PixelSpacing": 0x00280030,
    "BitsAllocated": 0x00280100, "BitsStored": 0x00280101, "PixelRepresentation": 0x00280103,
    "WindowCenter": 0x00281050, "WindowWidth": 0x00281051, "RescaleIntercept": 0x00281052,
    "RescaleSlope": 0x00281053,
}
US_TAGS = {0x00280002, 0x00280010, 0x00280011, 0x00280100, 0x00280101, 0x00280103}


class _Reader:
    """Typed access to a header's values from its raw elements."""

    def __init__(self, ds, little: bool):
        self.ds = ds
        self.little = little

    def raw(self, keyword: str):
        tag = TAGS[keyword]
        try:
            elem = self.ds.get_item(tag)
        except Exception:
            return None
        if elem is None:
            return None
        value = elem.value
        if value is None:
            return None
        if isinstance(value, (bytes, bytearray)):
            if tag in US_TAGS:
                if len(value) < 2:
                    return None
                return int.from_bytes(value[:2], "little" if self.little else "big")
            return value.decode("latin-1", "replace").strip("\x00 ")
        return value  # already converted by pydicom

    def str(self, keyword: str) -> str:
        v = self.raw(keyword)
        if v is None:
            return ""
        if isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
            v = "\\".join(str(x) for x in v)
        return one_line(v, 200)

    def floats(self, keyword: builtins.str, n: int) -> tuple[float, ...] | None:
        v = self.raw(keyword)
        if v is None or v == "":
            return None
        try:
            if isinstance(v, str):
                parts = v.split("\\")
            elif isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
                parts = list(v)
            else:
                parts = [v]
            vals = tuple(float(x) for x in parts)
        except (TypeError, ValueError, OverflowError):
            return None
        if len(vals) < n or any(x != x or abs(x) > 1e7 for x in vals):
            return None
        return vals[:n]

    def float(self, keyword: builtins.str, default: float | None) -> float | None:
        v = self.floats(keyword, 1)
        return v[0] if v else default

    def int(self, keyword: builtins.str, default: int | None) -> int | None:
        v = self.raw(keyword)
        if isinstance(v, int):
            return v
        f = self.floats(keyword, 1)
        if f is None or not float(f[0]).is_integer():
            return default
        return int(f[0])


def _looks_like_dicom(head: bytes) -> tuple[bool, bool]:
    """(is DICOM, has preamble) from the first 132 bytes."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True, True
    if len(head) >= 8:
        group_le = int.from_bytes(head[0:2], "little")
        group_be = int.from_bytes(head[0:2], "big")
        if group_le in (0x0002, 0x0008) or group_be == 0x0008:
            return True, False
    return False, False


def _pixel_element(fh: io.BufferedIOBase, implicit: bool, little: bool) -> tuple[bool, int | None, int | None]:
    """Parse the element at the file position: (is Pixel Data, value offset, length)."""
    start = fh.tell()
    head = fh.read(8)
    if len(head) < 8:
        return False, None, None
    e = "<" if little else ">"
    group, elem = struct.unpack(e + "HH", head[:4])
    if (group, elem) != PIXEL_DATA:
        return False, None, None
    if implicit:
        return True, start + 8, struct.unpack(e + "I", head[4:8])[0]
    if head[4:6] in LONG_VRS:
        more = fh.read(4)
        if len(more) < 4:
            return True, None, 0
        return True, start + 12, struct.unpack(e + "I", more)[0]
    return True, start + 8, struct.unpack(e + "H", head[6:8])[0]


def read_header(src: Source) -> SliceHeader | str:
    """Read one file's header.

    Returns:
        A :class:`SliceHeader` for an image file, or a one-line reason why the
        file was skipped (not DICOM, DICOMDIR, not an image, unreadable header).
    """
    try:
        return _read_header(src)
    except (OSError, EOFError) as exc:
        return f"unreadable file: {one_line(exc, 120)}"
    except Exception as exc:  # malformed values surface lazily, from any pydicom accessor
        return f"corrupt DICOM header: {one_line(exc, 120)}"


def _read_header(src: Source) -> SliceHeader | str:
    """Read one file's header (may raise on malformed files; see :func:`read_header`).

    Returns:
        A :class:`SliceHeader` for an image file, or a one-line reason why the
        file was skipped (not DICOM, DICOMDIR, not an image, unreadable header).
    """
    try:
        with src.open() as fh:
            is_dicom, preamble = _looks_like_dicom(fh.read(132))
            if not is_dicom:
                return "not a DICOM file"
            fh.seek(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(fh, stop_before_pixels=True, force=not preamble)
            implicit, little = ds.original_encoding
            if implicit is None or little is None:
                implicit, little = True, True
            ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
            deflated = ts == pydicom.uid.DeflatedExplicitVRLittleEndian
            if deflated:
                with src.open() as fh2:
                    has_px = "PixelData" in pydicom.dcmread(fh2, force=True)
                offset, length = None, None
            else:
                has_px, offset, length = _pixel_element(fh, bool(implicit), bool(little))
    except (OSError, EOFError) as exc:
        return f"unreadable file: {one_line(exc, 120)}"
    except Exception as exc:  # pydicom raises many types on malformed headers
        return f"corrupt DICOM header: {one_line(exc, 120)}"

    r = _Reader(ds, bool(little))
    media_class = str(getattr(ds.file_meta, "MediaStorageSOPClassUID", "") or "")
    sop_class = r.str("SOPClassUID") or media_class
    if media_class == DICOMDIR_UID or sop_class == DICOMDIR_UID or 0x00041220 in ds:
        return "DICOMDIR (a directory index, not an image)"
    if sop_class.startswith(NON_IMAGE_PREFIXES):
        try:
            kind = UID(sop_class).name
        except Exception:
            kind = sop_class
        return f"not an image ({kind})"
    rows, cols = r.int("Rows", None), r.int("Columns", None)
    if rows is None or cols is None:
        return "not an image (no Rows/Columns)"
    if not ts:
        ts = pydicom.uid.ImplicitVRLittleEndian if implicit else (
            pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian)
    wc, ww = r.float("WindowCenter", None), r.float("WindowWidth", None)
    return SliceHeader(
        source=src,
        sop_uid=r.str("SOPInstanceUID"),
        sop_class=sop_class,
        series_uid=r.str("SeriesInstanceUID"),
        study_uid=r.str("StudyInstanceUID"),
        frame_uid=r.str("FrameOfReferenceUID"),
        modality=r.str("Modality").upper(),
        rows=rows,
        cols=cols,
        samples=r.int("SamplesPerPixel", 1) or 1,
        photometric=r.str("PhotometricInterpretation").upper() or "MONOCHROME2",
        bits_allocated=r.int("BitsAllocated", 16) or 0,
        bits_stored=r.int("BitsStored", None) or r.int("BitsAllocated", 16) or 0,
        pixel_rep=r.int("PixelRepresentation", 0) or 0,
        n_frames=r.int("NumberOfFrames", 1) or 1,
        transfer_syntax=ts,
        little_endian=bool(little),
        ipp=cast("tuple[float, float, float] | None", r.floats("ImagePositionPatient", 3)),
        iop=r.floats("ImageOrientationPatient", 6),
        pixel_spacing=cast("tuple[float, float] | None", r.floats("PixelSpacing", 2)),
        slice_thickness=r.float("SliceThickness", None),
        instance_number=r.int("InstanceNumber", None),
        slope=r.float("RescaleSlope", 1.0) or 1.0,
        intercept=r.float("RescaleIntercept", 0.0) or 0.0,
        gantry_tilt=r.float("GantryDetectorTilt", 0.0) or 0.0,
        pixel_offset=offset,
        pixel_length=length,
        has_pixels=bool(has_px) and length != 0,
        description=r.str("SeriesDescription"),
        patient_name=r.str("PatientName"),
        patient_id=r.str("PatientID"),
        study_date=r.str("StudyDate"),
        manufacturer=r.str("Manufacturer"),
        window=(wc, ww) if wc is not None and ww else None,
        acquisition=r.int("AcquisitionNumber", None),
    )
