"""Segmenting the open study (the Segment tab's *Segment* and *Cancel*), showing the result and
measuring the working label in a worker (the Results tab). Editing, the review and loading a
segmentation from a file reuse :meth:`SegmentationController.update_summary` and
:meth:`SegmentationController.show_segmentation`."""

from __future__ import annotations

import gc
from collections.abc import Callable

from core.inference.engines import engines_line
from core.study.session import Segmented, StudySession

from .. import background
from ..workers import Job
from .services import WindowServices


class SegmentationController:
    """Runs the cascade on the open study and shows and measures its result.

    Receives the window's services, the viewer, the Segment and Results panels, the tabs (the
    Results tab is shown after a segmentation) and ``engine()``, the inference engine setting.
    """

    def __init__(self, services: WindowServices, viewer, segment_panel, results, tabs, engine: Callable[[], str]):
        self.services, self.state = services, services.state
        self.viewer, self.segment_panel, self.results, self.tabs = viewer, segment_panel, results, tabs
        self.engine = engine
        self.last_engines: dict = {}  # the engines of the last segmentation (Help > About)
        self._segment_job: Job | None = None
        segment_panel.segmentRequested.connect(self.run_segmentation)
        segment_panel.cancelRequested.connect(self.cancel_segmentation)

    def run_segmentation(self, liver_path: str, tumour_path: str = "") -> Job | None:
        session = self.state.session
        if session is None:
            self.services.show_error("Open a study first.", "")
            return None
        job = Job("Segment", background.segment_study, session, liver_path, tumour_path or None, self.engine())
        job.progress.connect(lambda ev: self.segment_panel.set_progress(ev.done, ev.total))
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(lambda *_: self.segment_panel.set_busy(False))
        self.segment_panel.set_busy(True)
        self._segment_job = job
        return self.services.start_job(job, lambda result: self.show_segmentation(result, session))

    def cancel_segmentation(self) -> None:
        if self._segment_job is not None:
            self._segment_job.token.cancel()

    def show_segmentation(self, result: Segmented, session: StudySession) -> None:
        """Show a segmentation of ``session`` (ignored when another study was opened meanwhile)."""
        if session is not self.state.session:
            return
        session.adopt(result)
        label, info, study = result.label, result.info, session.study
        self.last_engines = session.engines
        self.viewer.state.focus_liver(label)  # the views go to the liver, wherever they were
        mode = "outlines" if study.reference is not None else "prediction"
        self.viewer.set_labels(label, study.reference, mode=mode)  # one redraw per view
        engines = engines_line(self.last_engines) or info.get("device", "?")
        self.services.status(f"Segmented in {result.seconds:.1f} s ({engines})"
                             + ("   " + "; ".join(result.warnings) if result.warnings else ""))
        self.tabs.setCurrentWidget(self.results)
        self.update_summary(label, result.snapshot)
        self.services.segmented.emit()

    def update_summary(self, label, snapshot=None) -> None:
        """Measure ``label`` in a worker, on ``snapshot`` (a copy nobody edits) or a fresh copy."""
        session = self.state.session
        job = Job("Measure", session.measurements, label.copy() if snapshot is None else snapshot,
                  compare=label is not session.study.reference)
        self.services.start_job(job, lambda result: self._show_summary(result, session), quiet=True)

    def _show_summary(self, result, session: StudySession) -> None:
        if session is not self.state.session:
            return
        session.set_measurements(*result)
        self.results.show_summary(self.state.summary)
        self.results.show_metrics(self.state.case_report)
        self.services.summaryUpdated.emit()

    def warm_up_backend(self) -> Job:
        """Import the Keras backend in the background (once), so the first Segment does not pay for it."""
        return self.services.start_job(Job("Loading the Keras backend", background.warm_up), lambda _: gc.freeze(),
                                       quiet=True)
