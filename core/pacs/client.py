"""One interface over the two ways to talk to a PACS, and the factory that picks one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ..runtime.edition import require_pacs
from ..runtime.jobs import CancelToken
from .connections import PacsConnection, load_secret
from .types import PacsQuery, SeriesHit, StoreResult, StudyHit


class PacsClient(Protocol):
    """Every method raises :class:`core.runtime.errors.PacsError` (one line naming the PACS) when
    the server is down, refuses us or answers something malformed."""

    conn: PacsConnection

    def echo(self) -> None: ...

    def find_studies(self, query: PacsQuery) -> list[StudyHit]: ...

    def find_series(self, study_uid: str, modality: str = "") -> list[SeriesHit]: ...

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        """The series' SOP Instance UIDs."""

    def retrieve(self, study_uid: str, series_uid: str, dest: Path, on_file: Callable[[], None],
                 cancel: CancelToken | None = None) -> int:
        """Write the series' instances into ``dest`` (one file each); returns how many."""

    def store(self, paths: Sequence[Path], cancel: CancelToken | None = None,
              on_file: Callable[[], None] | None = None) -> StoreResult: ...


def open_client(conn: PacsConnection, secret: str | None = None) -> PacsClient:
    """A client for ``conn``; the secret defaults to the keyring's."""
    require_pacs()
    if conn.protocol == "dimse":
        from .dimse import DimseClient  # lite edition: not bundled (require_pacs refuses first)
        return DimseClient(conn)
    from .dicomweb import DicomwebClient
    return DicomwebClient(conn, load_secret(conn.name) if secret is None and conn.auth != "none" else secret)
