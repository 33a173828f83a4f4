"""The main window: builds the viewer and the panels, and assembles the controllers that act on
them (:mod:`app.controllers`); every long job runs in a worker thread.

The window itself keeps only what is the window's: its layout (remembered between runs), the job
runner with the status bar's progress, the error dialog, drag and drop, and closing. Each
controller receives the :class:`app.controllers.services.WindowServices` and the panels it drives,
and builds its own menu entries; the window decides their order in the menu bar.
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QMainWindow, QMessageBox, QProgressBar, QSplitter, QTabWidget

from core.runtime.errors import one_line
from core.runtime.jobs import Progress

from . import autosave
from .controllers.about import AboutController
from .controllers.editing import EditingController
from .controllers.export import ExportController
from .controllers.followup import FollowupController
from .controllers.pacs import PacsController
from .controllers.phase import PhaseController
from .controllers.preferences import PreferencesController
from .controllers.review import ReviewController
from .controllers.segmentation import SegmentationController
from .controllers.services import OpenStudy, WindowServices
from .controllers.study_files import StudyFiles
from .controllers.training import TrainingController
from .controllers.training_set import TrainingSetController
from .widgets.display_panel import DisplayPanel
from .widgets.results_panel import ResultsPanel
from .widgets.segment_panel import SegmentPanel
from .widgets.slice_view import OrthoViewer
from .widgets.train_panel import TrainPanel
from .workers import Job, JobRunner

log = logging.getLogger(__name__)
PANEL_SHARE = 0.22  # of the window's width on the first run (at least what the panel needs)


class MainWindow(QMainWindow):
    """LiverSeg Studio's window.

    Signals: ``studyLoaded`` (a study is shown), ``segmented`` (a segmentation is shown),
    ``summaryUpdated`` (results recomputed), ``jobFailed(message)``.

    ``state`` holds the open study (:class:`app.controllers.services.OpenStudy`). The controllers:
    ``files`` (open studies and segmentations, Recent), ``exports``, ``training_set``, ``pacs``,
    ``segmentation``, ``editing``, ``review`` (with the 3D tab), ``training``, ``preferences``,
    ``phase`` (the study's contrast phase), ``followup`` (File > Compare with earlier study) and
    ``about``; ``autosave`` (:class:`app.autosave.Autosaver`) keeps the crash recovery.
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
        self.state = OpenStudy()
        self.confirm_close = True  # ask before cancelling running jobs on close

        self.viewer = OrthoViewer()
        self.viewer.cursorMoved.connect(lambda s: self.statusBar().showMessage(s))
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.statusBar().addPermanentWidget(self.progress)

        self.display = DisplayPanel()
        self.segment_panel = SegmentPanel()
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
        self._assemble()
        self._build_menu()
        # Qt, pyqtgraph and (after the warm-up) the ML backend leave hundreds of thousands of long-lived
        # objects: out of the collector's sight, a full collection takes ms, not 80-120 ms of GIL
        gc.freeze()

    # -- assembly ---------------------------------------------------------------
    def _assemble(self) -> None:
        """Make the controllers, each with what it uses, and wire the panels to the viewer."""
        status = self.statusBar()
        services = WindowServices(
            parent=self, state=self.state, jobs=self.jobs, start_job=self.start_job, show_error=self.show_error,
            status=status.showMessage, set_title=self.setWindowTitle, settings=self.settings,
            studyLoaded=self.studyLoaded, segmented=self.segmented, summaryUpdated=self.summaryUpdated,
            jobFailed=self.jobFailed)
        v, sp, res, tabs = self.viewer, self.segment_panel, self.results, self.tabs
        self.display.bind(v.state)  # the panel writes window, mode and overlays into the viewer's state and shows it
        self.preferences = PreferencesController(services, sp)
        self.segmentation = SegmentationController(services, v, sp, res, tabs,
                                                   engine=lambda: self.preferences.prefs.engine)
        measure = self.segmentation.update_summary
        self.editing = EditingController(services, v, sp, measure)
        res.lesionClicked.connect(v.set_cursor)
        self.review = ReviewController(services, v, res, sp, tabs, tool=lambda: self.editing.tool, measure=measure)
        self.addActions(res.lesions.actions())  # the review keys work whichever tab is shown
        self.training = TrainingController(services, self.train_panel, sp)
        self.files = StudyFiles(services, v, res, measure, self.segmentation.show_segmentation)
        # crash recovery: background saves, the offer to restore; saving the segmentation clears it
        self.autosave = autosave.for_window(services, self.segmentation.show_segmentation)
        self.exports = ExportController(services, v, saved=self.autosave.clear)
        self.training_set = TrainingSetController(services, self.train_panel, saved=self.autosave.clear)
        self.pacs = PacsController(services, self.files.open_path)
        self.phase = PhaseController(services, res)
        self.followup = FollowupController(services, models=sp.selected_models,
                                           engine=lambda: self.preferences.prefs.engine)
        self.about = AboutController(services, engine=lambda: self.preferences.prefs.engine,
                                     last_engines=lambda: self.segmentation.last_engines)

    def _build_menu(self) -> None:
        """The menu bar, in order; each controller adds its own entries."""
        bar = self.menuBar()
        m = bar.addMenu("&File")
        self.files.build_menu(m)  # Open ..., Recent
        self.exports.build_menu(m)  # Export >
        self.pacs.build_menu(m, open_before=self.files.recent_menu.menuAction())  # Open from / Send to PACS...
        self.training_set.build_menu(m)  # Add to training set...
        m.addSeparator()
        self.followup.build_menu(m)  # Compare with earlier study...
        m.addSeparator()
        m.addAction("&Quit", self.close, "Ctrl+Q")
        self.editing.build_menu(bar)
        self.preferences.build_menu(bar)
        self.about.build_menu(bar)

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

    # -- drag and drop ----------------------------------------------------------
    def dragEnterEvent(self, ev) -> None:
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        """A DICOM folder or a volume file dropped onto the window opens (the first one dropped)."""
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            ev.acceptProposedAction()
            self.files.open_path(paths[0])

    # -- layout and closing -----------------------------------------------------
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
