"""Pixel checks and decoding straight into a preallocated int16 HU volume."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pydicom
from pydicom.uid import UID

from ...runtime.errors import DicomError, one_line
from .headers import SliceHeader

MAX_DIM = 8192  # rows/columns above this are refused as absurd
INT16_MIN, INT16_MAX = -32768, 32767


def memory_budget() -> int:
    """Bytes one volume may take: half the physical memory, at most 16 GiB."""
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        phys = 8 << 30
    return int(min(phys // 2, 16 << 30))


def ts_name(uid: str) -> str:
    try:
        return UID(uid).name or uid
    except Exception:
        return uid


def native_bytes(h: SliceHeader) -> int:
    return h.rows * h.cols * (h.bits_allocated // 8)


def check_slice(h: SliceHeader) -> None:
    """Refuse a slice that cannot be a CT image, before any pixel is allocated."""
    if not (0 < h.rows <= MAX_DIM and 0 < h.cols <= MAX_DIM):
        raise DicomError(f"{h.name}: header claims {h.rows} x {h.cols} pixels (absurd dimensions)")
    if h.samples != 1 or not h.photometric.startswith("MONOCHROME"):
        raise DicomError(f"{h.name}: colour image ({h.photometric}, {h.samples} samples per pixel), not a CT slice")
    if h.n_frames != 1:
        raise DicomError(f"{h.name}: multi-frame image ({h.n_frames} frames); enhanced multi-frame CT is not supported")
    if h.bits_allocated not in (8, 16, 32) or not (0 < h.bits_stored <= h.bits_allocated):
        raise DicomError(f"{h.name}: unsupported pixel format "
                         f"(BitsAllocated {h.bits_allocated}, BitsStored {h.bits_stored})")
    if not h.has_pixels:
        raise DicomError(f"{h.name}: missing pixel data")
    if h.pixel_length is not None and not h.encapsulated:
        need = native_bytes(h)
        if h.pixel_length < need:
            raise DicomError(f"{h.name}: truncated pixel data ({h.pixel_length} bytes, expected {need})")
        if h.pixel_offset is not None and h.pixel_offset + need > h.source.size():
            have = max(0, h.source.size() - h.pixel_offset)
            raise DicomError(f"{h.name}: truncated pixel data (file holds {have} of {need} bytes)")


def _raw_dtype(h: SliceHeader) -> np.dtype:
    kind = "i" if h.pixel_rep == 1 else "u"
    return np.dtype(f"{'<' if h.little_endian else '>'}{kind}{h.bits_allocated // 8}")


def _to_hu(raw: np.ndarray, h: SliceHeader, out: np.ndarray, fix_bits: bool) -> None:
    """Apply bit masking, sign extension and rescale; write int16 HU into ``out``."""
    raw = raw.astype(raw.dtype.newbyteorder("="), copy=False)
    if fix_bits and h.bits_stored < h.bits_allocated:
        if h.pixel_rep == 1:
            shift = h.bits_allocated - h.bits_stored
            raw = (raw << shift) >> shift
        else:
            raw = raw & ((1 << h.bits_stored) - 1)
    slope, icpt = h.slope, h.intercept
    if slope == 1.0 and float(icpt).is_integer():
        if raw.dtype == np.int16 and icpt == 0:
            np.copyto(out, raw)
            return
        tmp = raw.astype(np.int32)
        if icpt:
            tmp += int(icpt)
    else:
        tmp = np.rint(raw.astype(np.float32) * np.float32(slope) + np.float32(icpt))
    np.clip(tmp, INT16_MIN, INT16_MAX, out=tmp)
    np.copyto(out, tmp, casting="unsafe")


def read_into(h: SliceHeader, out: np.ndarray) -> None:
    """Decode one slice's pixels into ``out`` (int16 [rows, cols]) in HU.

    Native (uncompressed) pixels are read straight from the recorded offset;
    encapsulated (compressed) ones go through pydicom's decoders (pylibjpeg,
    pyjpegls, RLE).

    Raises:
        DicomError: truncated, corrupt or undecodable pixel data.
    """
    if h.pixel_offset is not None and not h.encapsulated:
        need = native_bytes(h)
        dtype = _raw_dtype(h)
        direct = (dtype == np.dtype("<i2") and h.bits_stored == 16 and h.slope == 1.0 and h.intercept == 0.0
                  and out.flags.c_contiguous)
        buf = out if direct else np.empty((h.rows, h.cols), dtype=dtype)
        with h.source.open() as fh:
            fh.seek(h.pixel_offset)
            got = fh.readinto(buf.data.cast("B"))
        if got < need:
            raise DicomError(f"{h.name}: truncated pixel data (file holds {got} of {need} bytes)")
        if not direct:
            _to_hu(buf, h, out, fix_bits=True)
        return
    try:
        with h.source.open() as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fh, force=True)
            arr = ds.pixel_array
    except Exception as exc:  # decoders raise assorted types
        msg = one_line(exc, 160)
        if "missing" in msg.lower() and "plugin" in msg.lower() or "no pixel data decoders" in msg.lower():
            raise DicomError(f"{h.name}: no decoder installed for {ts_name(h.transfer_syntax)}") from None
        raise DicomError(f"{h.name}: corrupt {ts_name(h.transfer_syntax)} pixel data ({msg})") from None
    if arr.shape != (h.rows, h.cols):
        raise DicomError(f"{h.name}: decoded pixels have shape {arr.shape}, header says {h.rows} x {h.cols}")
    _to_hu(arr, h, out, fix_bits=False)
