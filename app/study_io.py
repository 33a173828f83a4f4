"""Studies in and out of the main window: open (DICOM folder, volume file, dataset case, demo, drag
and drop, recent), bring back a segmentation, export, add to a lab's training set. A mixin of
:class:`app.main_window.MainWindow` (which provides ``settings``, ``start_job``, ``show_error``, the
signals and the panels). The open study and its
results are one :class:`core.study.session.StudySession` (``self.session``), the same object
``liverseg predict`` uses; ``study``, ``editor``, ``summary`` and ``case_report`` read it."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QListWidget, QVBoxLayout

from core.study.editing import LabelEditor
from core.study.session import Segmented, StudySession
from core.study.study import Study

from . import jobs
from .workers import Job

MAX_RECENT = 8
VOLUME_FILTER = ("CT volumes (*.nii.gz *.nii *.nrrd *.nhdr *.mha *.mhd);;NIfTI (*.nii.gz *.nii);;"
                 "NRRD (*.nrrd *.nhdr);;MetaImage (*.mha *.mhd);;All files (*)")


def _session_field(name: str) -> property:
    """A read-only window attribute that is the open session's ``name`` (None without a session)."""
    return property(lambda self: getattr(self.session, name) if self.session is not None else None,
                    doc=f"the open session's {name}")


class ListChooser(QDialog):
    """Pick one item of a list (a series found in a folder, a case of a dataset)."""

    def __init__(self, title: str, items: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        lay = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.addItems(items)
        self.list.setCurrentRow(0)
        lay.addWidget(self.list)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)

    def choose(self) -> int | None:
        """Show the dialog; the row picked, or None (cancelled)."""
        ok = self.exec() == QDialog.DialogCode.Accepted and self.list.currentItem() is not None
        return self.list.currentRow() if ok else None


