"""DIMSE: C-ECHO, C-FIND, C-GET and C-STORE with pynetdicom.

Retrieval uses C-GET, which needs nothing configured on the PACS for us (C-MOVE would need the
PACS to know our address). Each association is opened for one operation and released; every wait
is bounded by the connection's timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    CTImageStorage,
    EncapsulatedPDFStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    LegacyConvertedEnhancedCTImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
)

from ..runtime.errors import Cancelled, PacsError, one_line
from ..runtime.jobs import CancelToken, check
from .answers import SERIES_FIELDS, STUDY_FIELDS, series_hit, study_hit, text
from .connections import PacsConnection
from .outgoing import read_for_sending
from .types import PacsQuery, SeriesHit, StoreResult, StudyHit

# what a CT series arrives as; the compressed ones are decoded by pylibjpeg when read
RECEIVE_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLosslessSV1, JPEG2000Lossless,
                    RLELossless, JPEGBaseline8Bit, JPEG2000]
RECEIVE_CLASSES = [CTImageStorage, EnhancedCTImageStorage, LegacyConvertedEnhancedCTImageStorage,
                   SegmentationStorage, SecondaryCaptureImageStorage, EncapsulatedPDFStorage]
_PENDING = (0xFF00, 0xFF01)


def _rejection(assoc) -> str:
    prim = getattr(getattr(assoc, "acceptor", None), "primitive", None)
    reason = getattr(prim, "reason_str", "") if prim is not None else ""
    return reason or "no reason given"


class DimseClient:
    def __init__(self, conn: PacsConnection):
        self.conn = conn

    def _ae(self, contexts: Sequence[tuple[str, list[str]]]):
        from pynetdicom import AE
        ae = AE(ae_title=self.conn.calling_ae)
        t = float(self.conn.timeout)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = t
        ae.maximum_pdu_size = 0  # we accept any PDU size: fewer, larger PDUs from the PACS
        for uid, syntaxes in contexts:
            ae.add_requested_context(uid, syntaxes)
        return ae

    @contextmanager
    def _association(self, contexts, what: str, **kwargs):
        ae = self._ae(contexts)
        where = f"PACS {self.conn.describe()}"
        try:
            assoc = ae.associate(self.conn.host, int(self.conn.port), ae_title=self.conn.called_ae, **kwargs)
        except Exception as exc:  # a bad host name, say
            raise PacsError(f"{where}: cannot connect ({one_line(exc, 200)})") from None
        if assoc.is_rejected:
            raise PacsError(f"{where} refused the association for {what} "
                            f"(our AE title {self.conn.calling_ae!r}, called AE title {self.conn.called_ae!r}): "
                            f"{_rejection(assoc)}")
        if not assoc.is_established:
            raise PacsError(f"{where}: cannot connect for {what} (no DICOM server answering at "
                            f"{self.conn.host}:{self.conn.port}, or it aborted the association)")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()
            ae.shutdown()

    def _fail(self, what: str, detail: str) -> PacsError:
        return PacsError(f"PACS {self.conn.describe()}: {what} failed ({detail})")

    def echo(self) -> None:
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # made at import time
        with self._association([(Verification, [ImplicitVRLittleEndian])], "C-ECHO") as assoc:
            status = assoc.send_c_echo()
            if not status or status.Status != 0:
                raise self._fail("C-ECHO", f"status {getattr(status, 'Status', 'none')}")

    def _find(self, ds: Dataset, what: str) -> list[Dataset]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND  # type: ignore[attr-defined]
        out = []
        with self._association([(FIND, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])], what) as assoc:
            for status, identifier in assoc.send_c_find(ds, FIND):
                if not status:
                    raise self._fail(what, "no answer within the timeout, or the association was aborted")
                if status.Status in _PENDING:
                    if identifier is None:
                        raise self._fail(what, "a match without an identifier")
                    out.append(identifier)
                elif status.Status != 0:
                    raise self._fail(what, f"status 0x{status.Status:04X}")
        return out

    def find_studies(self, query: PacsQuery) -> list[StudyHit]:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        for key in STUDY_FIELDS:
            setattr(ds, key, "")
        ds.PatientID, ds.PatientName = query.patient_id, query.patient_name
        ds.StudyDate, ds.AccessionNumber, ds.ModalitiesInStudy = query.date_range, query.accession, query.modality
        hits = [study_hit(i) for i in self._find(ds, "study query (C-FIND)")]
        return hits[: query.limit]

    def find_series(self, study_uid: str, modality: str = "") -> list[SeriesHit]:
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES"
        for key in SERIES_FIELDS:
            setattr(ds, key, "")
        ds.StudyInstanceUID, ds.Modality = study_uid, modality
        return [series_hit(i, study_uid) for i in self._find(ds, "series query (C-FIND)")]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study_uid, series_uid, ""
        return sorted(text(i, "SOPInstanceUID") for i in self._find(ds, "instance query (C-FIND)"))

    def retrieve(self, study_uid: str, series_uid: str, dest: Path, on_file: Callable[[], None],
                 cancel: CancelToken | None = None) -> int:
        """One series-level C-GET. (Three parallel image-level C-GETs were measured no faster here:
        the receiving side is CPU-bound in pynetdicom.)"""
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        return self._get(ds, dest, on_file, cancel)

    def _get(self, ds: Dataset, dest: Path, on_file: Callable[[], None], cancel: CancelToken | None) -> int:
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET  # type: ignore[attr-defined]
        dest = Path(dest)
        written: list[Path] = []
        failure: list[str] = []
        lock = threading.Lock()

        def on_store(event):
            try:
                sop = event.request.AffectedSOPInstanceUID
                name = "".join(c for c in str(sop) if c.isdigit() or c == ".") or f"i{len(written)}"
                (dest / f"{name}.dcm").write_bytes(event.encoded_dataset())
                with lock:
                    written.append(sop)
                on_file()
                return 0x0000
            except Exception as exc:  # a full disk: refuse this instance, report after
                failure.append(one_line(exc, 200))
                return 0xA700

        contexts = [(GET, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])]
        contexts += [(uid, RECEIVE_SYNTAXES) for uid in RECEIVE_CLASSES]
        roles = [build_role(uid, scp_role=True) for uid in RECEIVE_CLASSES]
        what = "retrieve (C-GET)"
        with self._association(contexts, what, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            for status, _ in assoc.send_c_get(ds, GET):
                if cancel is not None and cancel.cancelled:
                    assoc.abort()
                    raise Cancelled()
                if not status:
                    raise self._fail(what, "the transfer stopped: no answer within the timeout or aborted")
                if status.Status in _PENDING:
                    continue
                if failure:
                    raise self._fail(what, f"writing to {dest}: {failure[0]}")
                if status.Status not in (0x0000, 0xB000):
                    raise self._fail(what, f"status 0x{status.Status:04X}")
                if status.Status == 0xB000:
                    raise self._fail(what, f"{status.get('NumberOfFailedSuboperations', '?')} instance(s) "
                                           f"not sent by the PACS")
        check(cancel)
        return len(written)

    def store(self, paths: Sequence[Path], cancel: CancelToken | None = None,
              on_file: Callable[[], None] | None = None) -> StoreResult:
        datasets = read_for_sending(paths)
        contexts: dict[str, set[str]] = {}
        for ds in datasets:
            contexts.setdefault(ds.SOPClassUID, set()).add(ds.file_meta.TransferSyntaxUID)
        result = StoreResult()
        with self._association([(k, sorted(v | {ExplicitVRLittleEndian})) for k, v in contexts.items()],
                               "send (C-STORE)") as assoc:
            for ds in datasets:
                check(cancel)
                status = assoc.send_c_store(ds)
                sop = str(ds.SOPInstanceUID)
                if not status:
                    result.failed.append((sop, "no answer within the timeout"))
                elif status.Status in (0x0000, 0xB000, 0xB007, 0xB006):
                    result.accepted.append(sop)
                else:
                    result.failed.append((sop, f"status 0x{status.Status:04X}"))
                if on_file is not None:
                    on_file()
        return result
