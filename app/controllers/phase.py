"""The open study's contrast phase, read from its images (:func:`core.study.phase.detect_phase`) in
a worker: from the image alone when the study opens, then with the liver once it is segmented (a
working label loaded from a file counts too). Why: the phase decides what a reader may compare
(mRECIST needs arterial images) and a multi-phase series holds several; the scanner seldom records
it. Shown at the top of the Results tab; the reports write it too."""

from __future__ import annotations

from core.study.phase import PhaseEstimate
from core.study.session import StudySession

from ..workers import Job
from .services import WindowServices


class PhaseController:
    """Reads the phase whenever a study is shown or segmented; receives the window's services and
    the Results panel (its ``show_phase``)."""

    def __init__(self, services: WindowServices, results):
        self.services, self.state, self.results = services, services.state, results
        services.studyLoaded.connect(self.detect)
        services.segmented.connect(self.detect)

    def detect(self) -> Job | None:
        """Read the open study's phase in a worker, with its working label (else its reference)."""
        session = self.state.session
        if session is None:
            return None
        s = session.study
        label = s.label if s.label is not None else s.reference
        self.results.show_phase(None)
        return self.services.start_job(Job("Contrast phase", session.contrast_phase, label),
                                       lambda est: self._show(est, session, label), quiet=True)

    def _show(self, est: PhaseEstimate, session: StudySession, label) -> None:
        s = session.study
        if session is not self.state.session or (s.label if s.label is not None else s.reference) is not label:
            return  # another study, or a new segmentation whose own reading follows
        session.phase = est
        self.results.show_phase(est)  # not in the status bar: that keeps the study's own line
