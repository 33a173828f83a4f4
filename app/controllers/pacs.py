"""Studies from a PACS and segmentations back to it.

File menu: *Open from PACS...* (:class:`app.widgets.pacs_dialog.PacsDialog`: search, list the
series, retrieve one into the cache; the window then opens the folder with
:meth:`app.controllers.study_files.StudyFiles.open_path`, as any DICOM folder), *Send to PACS...*
(the working segmentation as a DICOM SEG, written by the session's "seg" export into a temporary
folder and sent, in a worker: :func:`app.background.send_segmentation`) and *PACS connections...*
(:class:`app.widgets.pacs_connections.PacsConnectionsDialog`).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMessageBox

from core.pacs.connections import PacsConnection, load_connections
from core.runtime.edition import not_in_edition, pacs_available

from .. import background
from ..widgets.pacs_connections import PacsConnectionsDialog
from ..widgets.pacs_dialog import PacsDialog
from ..workers import Job
from .services import WindowServices

NOT_DICOM = ("Send to PACS needs a study opened from a DICOM series: a DICOM SEG refers to the series' "
             "images, and {what} has none (export the segmentation as NIfTI instead).")


class PacsController:
    """Owns the File menu's PACS entries and their dialogs.

    Receives the window's services and ``open_path(folder, name=...)``, which opens a retrieved
    series as any DICOM folder.
    """

    def __init__(self, services: WindowServices, open_path: Callable):
        self.services, self.state, self.open_path = services, services.state, open_path
        self.pacs_dialog = None
        self.pacs_connections_dialog = None
        self.pacs_box: QMessageBox | None = None
        self.send_pacs_action: QAction | None = None

    def build_menu(self, menu, open_before: QAction) -> None:
        """*Open from PACS...* before ``open_before`` (after the other ways to open a study);
        *Send to PACS...* (enabled while a segmentation exists) and *PACS connections...* at the end."""
        open_action = QAction("Open from &PACS...", menu)
        open_action.setObjectName("openFromPacs")
        open_action.setStatusTip("Search a PACS, retrieve a series and open it")
        open_action.triggered.connect(self.open_from_pacs)
        menu.insertAction(open_before, open_action)
        self.send_pacs_action = menu.addAction("Sen&d to PACS...", self._send_from_menu)
        self.send_pacs_action.setObjectName("sendToPacs")
        self.send_pacs_action.setStatusTip("Send the segmentation as a DICOM SEG to a PACS")
        conn_action = menu.addAction("PACS co&nnections...", self.edit_pacs_connections)
        conn_action.setObjectName("pacsConnections")
        for sig in (self.services.studyLoaded, self.services.segmented, menu.aboutToShow):
            sig.connect(self._update_pacs_action)
        self._update_pacs_action()
        if not pacs_available():  # the lite edition: the entries stay, greyed, saying why
            why = not_in_edition("Working with a PACS")
            for action in (open_action, self.send_pacs_action, conn_action):
                action.setEnabled(False)
                action.setStatusTip(why)
                action.setToolTip(why)

    def _update_pacs_action(self) -> None:
        session = self.state.session
        self.send_pacs_action.setEnabled(pacs_available() and session is not None and session.label is not None)

    # -- open -------------------------------------------------------------------
    def open_from_pacs(self) -> None:
        """Show the (one, kept: ``pacs_dialog``) *Open from PACS* dialog; a retrieved series opens
        in the window."""
        if self.pacs_dialog is None:
            self.pacs_dialog = PacsDialog(self.services.jobs, self.services.parent)
            self.pacs_dialog.seriesRetrieved.connect(self.open_retrieved)
        self.pacs_dialog.show()
        self.pacs_dialog.raise_()
        self.pacs_dialog.activateWindow()

    def open_retrieved(self, folder: str, name: str = "") -> None:
        """A series retrieved from a PACS: opened as any DICOM folder (one series opens directly),
        named ``name`` (the cache folder's name is a UID)."""
        self.open_path(folder, name=name)

    def edit_pacs_connections(self) -> None:
        """Show the (one, kept: ``pacs_connections_dialog``) *PACS connections* dialog."""
        if self.pacs_connections_dialog is None:
            self.pacs_connections_dialog = PacsConnectionsDialog(self.services.jobs, self.services.parent)
            self.pacs_connections_dialog.changed.connect(
                lambda: self.pacs_dialog.reload_connections() if self.pacs_dialog is not None else None)
        self.pacs_connections_dialog.show()
        self.pacs_connections_dialog.raise_()

    # -- send -------------------------------------------------------------------
    def _send_from_menu(self) -> None:  # a slot returns None (PySide6 refcounts what slots return)
        self.send_to_pacs()

    def send_to_pacs(self, connection: PacsConnection | None = None) -> Job | None:
        """Send the working segmentation as a DICOM SEG to ``connection`` (asked when None)."""
        session = self.state.session
        if session is None or session.label is None:
            self.services.show_error("Nothing to send yet: open a DICOM study and segment it.", "")
            return None
        study = session.study
        if study.volume is None or study.file_grid is not None:
            what = "a volume file (NIfTI, NRRD, MetaImage)" if study.file_grid is not None else "this study"
            self.services.show_error(NOT_DICOM.format(what=what), "")
            return None
        conn = connection or self.ask_pacs_connection()
        if conn is None:
            return None
        job = Job("Send to PACS", background.send_segmentation, session, session.label.copy(), conn)
        return self.services.start_job(job, lambda result: self._pacs_sent(result, conn),
                                       busy_text=f"Sending the segmentation to {conn.describe()}...")

    def ask_pacs_connection(self) -> PacsConnection | None:
        """The PACS to send to, picked among the saved ones (None: cancelled or none saved)."""
        conns = load_connections()
        if not conns:
            self.services.show_error("No PACS connection saved: add one with File > PACS connections...", "")
            return None
        names = [c.describe() for c in conns]
        text, ok = QInputDialog.getItem(self.services.parent, "Send to PACS",
                                        "Send the segmentation as a DICOM SEG to:", names, 0, False)
        return conns[names.index(text)] if ok and text in names else None

    def _pacs_sent(self, result, conn: PacsConnection) -> None:
        line = f"Sent to {conn.name}: {result.describe()}"
        self.services.status(line)
        if result.failed or not result.accepted:
            details = "\n".join(f"{uid}: {why}" for uid, why in result.failed)
            self.services.show_error(f"{conn.describe()} refused the segmentation: {result.describe()}", details)
            return
        box = QMessageBox(QMessageBox.Icon.Information, "Send to PACS",
                          f"The segmentation was sent to {conn.describe()} as a DICOM SEG.\n\n{result.describe()}",
                          parent=self.services.parent)
        box.open()
        self.pacs_box = box