class StudyIO:
    """Opening, bringing back and exporting studies (mixed into MainWindow)."""

    session: StudySession | None = None

    # The open session's state, read-only here (None before a study is open).
    study: Study | None = _session_field("study")
    editor: LabelEditor | None = _session_field("editor")
    summary: dict | None = _session_field("summary")
    case_report: dict | None = _session_field("case_report")

    # -- opening --------------------------------------------------------------
    def open_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DICOM folder")
        if path:
            self.open_path(path)

    def open_path(self, path: str, choose=None, name: str = "") -> Job:
        """A volume file (NIfTI, NRRD, MetaImage) opens directly; a folder is scanned, and with several
        CT series the user picks one (``choose`` picks in tests); the stack a localizer shares a UID
        with is not offered separately (it loads the largest stack, with a warning)."""
        from core.io.volume_file import is_volume_file
        if is_volume_file(path):
            self._add_recent(path)
            return self.start_job(Job("Open volume file", StudySession.open, path), self.show_study)

        def scanned(result):
            from core.io.dicom import select_series
            cts = [s for s in result if s.is_ct and not (s.split and s.key != s.series_uid)] or list(result)
            if len(cts) > 1:
                idx = choose(cts) if choose else self._ask_series(cts)
                if idx is None:
                    return
                info = cts[idx]
            else:
                try:
                    info = select_series(result, None, path)
                except Exception as exc:
                    self.show_error(str(exc), "")
                    return
            load = functools.partial(StudySession.open_series, name=name)  # Job's own first argument is "name"
            self.start_job(Job("Load series", load, info, path), self.show_study)
            self._add_recent(path)
        return self.start_job(Job("Open DICOM folder", jobs.scan_folder, path), scanned)

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open CT volume", "", VOLUME_FILTER)
        if path:
            self.open_path(path)

    def open_label_dialog(self, role: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open segmentation", "",
                                              "Segmentations (*.nii.gz *.nii *.nrrd *.nhdr *.mha *.mhd *.dcm);;"
                                              "All files (*)")
        if path:
            self.open_label(path, role)

    def open_label(self, path: str, role: str = "label") -> Job | None:
        """Load a label file onto the open study (checked against its grid) as the working
        segmentation (editable, measured, exportable) or as the reference to compare with."""
        session = self.session
        if session is None:
            self.show_error("Open a study first: a segmentation is loaded onto the open study.", "")
            return None

        def loaded(label) -> None:
            if session is not self.session:  # another study was opened meanwhile
                return
            if role == "reference":
                session.set_reference(label)
                current = session.label if session.label is not None else label
                self.viewer.set_labels(session.label, label)
                mode = "outlines" if session.label is not None else "reference"
                self.viewer.set_mode(mode)  # the display panel follows the viewer's state
                self.statusBar().showMessage(f"Reference loaded from {path}")
                self._update_summary(current)
            else:
                self._segmented(Segmented(label, {"engines": {}, "device": f"loaded from {os.path.basename(path)}"}),
                                session)
                self.statusBar().showMessage(f"Segmentation loaded from {path}")
        return self.start_job(Job("Open segmentation", session.read_label, path), loaded)

    def dragEnterEvent(self, ev) -> None:
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        """A DICOM folder or a volume file dropped onto the window opens (the first one dropped)."""
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            ev.acceptProposedAction()
            self.open_path(paths[0])

    def _ask_series(self, series) -> int | None:
        return ListChooser("Choose a series", [f"{s.summary()}   [{s.key[-24:]}]" for s in series], self).choose()

    def open_demo(self) -> Job:
        return self.start_job(Job("Open demo study", StudySession.open_demo), self.show_study)

    def open_case_dialog(self) -> None:
        from core.datasets.dataset import list_cases
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder")
        if not folder:
            return
        try:
            cases = list_cases(folder)
        except Exception as exc:
            self.show_error(str(exc), "")
            return
        idx = ListChooser("Open case", list(cases), self).choose()
        if idx is not None:
            self.open_case(folder, cases[idx])

    def open_case(self, folder: str, case_id: str) -> Job:
        return self.start_job(Job("Open case", StudySession.open_case, folder, case_id), self.show_study)

    def show_study(self, session: StudySession) -> None:
        self.session = session
        study = session.study
        self.viewer.set_study(study.hu, study.spacing, study.label, study.reference)
        mode = "prediction" if study.label is not None or study.reference is None else "reference"
        self.viewer.set_mode(mode)  # the display panel follows the viewer's state
        z, y, x = study.shape
        sz, sy, sx = study.spacing
        name = study.name if len(study.name) < 60 else "..." + study.name[-57:]
        self.setWindowTitle(f"LiverSeg Studio - {name}")
        msg = f"{name}: {x} x {y} x {z} voxels, {sx:.2f} x {sy:.2f} x {sz:.2f} mm"
        if study.warnings:
            msg += "   warning: " + "; ".join(study.warnings)
        self.statusBar().showMessage(msg)
        self.results.summary.setText("No segmentation yet." if study.reference is None else
                                     "Reference masks shown; segment to compare.")
        self.results.lesions.setRowCount(0)
        self.results.show_metrics(None)
        if study.reference is not None and study.label is None:
            self._update_summary(study.reference)
        self.studyLoaded.emit()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.recent():
            self.recent_menu.addAction(p, lambda p=p: self.open_path(p))

    def recent(self) -> list[str]:
        v = self.settings.value("recent_folders", [])
        return [v] if isinstance(v, str) else list(v or [])

    def _add_recent(self, path: str) -> None:
        from core.pacs.cache import cache_root
        if Path(path).resolve().is_relative_to(cache_root().resolve()):
            return  # a series retrieved from a PACS: the cache may evict it; Open from PACS finds it again
        items = [path] + [p for p in self.recent() if p != path]
        self.settings.setValue("recent_folders", items[:MAX_RECENT])
        self._fill_recent()

    # -- training set -----------------------------------------------------------
    def _training_set_action(self, menu):
        """*Add to training set...* in ``menu``, enabled while the open study has a working label."""
        action = menu.addAction("Add to &training set...", self.add_to_training_set)
        action.setObjectName("addToTrainingSet")
        action.setStatusTip("Store the open study with its corrected labels as a case of a lab dataset")
        self.add_case_action = action
        for sig in (self.studyLoaded, self.segmented, menu.aboutToShow):
            sig.connect(self._update_training_action)
        self._update_training_action()
        return action

    def _update_training_action(self) -> None:
        self.add_case_action.setEnabled(self.session is not None and self.session.label is not None)

    def add_to_training_set(self):
        """Open the dialog (non-modal: ``self.add_case_dialog``); on OK the case is written in a worker."""
        from .widgets.add_case_dialog import AddCaseDialog
        if self.session is None or self.session.label is None:
            self.show_error("Nothing to add yet: open a study, segment it and correct the labels.", "")
            return None
        dialog = AddCaseDialog(self.settings, self.study.name, self)
        dialog.accepted.connect(lambda: self.add_case(dialog.dataset(), dialog.corrected_by()))
        if getattr(self, "add_case_dialog", None) is not None:
            self.add_case_dialog.deleteLater()  # the last one, closed
        self.add_case_dialog = dialog
        dialog.open()
        return dialog

    def add_case(self, dataset: str, corrected_by: str, replace: bool = False) -> Job | None:
        """Store the open study and its label as it is now in ``dataset``; asks before replacing."""
        from core.datasets.lab_cases import CaseExists

        from .widgets.add_case_dialog import add_case
        session = self.session
        if session is None or session.label is None:
            return None

        def done(result) -> None:
            if isinstance(result, CaseExists):
                if self.ask_replace(result.case_id, dataset):
                    self.add_case(dataset, corrected_by, replace=True)
                else:
                    self.statusBar().showMessage(f"Not added: {dataset} keeps its case {result.case_id}")
                return
            cid, n = result
            self.statusBar().showMessage(f"Added case {cid} to {dataset} ({n} case(s))")
            tp = getattr(self, "train_panel", None)
            if tp is not None and not tp.lite:  # the Train tab's fine-tune starts from this dataset
                tp.dataset.setText(dataset)
        job = Job("Add to training set", add_case, dataset, session.study, session.label.copy(), corrected_by,
                  replace, session.source_dirs)
        return self.start_job(job, done)

    def ask_replace(self, case_id: str, dataset: str) -> bool:
        """Yes / No: replace the case this study already has (tests replace this method)."""
        from PySide6.QtWidgets import QMessageBox
        answer = QMessageBox.question(self, "Add to training set",
                                      f"Replace the case of this study?\n\n{case_id} in {dataset}")
        return answer == QMessageBox.StandardButton.Yes

    # -- export ---------------------------------------------------------------
    def export_dialog(self, kind: str) -> None:
        filters = {"nifti": "NIfTI (*.nii.gz *.nii)", "seg": "DICOM SEG (*.dcm)", "csv": "CSV (*.csv)",
                   "png": "PNG (*.png)", "pdf": "PDF report (*.pdf)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export", "", filters[kind])
        if path:
            self.export(kind, path, force=True)  # the file dialog already asked about overwriting

    def export(self, kind: str, path: str, force: bool = False) -> Job | None:
        session, s = self.session, self.study
        if s is None or (kind != "png" and s.label is None and s.reference is None):
            self.show_error("Nothing to export yet: open a study and segment it.", "")
            return None
        if kind == "png":
            from PySide6.QtGui import QImage

            from core.io.export import write_png
            img = self.viewer.axial.glw.grab().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
            arr = np.array(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)[:, :img.width()]
            job = Job("Export PNG", jobs.export_file, write_png, path, arr.copy(), force, session.source_dirs)
        else:  # the label as it is now (the user may paint while the export runs), with its summary
            label = s.label if s.label is not None else s.reference
            job = Job(f"Export {kind}", session.export, kind, path, force, label=label.copy(), summary=self.summary)
        return self.start_job(job, lambda p: self.statusBar().showMessage(f"Wrote {p}"))
