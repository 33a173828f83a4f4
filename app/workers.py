"""Running ``core`` jobs in QThreads: progress and results come back as signals.

A :class:`Job` wraps a plain ``core`` function ``fn(progress=..., cancel=...)``.
It runs in its own QThread; its signals are delivered in the GUI thread. Jobs
never touch widgets. :func:`JobRunner.cancel_all` cancels and joins them all
(the main window calls it when it closes).
"""

from __future__ import annotations

import logging
import traceback
from typing import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.errors import Cancelled, LiverSegError, one_line
from core.jobs import CancelToken, Progress

log = logging.getLogger(__name__)


class Job(QObject):
    """One job. Signals: ``progress(Progress)``, ``finished(object)``, ``failed(str, str)``, ``cancelled()``."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)  # one-line message, details
    cancelled = Signal()

    def __init__(self, name: str, fn: Callable, *args, **kwargs):
        super().__init__()
        self.name, self.fn, self.args, self.kwargs = name, fn, args, kwargs
        self.token = CancelToken()

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn(*self.args, progress=self._emit, cancel=self.token, **self.kwargs)
        except Cancelled:
            self.cancelled.emit()
        except LiverSegError as exc:
            self.failed.emit(str(exc), traceback.format_exc())
        except Exception as exc:  # an unexpected bug: still a dialog, never a silent crash
            log.exception("job %s failed", self.name)
            self.failed.emit(f"{self.name} failed: {one_line(exc)}", traceback.format_exc())
        else:
            self.finished.emit(result)

    def _emit(self, ev: Progress) -> None:
        self.progress.emit(ev)


class JobRunner(QObject):
    """Starts jobs on threads and keeps them until they end."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._running: dict[Job, QThread] = {}

    def start(self, job: Job) -> Job:
        thread = QThread()
        job.moveToThread(thread)
        thread.started.connect(job.run)
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(thread.quit)
        thread.finished.connect(lambda j=job: self._running.pop(j, None))
        self._running[job] = thread
        thread.start()
        return job

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def cancel_all(self, wait_ms: int = 30000) -> None:
        for job, thread in list(self._running.items()):
            job.token.cancel()
            thread.quit()
            thread.wait(wait_ms)
        self._running.clear()
