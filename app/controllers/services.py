"""What the main window lends its controllers, named in one typed object: the open study, the job
runner, the error dialog, the status bar, the settings and the window's signals. A controller reads
these, never the window itself, so what it depends on is stated in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QWidget

from core.runtime.summary import StudySummary
from core.study.editing import LabelEditor
from core.study.session import StudySession
from core.study.study import Study

from ..workers import Job, JobRunner


def _session_field(name: str) -> property:
    """A read-only attribute that is the open session's ``name`` (None without a session)."""
    return property(lambda self: getattr(self.session, name) if self.session is not None else None,
                    doc=f"the open session's {name}")


class OpenStudy:
    """The open study and its results: one :class:`core.study.session.StudySession` (None before a
    study opens), the same object ``liverseg predict`` uses. Study files set it; every controller
    reads it, and a job's result is dropped when ``session`` changed while it ran."""

    def __init__(self) -> None:
        self.session: StudySession | None = None

    # The open session's state, read-only here (None before a study is open).
    study: Study | None = _session_field("study")
    editor: LabelEditor | None = _session_field("editor")
    summary: StudySummary | None = _session_field("summary")
    case_report: dict | None = _session_field("case_report")


@dataclass(frozen=True)
class WindowServices:
    """The window's shared services.

    ``parent``: the parent of the controllers' dialogs and actions. ``start_job(job, on_done,
    busy_text="", quiet=False)``: run a job with the status bar's progress and the error dialog on
    failure. ``show_error(message, details)``: the warning dialog (emits ``jobFailed``).
    ``status(text)``: a status bar message. ``set_title(text)``: the window's title. The four
    signals are the window's own (``MainWindow`` documents them); controllers emit and follow them.
    """

    parent: QWidget
    state: OpenStudy
    jobs: JobRunner
    start_job: Callable[..., Job]
    show_error: Callable[[str, str], None]
    status: Callable[[str], None]
    set_title: Callable[[str], None]
    settings: QSettings
    studyLoaded: Any
    segmented: Any
    summaryUpdated: Any
    jobFailed: Any
