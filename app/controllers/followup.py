"""*File > Compare with earlier study...*: the open study (the follow-up, with its working, reviewed
label) against an earlier one of the same patient.

The earlier study is a DICOM folder (with several series or acquisitions, the series chooser) or a
volume file; it is segmented with the models selected in the Segment tab unless it comes with a
segmentation (a label file given, or a dataset case's labels). Two different patients are compared
only when the user confirms. :func:`core.followup.compare.compare_studies` runs in a worker with a
progress dialog that cancels; :class:`app.widgets.compare_view.CompareWindow` then shows both
studies with linked cursors, the lesion table and the categories. Changing the targets recomputes
the categories (:meth:`core.followup.compare.Comparison.with_targets`, fast, in the GUI thread);
*Export...* writes compare.json, compare.csv and compare.pdf (:mod:`core.followup.outputs`:
atomic, never into a source DICOM folder).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog

from core.followup.compare import Comparison
from core.followup.outputs import write_all
from core.followup.timepoint import (
    FollowupError,
    Patient,
    TimePoint,
    check_same_patient,
)
from core.io.volume_file import is_volume_file
from core.study.session import Segmented, StudySession

from .. import background
from ..widgets.compare_view import CompareWindow
from ..workers import Job
from .services import WindowServices
from .study_files import VOLUME_FILTER, scan_and_choose

OUTPUTS = ("compare.json", "compare.csv", "compare.pdf")
Confirm = Callable[[str], bool]


class FollowupController:
    """Owns *Compare with earlier study...* and the comparison window.

    Receives the window's services, ``models()`` (the Segment tab's (liver, tumour) model paths;
    the earlier study is segmented with them) and ``engine()`` (the inference engine setting).
    ``window``, ``comparison``, ``baseline`` and ``followup`` are the last comparison shown.
    """

    def __init__(self, services: WindowServices, models: Callable[[], tuple[str | None, str | None]],
                 engine: Callable[[], str]):
        self.services, self.state = services, services.state
        self.models, self.engine = models, engine
        self.window: CompareWindow | None = None
        self.comparison: Comparison | None = None
        self.baseline: TimePoint | None = None
        self.followup: TimePoint | None = None
        self.sources: list[str] = []  # where exports never go: both studies' folders
        self._job: Job | None = None
        self._progress: QProgressDialog | None = None
        self._confirm: Confirm | None = None

    def build_menu(self, menu) -> None:
        menu.addAction("Co&mpare with earlier study...", self.compare_dialog)

    # -- choosing the earlier study ----------------------------------------------------
    def compare_dialog(self) -> None:
        """Ask for the earlier study (a DICOM folder or a volume file), then :meth:`compare_with`."""
        if self._open_followup() is None:
            return
        parent = self.services.parent
        box = QMessageBox(QMessageBox.Icon.Question, "Compare with earlier study",
                          "The study open now is the follow-up. Open the earlier (baseline) study from:", parent=parent)
        folder = box.addButton("DICOM folder...", QMessageBox.ButtonRole.AcceptRole)
        file = box.addButton("Volume file...", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        path = ""
        if box.clickedButton() is folder:
            path = QFileDialog.getExistingDirectory(parent, "Earlier study: DICOM folder")
        elif box.clickedButton() is file:
            path = QFileDialog.getOpenFileName(parent, "Earlier study: CT volume", "", VOLUME_FILTER)[0]
        if path:
            self.compare_with(path)

    def _open_followup(self) -> StudySession | None:
        session = self.state.session
        if session is None or (session.study.label is None and session.study.reference is None):
            self.services.show_error("Open and segment the follow-up study first: the study open now is compared "
                                     "with an earlier one.", "")
            return None
        return session

    def compare_with(self, path: str, choose=None, labels: str | None = None,
                     confirm: Confirm | None = None) -> Job | None:
        """Compare the open study with the earlier study at ``path``.

        ``choose(volumes)`` picks the series in tests (else the chooser); ``labels``: the earlier
        study's label file (else it is segmented, unless it has labels); ``confirm(message)``
        answers whether to compare two different patients (else a question box). Returns the
        first job (opening or scanning)."""
        followup = self._open_followup()
        if followup is None:
            return None
        self._confirm = confirm

        def opened(baseline: StudySession) -> None:
            self._prepare(baseline, followup, labels)
        if is_volume_file(path):
            return self._start(Job("Open earlier study", StudySession.open, path), opened)
        return scan_and_choose(self.services, path,
                               lambda info: self._start(Job("Load earlier series", StudySession.open_series,
                                                            info, path),
                                                        opened), choose)

    # -- the steps, each a job --------------------------------------------------------
    def _prepare(self, baseline: StudySession, followup: StudySession, labels: str | None) -> None:
        """Check the patients, then label the earlier study (file, its own, or segmented) and compare."""
        if followup is not self.state.session:
            self._end("another study was opened: comparison abandoned")
            return
        try:
            check_same_patient(Patient.of_session(baseline), Patient.of_session(followup))
            allow = False
        except FollowupError as exc:
            if not self._ask_different(str(exc)):
                self._end("comparison cancelled: different patients")
                return
            allow = True
        s = baseline.study

        def labelled(result: Segmented) -> None:
            baseline.adopt(result)
            self._compare(baseline, followup, allow)
        if labels:
            self._start(Job("Open earlier segmentation", baseline.read_label, labels),
                        lambda label: labelled(Segmented(label, {"device": f"loaded from {Path(labels).name}"})))
        elif s.label is not None or s.reference is not None:
            self._compare(baseline, followup, allow)
        else:
            liver, tumour = self.models()
            if liver is None:
                self._end("")
                self.services.show_error("Choose a liver model in the Segment tab: the earlier study is segmented "
                                         "with the models selected there.", "")
                return
            self._start(Job("Segment earlier study", background.segment_study, baseline, liver, tumour, self.engine()),
                        labelled)

    def _ask_different(self, message: str) -> bool:
        if self._confirm is not None:
            return self._confirm(message)
        answer = QMessageBox.question(self.services.parent, "Different patients?",
                                      message.split("; compare anyway")[0] + ".\n\nCompare these studies anyway?")
        return answer == QMessageBox.StandardButton.Yes

    def _compare(self, baseline: StudySession, followup: StudySession, allow: bool) -> None:
        s = followup.study
        label = s.label if s.label is not None else s.reference  # the working, reviewed label
        self.sources = [*baseline.source_dirs, *followup.source_dirs]
        self._start(Job("Compare", background.compare_followup, baseline, followup, label, allow),
                    lambda result: self._show(result, followup))

    def _show(self, result: tuple[Comparison, TimePoint, TimePoint], followup: StudySession) -> None:
        self._end("")
        if followup is not self.state.session:
            return
        self.comparison, self.baseline, self.followup = result
        if self.window is not None:
            self.window.close()
        self.window = CompareWindow(self.comparison, self.baseline, self.followup, self.services.parent)
        self.window.targetsChanged.connect(self.set_targets)
        self.window.exportRequested.connect(lambda: self.export())
        self.window.show()
        c = self.comparison
        self.services.status(f"Compared: RECIST 1.1 {c.recist.category}, mRECIST {c.mrecist.category} "
                             f"({c.seconds:.1f} s)")

    # -- progress and cancel ----------------------------------------------------------
    def _start(self, job: Job, done: Callable) -> Job:
        """Run one step with the progress dialog (its Cancel cancels the step, so the comparison)."""
        if self._progress is None:
            dlg = QProgressDialog("", "Cancel", 0, 0, self.services.parent)
            dlg.setWindowTitle("Compare with earlier study")
            dlg.setWindowModality(Qt.WindowModality.WindowModal)
            dlg.setAutoClose(False)
            dlg.setAutoReset(False)
            dlg.setMinimumDuration(0)
            dlg.canceled.connect(self.cancel)
            self._progress = dlg
        self._progress.setLabelText(job.name + "...")
        self._progress.setRange(0, 0)
        self._progress.show()
        job.progress.connect(self._on_progress)
        job.failed.connect(lambda *_: self._end(""))
        job.cancelled.connect(lambda: self._end("comparison cancelled"))
        self._job = job
        return self.services.start_job(job, done)

    def _on_progress(self, ev) -> None:
        if self._progress is not None and ev.total > 0:
            self._progress.setRange(0, ev.total)
            self._progress.setValue(min(ev.done, ev.total))
            if ev.message:
                self._progress.setLabelText(f"{ev.stage}: {ev.message}")

    def cancel(self) -> None:
        """Cancel the running step (opening, segmenting or comparing)."""
        if self._job is not None:
            self._job.token.cancel()

    def _end(self, message: str) -> None:
        self._job = None
        if self._progress is not None:
            dlg, self._progress = self._progress, None
            dlg.canceled.disconnect(self.cancel)
            dlg.close()
            dlg.deleteLater()
        if message:
            self.services.status(message)

    # -- targets and export -----------------------------------------------------------
    def set_targets(self, targets) -> None:
        """The reader's targets (baseline ids; None: the software's): the categories again."""
        if self.comparison is None or self.window is None:
            return
        try:
            self.comparison = self.comparison.with_targets(targets)
        except FollowupError as exc:
            self.window.say(str(exc), error=True)
            return
        self.window.show_comparison(self.comparison)

    def export(self, folder: str | None = None, force: bool | None = None) -> Job | None:
        """compare.json, compare.csv and compare.pdf into ``folder`` (asked when None); existing files
        are replaced only when the user agrees (``force``)."""
        if self.comparison is None:
            return None
        parent = self.window or self.services.parent
        folder = folder or QFileDialog.getExistingDirectory(parent, "Export the comparison into")
        if not folder:
            return None
        existing = [n for n in OUTPUTS if (Path(folder) / n).exists()]
        if existing and force is None:
            force = QMessageBox.question(parent, "Export", f"{', '.join(existing)} exist in {folder}. Replace "
                                         f"them?") == QMessageBox.StandardButton.Yes
            if not force:
                return None

        def written(paths) -> None:
            text = f"Wrote {', '.join(Path(p).name for p in paths)} into {folder}"
            self.services.status(text)
            if self.window is not None:
                self.window.say(text)
        job = Job("Export comparison", background.call, write_all, folder, self.comparison, self.baseline,
                  self.followup, bool(force), self.sources)
        return self.services.start_job(job, written)
