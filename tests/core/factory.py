"""Small synthetic DICOM series for loader tests, with every oddity on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pydicom.filewriter
from pydicom.uid import ExplicitVRLittleEndian

from core.io.dicom.write import SeriesIds, ct_slice, make_uid


def hu_volume(n: int = 6, size: int = 32, seed: int = 0) -> np.ndarray:
    """A small int16 volume of plausible HU (-1024..1500)."""
    rng = np.random.default_rng(seed)
    v = rng.integers(-1024, 1500, size=(n, size, size)).astype(np.int16)
    v[:, :4, :] = -1024
    return v


def write_series(folder: Path, hu: np.ndarray | None = None, *, name: str = "s", uid_key: str = "a",
                 z_step: float = 2.5, z0: float = 0.0, positions: list | None = None,
                 unsigned: bool = False, slope: float = 1.0, transfer_syntax: str = ExplicitVRLittleEndian,
                 instance_numbers: bool = True, modality: str = "CT", ext: str = "",
                 orientation=(1, 0, 0, 0, 1, 0), tilt: float = 0.0, shuffle_names: bool = True,
                 acquisition: int | None = None) -> list[Path]:
    """Write ``hu`` ([Z, Y, X] int16) as a series; returns the file paths in z order. With
    ``acquisition`` the slices carry that AcquisitionNumber (and SOP UIDs of their own), so two
    calls with one ``uid_key`` store two acquisitions under one series UID."""
    hu = hu_volume() if hu is None else hu
    folder.mkdir(parents=True, exist_ok=True)
    ids = SeriesIds(make_uid("study", uid_key), make_uid("series", uid_key), make_uid("frame", uid_key))
    n = hu.shape[0]
    order = np.random.default_rng(1).permutation(n) if shuffle_names else np.arange(n)
    paths = []
    for k in range(n):
        intercept = -1024.0 if unsigned else 0.0
        stored = np.rint((hu[k].astype(np.float64) - intercept) / slope)
        stored = stored.astype(np.uint16 if unsigned else np.int16)
        pos = positions[k] if positions is not None else (0.0, 0.0, z0 + k * z_step)
        ds = ct_slice(stored, ids, k, pos, (0.7, 0.7), abs(z_step), orientation=orientation, slope=slope,
                      intercept=intercept, modality=modality,
                      sop_uid=None if acquisition is None else make_uid("sop", f"{uid_key}-{acquisition}-{k}"))
        if acquisition is not None:
            ds.AcquisitionNumber = acquisition
        if tilt:
            ds.GantryDetectorTilt = tilt
        if not instance_numbers:
            del ds.InstanceNumber
        path = folder / f"{name}{order[k]:03d}{ext}"
        if transfer_syntax == pydicom.uid.ImplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = transfer_syntax
            ds.save_as(path, enforce_file_format=True, implicit_vr=True, little_endian=True)
        elif transfer_syntax == pydicom.uid.ExplicitVRBigEndian:
            ds.file_meta.TransferSyntaxUID = transfer_syntax
            arr = stored.astype(stored.dtype.newbyteorder(">"))
            ds.PixelData = arr.tobytes()
            pydicom.filewriter.dcmwrite(path, ds, implicit_vr=False, little_endian=False,
                                        force_encoding=True)
        elif transfer_syntax != ExplicitVRLittleEndian:
            ds.compress(transfer_syntax, stored)
            ds.save_as(path, enforce_file_format=True)
        else:
            ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def copy_with_mutation(files: list[Path], folder: Path, victim: int, flips=(), cut=None, patch=None) -> Path:
    """Copy ``files`` into ``folder`` and mutate one of them: ``patch(bytearray)`` first, then byte
    flips ``(position, value)`` (positions past the end ignored), then truncation to ``cut`` bytes."""
    import shutil
    for p in files:
        shutil.copy(p, folder / p.name)
    target = folder / files[victim].name
    data = bytearray(target.read_bytes())
    if patch is not None:
        patch(data)
    for pos, byte in flips:
        if pos < len(data):
            data[pos] = byte
    if cut is not None:
        data = data[:cut]
    target.write_bytes(bytes(data))
    return target
