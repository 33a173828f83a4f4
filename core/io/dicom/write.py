"""Building CT image slices as DICOM (for the phantom and for tests)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid


def make_uid(*parts: object) -> str:
    """A deterministic DICOM UID derived from ``parts``."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


@dataclass(frozen=True)
class SeriesIds:
    """The identifiers shared by every slice of one series."""

    study_uid: str
    series_uid: str
    frame_uid: str
    patient_name: str = "PHANTOM^CT"
    patient_id: str = "PHANTOM"
    study_date: str = "20260101"
    description: str = ""
    series_number: int = 1


def ct_slice(pixels: np.ndarray, ids: SeriesIds, index: int, position: tuple[float, float, float],
             pixel_spacing: tuple[float, float], slice_thickness: float, *,
             orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0), slope: float = 1.0, intercept: float = 0.0,
             modality: str = "CT", sop_uid: str | None = None, instance_number: int | None = None,
             window: tuple[float, float] | None = None) -> FileDataset:
    """One CT Image Storage slice holding ``pixels`` as stored values.

    Args:
        pixels: [rows, cols] array; uint8, uint16 or int16 (stored values,
            before rescale).
        ids: study/series/frame UIDs and patient fields.
        index: slice index (used for the SOP Instance UID and InstanceNumber).
        position: ImagePositionPatient (x, y, z) in mm.
        pixel_spacing: (row, column) spacing in mm.
        slice_thickness: mm.
    """
    pixels = np.ascontiguousarray(pixels)
    sop_uid = sop_uid or make_uid(ids.series_uid, "slice", index)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = ids.study_date
    ds.SeriesDate = ids.study_date
    ds.StudyTime = "120000"
    ds.Modality = modality
    ds.Manufacturer = "LiverSeg Studio phantom"
    ds.SeriesDescription = ids.description
    ds.PatientName = ids.patient_name
    ds.PatientID = ids.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.StudyInstanceUID = ids.study_uid
    ds.SeriesInstanceUID = ids.series_uid
    ds.FrameOfReferenceUID = ids.frame_uid
    ds.StudyID = "1"
    ds.SeriesNumber = ids.series_number
    ds.InstanceNumber = index + 1 if instance_number is None else instance_number
    ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
    ds.SliceThickness = f"{slice_thickness:.4f}"
    ds.PixelSpacing = [f"{pixel_spacing[0]:.6f}", f"{pixel_spacing[1]:.6f}"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.RescaleIntercept = f"{intercept:g}"
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleType = "HU"
    if window:
        ds.WindowCenter, ds.WindowWidth = f"{window[0]:g}", f"{window[1]:g}"
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
    return ds


def to_bytes(ds: FileDataset, **kwargs) -> bytes:
    """Serialise a dataset as a DICOM Part 10 file."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True, **kwargs)
    return buf.getvalue()
