"""The one error hierarchy of ``core``.

Every refusal the user can cause (a bad folder, a broken file, a hostile
archive) is raised as a subclass of :class:`LiverSegError` whose message is a
single line naming the file or folder and the problem. The GUI shows it in a
dialog; the CLI prints it to stderr and exits 2.
"""

from __future__ import annotations


def one_line(text: object, limit: int = 300) -> str:
    """Collapse any text (an exception message, say) into one short line."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


class LiverSegError(Exception):
    """Base of every error ``core`` raises on purpose. Its message is one line."""

    def __init__(self, message: str):
        super().__init__(one_line(message, limit=1000))


class DicomError(LiverSegError):
    """A DICOM folder or file cannot be loaded as a CT volume."""


class ArchiveError(LiverSegError):
    """An archive (zip) is malformed or hostile (traversal, bomb, nesting)."""


class DatasetError(LiverSegError):
    """A dataset folder or case file is missing, corrupt or inconsistent."""


class VolumeFileError(LiverSegError):
    """A volume file (NIfTI, NRRD, MetaImage) that cannot be opened as a CT volume."""


class ModelError(LiverSegError):
    """A model file or its card is missing, corrupt, unsafe or does not fit."""


class Cancelled(LiverSegError):
    """A long job stopped because its cancel token was set."""

    def __init__(self, message: str = "cancelled by the user"):
        super().__init__(message)


class PacsError(LiverSegError):
    """A PACS cannot be reached, refuses us, or answers something we cannot use."""
