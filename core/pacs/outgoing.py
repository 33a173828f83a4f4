"""The files a user sends to a PACS, read and checked before any connection is opened."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from ..runtime.errors import PacsError, one_line


def read_for_sending(paths: Sequence[Path]) -> list[Dataset]:
    """Each file as a dataset; a file that is not DICOM is refused by name."""
    datasets: list[Dataset] = []
    for p in paths:
        try:
            datasets.append(dcmread(str(p)))
        except Exception as exc:
            raise PacsError(f"{p}: not a DICOM file to send ({one_line(exc, 200)})") from None
    return datasets
