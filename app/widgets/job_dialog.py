"""A dialog that runs ``core`` jobs in workers and says how they went in its own status line.

The PACS dialogs (:mod:`app.widgets.pacs_connections`, :mod:`app.widgets.pacs_dialog`) use it: a
query or a transfer never blocks the GUI thread, and its error shows as one line in the dialog,
not in a message box over it. The jobs run on the window's :class:`app.workers.JobRunner` (so
closing the window cancels them), or on the dialog's own one when it stands alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtWidgets import QDialog, QLabel

from core.runtime.errors import one_line

from ..workers import Job, JobRunner

log = logging.getLogger(__name__)
ERROR_STYLE = "color: #c0392b;"


class JobDialog(QDialog):
    """Expects subclasses to place ``self.status`` (the one-line status label) in their layout."""

    def __init__(self, runner: JobRunner | None = None, parent=None):
        super().__init__(parent)
        self.runner = runner if runner is not None else JobRunner(self)
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.error = ""  # the last error shown ("" after a success)

    def say(self, text: str, error: bool = False) -> None:
        """Show ``text`` as the dialog's one status line (red when it is an error)."""
        self.error = one_line(text) if error else ""
        self.status.setStyleSheet(ERROR_STYLE if error else "")
        self.status.setText(one_line(text))

    def run(self, job: Job, done: Callable, ended: Callable | None = None) -> Job:
        """Start ``job``; ``done(result)`` on success, the error in the status line on failure,
        ``ended()`` however it ends (to re-enable buttons)."""
        job.finished.connect(done)
        job.failed.connect(self._failed)
        name = job.name
        job.cancelled.connect(lambda: self.say(f"{name}: cancelled"))
        if ended is not None:
            for sig in (job.finished, job.failed, job.cancelled):
                sig.connect(lambda *_: ended())
        return self.runner.start(job)

    def _failed(self, message: str, details: str) -> None:
        log.error("%s\n%s", message, details)
        self.say(message, error=True)
