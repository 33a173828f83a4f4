"""Crash recovery in the window: the working segmentation is saved in the background a few seconds
after the last edit (and after each segmentation), and offered back when its study is opened again.

:class:`Autosaver` is given what it needs explicitly: the window (parent of its dialogs, watched
for its close), a callable giving the open :class:`core.study.session.StudySession`, a callable
that shows a recovered segmentation like a new one, and the signals to follow
(:meth:`Autosaver.follow`); :func:`for_window` wires it to the window's services (the open study,
the signals) and :meth:`app.controllers.segmentation.SegmentationController.show_segmentation`.
The export and training-set controllers call :meth:`Autosaver.clear` when the user saves the
segmentation (NIfTI or DICOM SEG export, added to a training set). The files are
:mod:`core.study.autosave`'s: one per study in the user data folder,
written atomically. The identity check, the write (a copy of the label, then compression: a second
or two on a whole CT) and the read run in the autosaver's own worker threads, so the GUI never
waits for them, and they never count as "a job is running" when the window closes. Closing the
window writes what is still pending (the next start offers it back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QMessageBox

from core.study import autosave as au
from core.study.session import Segmented, StudySession

from .controllers.services import WindowServices
from .workers import Job, JobRunner

log = logging.getLogger(__name__)
DELAY_MS = 3000  # after the last edit: a stroke, undo, a review action, a fix


def _check(session: StudySession, folder: Path | None, progress=None, cancel=None):
    """(identity of the session's study, its recovery or None)."""
    identity = au.study_identity(session.study, session.source)
    return identity, au.find(identity, folder)


def _write(identity: au.StudyIdentity, label, review: dict, folder: Path | None, progress=None, cancel=None):
    """Copy the label (the user may paint meanwhile), then write it compressed, atomically."""
    return au.save(identity, label.copy(), review, folder)


class Autosaver(QObject):
    """Debounced background saves of the open study's segmentation and review, and the offer to
    restore them. Signals: ``saved(path)``, ``offered(message)`` (the offer is shown, in ``box``),
    ``restored()``, ``failed(message)``."""

    saved = Signal(str)
    offered = Signal(str)
    restored = Signal()
    failed = Signal(str)

    def __init__(self, window, session_of: Callable[[], StudySession | None],
                 show: Callable[[Segmented, StudySession], None], delay_ms: int = DELAY_MS,
                 folder: Path | None = None):
        super().__init__(window)
        self.window, self.session_of, self.show, self.folder = window, session_of, show, folder
        self.runner = JobRunner(self)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(delay_ms)
        self.timer.timeout.connect(self.save_now)
        self.box: QMessageBox | None = None
        self._session: StudySession | None = None  # the study followed, and its identity once known
        self._identity: au.StudyIdentity | None = None
        self._held = False  # edits wait: identity unknown, or the offer not answered yet
        self._dirty = False  # an edit came while held
        self._writing: Job | None = None
        self._again: tuple | None = None  # a save asked for while one was being written
        self._generation = 0  # bumped when the recovery is cleared: a write begun before is stale
        window.installEventFilter(self)

    def follow(self, opened, changed=()) -> Autosaver:
        """``opened``: a study is shown; ``changed``: its segmentation or review changed. Returns self.
        (When the user saves the segmentation, e.g. exports it, the window calls :meth:`clear`.)"""
        opened.connect(self.study_opened)
        for sig in changed:
            sig.connect(self.schedule)
        return self

    # -- opening ----------------------------------------------------------------
    def study_opened(self) -> None:
        """Save what is pending for the previous study, then look for a recovery of this one."""
        if self.timer.isActive():
            self.save_now()
        session = self.session_of()
        self._session, self._identity, self._held, self._dirty = session, None, True, False
        self._close_box()
        if session is None:
            return
        job = Job("Recovery check", _check, session, self.folder)
        job.finished.connect(lambda result: self._checked(session, *result))
        job.failed.connect(lambda message, _details: self._check_failed(session, message))
        self.runner.start(job)

    def _check_failed(self, session: StudySession, message: str) -> None:
        log.warning("no recovery check: %s", message)  # e.g. the volume file vanished: no autosave
        if session is self._session:
            self._session = None

    def _checked(self, session: StudySession, identity: au.StudyIdentity, info: au.RecoveryInfo | None) -> None:
        if session is not self._session:
            return
        self._identity = identity
        if info is None:
            self._release()
            return
        text = f"An unsaved segmentation of this study from {info.when()} was found."
        box = QMessageBox(QMessageBox.Icon.Question, "LiverSeg Studio", text, parent=self.window)
        box.setInformativeText("Restore it, or discard it for good?")
        restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(restore)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _r: self._answered(session, box, restore, discard))
        self.box = box
        box.open()  # not exec(): the window keeps painting; nothing is saved over it until answered
        self.offered.emit(text)

    def _answered(self, session: StudySession, box: QMessageBox, restore, discard) -> None:
        """Restore, Discard, or closed unanswered (the file stays until the next save replaces it)."""
        clicked = box.clickedButton()
        if self.box is box:
            self.box = None
        if session is not self._session:
            return
        if clicked is restore:
            self.restore()
        elif clicked is discard:
            self.discard()
        else:
            self._release()

    def restore(self) -> Job | None:
        """Read the recovery in a worker and show it as the working segmentation with its review."""
        session, identity = self._session, self._identity
        if session is None or identity is None:
            return None
        job = Job("Restore", au.load, identity, self.folder)
        job.finished.connect(lambda rec: self._restored(session, rec))
        job.failed.connect(lambda message, _d: self._restore_failed(session, message))
        return self.runner.start(job)

    def _restored(self, session: StudySession, rec: au.Recovery) -> None:
        if session is not self._session:
            return
        self.show(au.as_segmented(rec), session)
        self._dirty = False  # what the window says changed is what was just read
        self._release()
        self.restored.emit()

    def _restore_failed(self, session: StudySession, message: str) -> None:
        self.failed.emit(message)
        if session is self._session:
            self._release()

    def discard(self) -> None:
        """Remove the open study's recovery (the user chose to)."""
        if self._identity is not None:
            au.discard(self._identity, self.folder)
        self._release()

    def _release(self) -> None:
        self._held = False
        if self._dirty:
            self._dirty = False
            self.schedule()

    def _close_box(self) -> None:
        if self.box is not None:
            box, self.box = self.box, None
            box.close()

    # -- saving -----------------------------------------------------------------
    def schedule(self) -> None:
        """An edit: save a few seconds after the last one."""
        session = self.session_of()
        if session is None or session is not self._session or session.label is None:
            return
        if self._held:
            self._dirty = True
            return
        self.timer.start()

    def save_now(self) -> Job | None:
        """Start writing the followed study's segmentation (one write at a time)."""
        self.timer.stop()
        session, identity = self._session, self._identity
        if session is None or identity is None or session.label is None or self._held:
            return None
        review = dict(session.editor.review) if session.editor is not None else {}
        request = (identity, session.label, review)
        if self._writing is not None:
            self._again = request
            return None
        return self._start_write(request)

    def _start_write(self, request: tuple) -> Job:
        identity, label, review = request
        job = Job("Autosave", _write, identity, label, review, self.folder)
        generation = self._generation
        job.finished.connect(lambda path: self._written(identity, generation, path))
        job.failed.connect(lambda message, _d: self._write_failed(message))
        self._writing = job
        return self.runner.start(job)

    def _written(self, identity: au.StudyIdentity, generation: int, path) -> None:
        self._writing = None
        if generation != self._generation and self._again is None:
            au.discard(identity, self.folder)  # cleared while it was being written
        elif generation == self._generation:
            self.saved.emit(str(path))
        self._next()

    def _write_failed(self, message: str) -> None:
        self._writing = None
        log.warning("autosave failed: %s", message)
        self.failed.emit(message)
        self._next()

    def _next(self) -> None:
        if self._again is not None:
            request, self._again = self._again, None
            self._start_write(request)

    def clear(self, *_args) -> None:
        """The user saved the segmentation (exported it): its recovery is no longer needed."""
        self._generation += 1
        if self._identity is not None:
            au.discard(self._identity, self.folder)

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def flush(self) -> None:
        """Wait for the write in progress, then write what is pending, in this thread (closing)."""
        pending = self.timer.isActive() or self._again is not None
        self.timer.stop()
        self.runner.cancel_all()  # a write cannot be cancelled: this waits for it to end
        self._writing, self._again = None, None
        session, identity = self._session, self._identity
        if pending and session is not None and identity is not None and session.label is not None and not self._held:
            review = dict(session.editor.review) if session.editor is not None else {}
            try:
                au.save(identity, session.label, review, self.folder)
            except (OSError, ValueError) as exc:
                log.warning("autosave on close failed: %s", exc)

    def eventFilter(self, obj, ev) -> bool:
        """On closing the window: write what is pending now, and let no write outlive it."""
        if obj is self.window and ev.type() == QEvent.Type.Close:
            self.flush()
        return False


def for_window(services: WindowServices, show: Callable[[Segmented, StudySession], None]) -> Autosaver:
    """The main window's autosaver, from its services: it follows the open session
    (``services.state.session``), shows a recovered segmentation with ``show`` (as a new one:
    ``SegmentationController.show_segmentation``), and saves after each segmentation and each edit
    (every edit is measured again, so ``summaryUpdated`` follows them all)."""
    state = services.state
    return Autosaver(services.parent, lambda: state.session, show).follow(
        services.studyLoaded, (services.segmented, services.summaryUpdated))
