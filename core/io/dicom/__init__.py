"""DICOM series discovery and loading.

Public API:
    scan(path) -> list[SeriesInfo]
    load_series(path, series_uid=None) -> Volume
"""

from ...runtime.errors import DicomError
from .load import load_info, load_series, select_series
from .scan import scan
from .types import ScanResult, SeriesInfo, SeriesMeta, Volume

__all__ = ["DicomError", "ScanResult", "SeriesInfo", "SeriesMeta", "Volume", "load_info", "load_series",
           "scan", "select_series"]
