"""The main window: assembles the viewer and the panels; every long job runs in a worker thread."""

from __future__ import annotations

import gc
import logging
import os

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QMainWindow, QMessageBox, QProgressBar, QSplitter, QTabWidget

from core.inference.engines import engines_line
from core.inference.settings import BACKENDS, Settings, installed_backends, load_settings, save_settings
from core.runtime.edition import keras_available, not_in_edition
from core.runtime.errors import one_line
from core.runtime.jobs import Progress
from core.study.session import Segmented, StudySession

from . import jobs
from .pacs_actions import PacsActions
from .review import ReviewActions
from .study_io import StudyIO
from .widgets.display_panel import DisplayPanel
from .widgets.results_panel import ResultsPanel
from .widgets.segment_panel import BRUSHES, SegmentPanel
from .widgets.slice_view import OrthoViewer
from .widgets.train_panel import TrainPanel
from .workers import Job, JobRunner

log = logging.getLogger(__name__)
PANEL_SHARE = 0.22  # of the window's width on the first run (at least what the panel needs)


class MainWindow(StudyIO, ReviewActions, PacsActions, QMainWindow):
    """LiverSeg Studio's window.

    Signals: ``studyLoaded`` (a study is shown), ``segmented`` (a segmentation is shown),
    ``summaryUpdated`` (results recomputed), ``jobFailed(message)``.
    """

    studyLoaded = Signal()
    segmented = Signal()
    summaryUpdated = Signal()
    jobFailed = Signal(str)

    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("LiverSeg Studio")
        self.resize(1400, 900)
        self.settings = settings or QSettings()
        self.jobs = JobRunner(self)
        self.session: StudySession | None = None  # the open study and its results (see StudyIO)
        self.tool: str | None = None
        self._segment_job: Job | None = None
        self._train_job: Job | None = None
        self.confirm_close = True  # ask before cancelling running jobs on close
        self.prefs: Settings = load_settings()
        self.last_engines: dict = {}

        self.viewer = OrthoViewer()
        self.viewer.cursorMoved.connect(lambda s: self.statusBar().showMessage(s))
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.statusBar().addPermanentWidget(self.progress)

        self.display = DisplayPanel()
        self.segment_panel = SegmentPanel()
        self.segment_panel.set_engine(self.prefs.engine)
        self.results = ResultsPanel()
        self.train_panel = TrainPanel()
        tabs = QTabWidget()
        for w, name in ((self.display, "Display"), (self.segment_panel, "Segment"), (self.results, "Results"),
                        (self.train_panel, "Train")):
            tabs.addTab(w, name)
        self.tabs = tabs
        # The views first: the tools panel takes what it needs (the user drags the handle; the
        # sizes and the window geometry are remembered in the settings between runs).
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.viewer)
        self.splitter.addWidget(tabs)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.setCentralWidget(self.splitter)
        self._restore_layout()
        self.splitter.splitterMoved.connect(lambda *_: self._save_layout())
        self.setAcceptDrops(True)
        self._connect()
        self._build_menu()
        # Qt, pyqtgraph and (after the warm-up) the ML backend leave hundreds of thousands of long-lived
        # objects: out of the collector's sight, a full collection takes ms, not 80-120 ms of GIL
        gc.freeze()

    # -- wiring ---------------------------------------------------------------
    def _connect(self) -> None:
        d, v = self.display, self.viewer
        d.bind(v.state)  # the panel writes window, mode and overlays into the viewer's state and shows it
        sp = self.segment_panel
        sp.segmentRequested.connect(self.run_segmentation)
        sp.cancelRequested.connect(self.cancel_segmentation)
        sp.toolChanged.connect(self.set_tool)
        sp.undoRequested.connect(self.undo)
        sp.redoRequested.connect(self.redo)
        sp.engineChanged.connect(self.set_engine)
        ax = v.axial
        ax.strokeStarted.connect(self._stroke_started)
        ax.painted.connect(self._paint)
        ax.strokeFinished.connect(self._stroke_done)
        self.results.lesionClicked.connect(v.set_cursor)
        self._connect_review()
        tp = self.train_panel
        tp.startRequested.connect(self.start_training)
        tp.stopRequested.connect(self.stop_training)
        tp.importRequested.connect(self.import_dataset)
        tp.monitorRequested.connect(lambda d: tp.curves.follow(d))
        if tp.finetune is not None:
            tp.finetune.finetuneRequested.connect(self.start_finetune)
            tp.finetune.defaultsChanged.connect(lambda: self.segment_panel.refresh(select_defaults=True))

    def _build_menu(self) -> None:
        m = self.menuBar().addMenu("&File")
        m.addAction("&Open DICOM folder...", self.open_dialog, "Ctrl+O")
        m.addAction("Open &file (NIfTI)...", self.open_file_dialog, "Ctrl+Shift+O")
        m.addAction("Open &segmentation (NIfTI, DICOM SEG)...", lambda: self.open_label_dialog("label"))
        m.addAction("Open segmentation as &reference...", lambda: self.open_label_dialog("reference"))
        m.addAction("Open dataset &case...", self.open_case_dialog)
        m.addAction("Open &demo study", self.open_demo)
        self.recent_menu = m.addMenu("&Recent")
        self._fill_recent()
        ex = m.addMenu("&Export")
        ex.addAction("Segmentation as &NIfTI...", lambda: self.export_dialog("nifti"))
        ex.addAction("Segmentation as DICOM &SEG...", lambda: self.export_dialog("seg"))
        ex.addAction("&Lesion table (CSV)...", lambda: self.export_dialog("csv"))
        ex.addAction("&Report (PDF)...", lambda: self.export_dialog("pdf"))
        ex.addAction("&PNG screenshot of the view...", lambda: self.export_dialog("png"))
        self._pacs_menu(m)  # Open from PACS..., Send to PACS..., PACS connections... (app.pacs_actions)
        self._training_set_action(m)  # Add to training set... (app.study_io)
        m.addSeparator()
        m.addAction("&Quit", self.close, "Ctrl+Q")
        e = self.menuBar().addMenu("&Edit")
        e.addAction("&Undo", self.undo, "Ctrl+Z")
        e.addAction("&Redo", self.redo, "Ctrl+Y")
        st = self.menuBar().addMenu("&Settings")
        self.backend_actions = {}
        if not keras_available():  # the lite edition: ONNX Runtime only
            st.addAction(not_in_edition("Choosing the Keras backend")).setEnabled(False)
        else:
            self._backend_menu(st.addMenu("Keras &backend (after restart)"))
        h = self.menuBar().addMenu("&Help")
        h.addAction("&About", self.about)

    def _backend_menu(self, bm) -> None:
        group = QActionGroup(self)
        installed = installed_backends()
        for b in BACKENDS:
            a = bm.addAction(b + ("" if b in installed else " (not installed)"))
            a.setCheckable(True)
            a.setEnabled(b in installed)
            a.setChecked(b == self.prefs.keras_backend)
            a.triggered.connect(lambda _=False, b=b: self.set_backend(b))
            group.addAction(a)
            self.backend_actions[b] = a

    # -- jobs -----------------------------------------------------------------
    def start_job(self, job: Job, on_done, busy_text: str = "", quiet: bool = False) -> Job:
        job.progress.connect(self._on_progress)
        job.finished.connect(on_done)
        job.failed.connect(self.show_error)
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(lambda *_: self.progress.hide())
        name = job.name  # not the job itself: a slot holding its job keeps it alive (see Job.release)
        job.cancelled.connect(lambda: self.statusBar().showMessage(f"{name}: cancelled"))
        if not quiet:
            self.progress.setRange(0, 0)
            self.progress.show()
            self.statusBar().showMessage(busy_text or f"{job.name}...")
        return self.jobs.start(job)

    def _on_progress(self, ev: Progress) -> None:
        self.progress.setRange(0, max(ev.total, 0))
        self.progress.setValue(ev.done)
        if ev.message:
            self.statusBar().showMessage(f"{ev.stage}: {ev.message}")

    def show_error(self, message: str, details: str) -> None:
        log.error("%s\n%s", message, details)
        box = QMessageBox(QMessageBox.Icon.Warning, "LiverSeg Studio", one_line(message), parent=self)
        box.setDetailedText(details)
        box.open()
        self.errorBox = box
        self.jobFailed.emit(message)

    # -- segmentation and editing ---------------------------------------------
    def run_segmentation(self, liver_path: str, tumor_path: str = "") -> Job | None:
        session = self.session
        if session is None:
            self.show_error("Open a study first.", "")
            return None
        job = Job("Segment", jobs.segment_study, session, liver_path, tumor_path or None, self.prefs.engine)
        job.progress.connect(lambda ev: self.segment_panel.set_progress(ev.done, ev.total))
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(lambda *_: self.segment_panel.set_busy(False))
        self.segment_panel.set_busy(True)
        self._segment_job = job
        return self.start_job(job, lambda result: self._segmented(result, session))

    def _segmented(self, result: Segmented, session: StudySession) -> None:
        """Show a segmentation of ``session`` (ignored when another study was opened meanwhile)."""
        if session is not self.session:
            return
        session.adopt(result)
        label, info = result.label, result.info
        self.last_engines = session.engines
        mode = "outlines" if self.study.reference is not None else "prediction"
        self.viewer.set_labels(label, self.study.reference, mode=mode)  # one redraw per view
        engines = engines_line(self.last_engines) or info.get("device", "?")
        self.statusBar().showMessage(f"Segmented in {result.seconds:.1f} s ({engines})"
                                     + ("   " + "; ".join(result.warnings) if result.warnings else ""))
        self.tabs.setCurrentWidget(self.results)
        self._update_summary(label, result.snapshot)
        self.segmented.emit()

    def _update_summary(self, label, snapshot=None) -> None:
        """Measure ``label`` in a worker, on ``snapshot`` (a copy nobody edits) or a fresh copy."""
        session = self.session
        job = Job("Measure", session.measurements, label.copy() if snapshot is None else snapshot,
                  compare=label is not session.study.reference)
        self.start_job(job, lambda result: self._show_summary(result, session), quiet=True)

    def _show_summary(self, result, session: StudySession) -> None:
        if session is not self.session:
            return
        session.set_measurements(*result)
        self.results.show_summary(self.summary)
        self.results.show_metrics(self.case_report)
        self.summaryUpdated.emit()

    def warm_up_backend(self) -> Job:
        """Import the Keras backend in the background (once), so the first Segment does not pay for it."""
        return self.start_job(Job("Loading the Keras backend", jobs.warm_up), lambda _: gc.freeze(), quiet=True)

    def cancel_segmentation(self) -> None:
        if self._segment_job is not None:
            self._segment_job.token.cancel()

    def stop_training(self) -> None:
        if self._train_job is not None:
            self._train_job.token.cancel()

    def _stroke_started(self) -> None:
        if self.editor is not None:
            self.editor.begin()

    def set_tool(self, tool: str | None) -> None:
        self.tool = tool
        self.viewer.axial.brush_active = tool in BRUSHES  # the click tools act on a click in any view
        if tool is not None and self.study is not None and self.study.label is None:
            self.session.draw_from_scratch()
            self.viewer.set_labels(self.study.label, self.study.reference)

    def _paint(self, z: int, y: float, x: float) -> None:
        if self.editor is None or self.tool not in BRUSHES:
            return
        if self.editor.paint(z, y, x, self.segment_panel.radius.value(), self.tool):
            self.viewer.redraw_overlays()

    def _stroke_done(self) -> None:
        if self.editor is not None and self.editor.end():
            self._update_summary(self.study.label)

    def undo(self) -> None:
        if self.session is not None and self.session.undo():
            self.viewer.redraw_overlays()
            self._update_summary(self.study.label)

    def redo(self) -> None:
        if self.session is not None and self.session.redo():
            self.viewer.redraw_overlays()
            self._update_summary(self.study.label)

    # -- training -------------------------------------------------------------
    def import_dataset(self, src: str, out: str) -> Job:
        tp = self.train_panel
        tp.import_progress.setVisible(True)
        job = Job("Import", jobs.import_dataset, src, out)
        def show(ev) -> None:  # slots connected to signals must return None (PySide6 refcounts returns)
            tp.import_progress.setRange(0, max(ev.total, 0))
            tp.import_progress.setValue(ev.done)
        job.progress.connect(show)
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(lambda *_: tp.import_progress.setVisible(False))
        return self.start_job(job, lambda ids: self.statusBar().showMessage(f"Imported {len(ids)} case(s)"))

    def start_training(self, panel, resume: bool) -> Job | None:
        try:
            cfg = panel.config(resume)
        except Exception as exc:
            self.show_error(str(exc), "")
            return None
        job = Job("Training", jobs.train_model, cfg, resume)
        self._train_job = job
        panel.set_running(True)
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(lambda *_: panel.set_running(False))
        job.finished.connect(lambda *_: self.segment_panel.refresh())
        job.finished.connect(lambda *_: panel.curves.refresh(force=True))
        self.start_job(job, lambda r: self.statusBar().showMessage(
            f"Training {r.status}: best val Dice {r.best_val_dice:.3f} (epoch {r.best_epoch})"))
        panel.curves.follow(cfg.out, cfg.epochs)
        return job

    def start_finetune(self, box) -> Job | None:
        """Fine-tune from the Train tab: live curves of the stage in progress, then the before/after table."""
        try:
            cfg = box.config()
        except Exception as exc:
            self.show_error(str(exc), "")
            return None
        tp = self.train_panel
        job = Job("Fine-tuning", jobs.finetune_models, cfg)
        self._train_job = job
        box.set_running(True)
        tp.set_running(True)
        following = {"stage": None}

        def follow(ev) -> None:  # each stage is a run folder: follow the one that is training
            if (getattr(ev, "stage", None) == "recipe" and ev.done < len(cfg.stages)
                    and following["stage"] != cfg.stages[ev.done]):
                following["stage"] = cfg.stages[ev.done]
                tp.curves.follow(os.path.join(cfg.out, following["stage"]))
        job.progress.connect(follow)
        def ended(*_) -> None:
            box.set_running(False)
            tp.set_running(False)
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(ended)
        job.finished.connect(box.show_outcome)
        job.finished.connect(lambda *_: tp.curves.refresh(force=True))
        job.finished.connect(lambda *_: self.segment_panel.refresh())
        self.start_job(job, lambda r: self.statusBar().showMessage(
            "Fine-tuning " + ("cancelled" if r.cancelled else f"done: {cfg.out}")))
        return job

    # -- misc -----------------------------------------------------------------
    def set_engine(self, engine: str) -> None:
        """The inference engine setting (saved for the next session)."""
        self._save_prefs(self.prefs.replace(engine=engine))

    def set_backend(self, backend: str) -> None:
        """The Keras backend setting: used from the next start (Keras is already imported)."""
        if backend == self.prefs.keras_backend:
            return
        self._save_prefs(self.prefs.replace(keras_backend=backend))
        note = ("" if "KERAS_BACKEND" not in os.environ or os.environ["KERAS_BACKEND"] == backend else
                f" (the KERAS_BACKEND environment variable, {os.environ['KERAS_BACKEND']}, still wins)")
        self.statusBar().showMessage(f"Keras backend {backend} will be used after a restart{note}")

    def _save_prefs(self, prefs: Settings) -> None:
        self.prefs = prefs
        try:
            save_settings(prefs)
        except OSError as exc:
            self.statusBar().showMessage(f"Settings not saved: {exc}")

    def about(self) -> None:
        QMessageBox.about(self, "About LiverSeg Studio", self.about_text())

    def about_text(self) -> str:
        from core import __version__
        last = ("\nLast segmentation: " + engines_line(self.last_engines)
                if self.last_engines else "")
        return (f"LiverSeg Studio {__version__}\n{jobs.engine_description()}\n"
                f"Inference engine setting: {self.prefs.engine}{last}\n\n"
                "Demo models are trained on synthetic data only.")

    def _restore_layout(self) -> None:
        geometry, state = self.settings.value("layout/geometry"), self.settings.value("layout/splitter")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is None or not self.splitter.restoreState(state):
            panel = max(self.tabs.minimumSizeHint().width(), int(PANEL_SHARE * self.width()))
            self.splitter.setSizes([self.width() - panel, panel])

    def _save_layout(self) -> None:
        self.settings.setValue("layout/geometry", self.saveGeometry())
        self.settings.setValue("layout/splitter", self.splitter.saveState())

    def closeEvent(self, ev) -> None:
        if self.jobs.busy and self.confirm_close:
            answer = QMessageBox.question(self, "LiverSeg Studio", "A job is running. Cancel it and quit?")
            if answer != QMessageBox.StandardButton.Yes:
                ev.ignore()
                return
        self._save_layout()
        self.train_panel.curves.stop()
        self.jobs.cancel_all()
        super().closeEvent(ev)
