"""The main window: assembles the viewer and its controls; studies load in worker threads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFileDialog, QFormLayout, QMainWindow,
                               QMessageBox, QProgressBar, QSlider, QWidget)

from core.errors import one_line
from core.jobs import Progress

from .widgets.slice_view import PRESETS, SliceView
from .workers import Job, JobRunner

log = logging.getLogger(__name__)


class Study:
    """What is open: CT (HU), spacing, an optional reference label, and where it came from."""

    def __init__(self, hu, spacing, label=None, name: str = "", warnings=()):
        self.hu, self.spacing, self.label, self.name, self.warnings = hu, spacing, label, name, tuple(warnings)


def load_dicom_study(path: str, progress=None, cancel=None) -> Study:
    from core.dicom import load_series
    v = load_series(path, progress=progress, cancel=cancel)
    return Study(v.hu, v.spacing, None, path, v.warnings)


def load_demo_study(progress=None, cancel=None) -> Study:
    from core.demo import demo_case
    c = demo_case(progress=progress, cancel=cancel)
    return Study(c.hu, c.spacing, c.label, "Demo study (synthetic phantom, reference masks shown)")


class MainWindow(QMainWindow):
    """LiverSeg Studio's window. Signals: ``studyLoaded`` once a study is shown, ``jobFailed(message)``."""

    studyLoaded = Signal()
    jobFailed = Signal(str)

    def __init__(self):
        super().__init__()
        self.setWindowTitle("LiverSeg Studio")
        self.resize(1200, 800)
        self.jobs = JobRunner(self)
        self.study: Optional[Study] = None
        self.view = SliceView()
        self.setCentralWidget(self.view)
        self.view.cursorMoved.connect(lambda s: self.statusBar().showMessage(s))
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.statusBar().addPermanentWidget(self.progress)
        self._build_controls()
        self._build_menu()

    def _build_menu(self) -> None:
        m = self.menuBar().addMenu("&File")
        m.addAction("&Open DICOM folder...", self.open_dialog, "Ctrl+O")
        m.addAction("Open &demo study", self.open_demo)
        m.addSeparator()
        m.addAction("&Quit", self.close, "Ctrl+Q")

    def _build_controls(self) -> None:
        panel = QWidget()
        form = QFormLayout(panel)
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.currentTextChanged.connect(lambda t: self.view.set_window(*PRESETS[t]))
        form.addRow("Window", self.preset)
        for which, text in (("liver", "Liver (green)"), ("tumour", "Tumour (red)")):
            box = QCheckBox(text)
            box.setChecked(True)
            box.toggled.connect(lambda on, w=which: self.view.set_overlay(w, visible=on))
            alpha = QSlider(Qt.Orientation.Horizontal)
            alpha.setRange(0, 255)
            alpha.setValue(self.view.alphas[which])
            alpha.valueChanged.connect(lambda a, w=which: self.view.set_overlay(w, alpha=a))
            form.addRow(box, alpha)
        dock = QDockWidget("Display", self)
        dock.setWidget(panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

    # -- loading ------------------------------------------------------------
    def open_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DICOM folder")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> Job:
        return self._load(Job("Open DICOM folder", load_dicom_study, path))

    def open_demo(self) -> Job:
        return self._load(Job("Open demo study", load_demo_study))

    def _load(self, job: Job) -> Job:
        job.progress.connect(self._on_progress)
        job.finished.connect(self.show_study)
        job.failed.connect(self.show_error)
        job.finished.connect(lambda _: self.progress.hide())
        job.failed.connect(lambda *_: self.progress.hide())
        self.progress.setRange(0, 0)
        self.progress.show()
        self.statusBar().showMessage(f"{job.name}...")
        return self.jobs.start(job)

    def _on_progress(self, ev: Progress) -> None:
        self.progress.setRange(0, max(ev.total, 0))
        self.progress.setValue(ev.done)

    def show_study(self, study: Study) -> None:
        self.study = study
        self.view.set_volume(study.hu, study.spacing, study.label)
        z, y, x = study.hu.shape
        self.setWindowTitle(f"LiverSeg Studio - {Path(study.name).name if '/' in study.name else study.name}")
        msg = f"{study.name}: {x} x {y} x {z}, {study.spacing[2]:.2f} x {study.spacing[1]:.2f} x {study.spacing[0]:.2f} mm"
        if study.warnings:
            msg += "   warning: " + "; ".join(study.warnings)
        self.statusBar().showMessage(msg)
        self.studyLoaded.emit()

    def show_error(self, message: str, details: str) -> None:
        log.error("%s\n%s", message, details)
        box = QMessageBox(QMessageBox.Icon.Warning, "LiverSeg Studio", one_line(message), parent=self)
        box.setDetailedText(details)
        box.open()
        self.errorBox = box
        self.jobFailed.emit(message)

    def closeEvent(self, ev) -> None:
        if self.jobs.busy:
            answer = QMessageBox.question(self, "LiverSeg Studio", "A job is running. Cancel it and quit?")
            if answer != QMessageBox.StandardButton.Yes:
                ev.ignore()
                return
        self.jobs.cancel_all()
        super().closeEvent(ev)
