"""File > Export: the working segmentation (NIfTI, DICOM SEG), the lesion table (CSV), the report
(PDF) or a screenshot of the axial view (PNG), written in a worker by the session's export. Once the
working segmentation is written (NIfTI, DICOM SEG) its crash recovery is cleared (:mod:`app.autosave`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from core.io.export import write_png
from core.runtime.choices import ExportKind

from .. import background
from ..workers import Job
from .services import WindowServices

FILTERS = {"nifti": "NIfTI (*.nii.gz *.nii)", "seg": "DICOM SEG (*.dcm)", "csv": "CSV (*.csv)",
           "png": "PNG (*.png)", "pdf": "PDF report (*.pdf)"}


class ExportController:
    """Writes the open study's results to files; owns the File menu's *Export* submenu.

    Receives the window's services, the viewer (the PNG is a grab of its axial view) and
    ``saved()``, called when the working segmentation was written (the autosaver's ``clear``).
    """

    def __init__(self, services: WindowServices, viewer, saved: Callable[[], None]):
        self.services, self.state, self.viewer, self.saved = services, services.state, viewer, saved

    def build_menu(self, menu) -> None:
        ex = menu.addMenu("&Export")
        ex.addAction("Segmentation as &NIfTI...", lambda: self.export_dialog("nifti"))
        ex.addAction("Segmentation as DICOM &SEG...", lambda: self.export_dialog("seg"))
        ex.addAction("&Lesion table (CSV)...", lambda: self.export_dialog("csv"))
        ex.addAction("&Report (PDF)...", lambda: self.export_dialog("pdf"))
        ex.addAction("&PNG screenshot of the view...", lambda: self.export_dialog("png"))

    def export_dialog(self, kind: ExportKind) -> None:
        path, _ = QFileDialog.getSaveFileName(self.services.parent, "Export", "", FILTERS[kind])
        if path:
            self.export(kind, path, force=True)  # the file dialog already asked about overwriting

    def export(self, kind: ExportKind, path: str, force: bool = False) -> Job | None:
        session, s = self.state.session, self.state.study
        if s is None or (kind != "png" and s.label is None and s.reference is None):
            self.services.show_error("Nothing to export yet: open a study and segment it.", "")
            return None
        if kind == "png":
            img = self.viewer.axial.glw.grab().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
            arr = np.array(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)[:, :img.width()]
            job = Job("Export PNG", background.export_file, write_png, path, arr.copy(), force, session.source_dirs)
        else:  # the label as it is now (the user may paint while the export runs), with its summary
            label = s.label if s.label is not None else s.reference
            job = Job(f"Export {kind}", session.export, kind, path, force, label=label.copy(),
                      summary=self.state.summary)
        saves_label = kind in ("nifti", "seg") and s.label is not None  # the work is kept: its recovery goes

        def done(p) -> None:
            self.services.status(f"Wrote {p}")
            if saves_label:
                self.saved()
        return self.services.start_job(job, done)
