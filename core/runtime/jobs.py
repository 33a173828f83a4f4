"""Progress events and cancel tokens for long ``core`` jobs.

Long jobs (import, training, inference, export) are plain functions taking
``progress`` (a callable receiving :class:`Progress` events) and ``cancel``
(a :class:`CancelToken`). The GUI turns the events into Qt signals; the CLI
into a progress bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress event.

    Attributes:
        stage: short name of the step ("scan", "read", "import", ...).
        done: units finished so far.
        total: units in the step (0 when unknown).
        message: optional human-readable detail.
    """

    stage: str
    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressFn = Callable[[Progress], None]


class CancelToken:
    """A thread-safe flag a job checks between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def report(progress: ProgressFn | None, stage: str, done: int, total: int, message: str = "") -> None:
    """Send one event if a progress callback was given."""
    if progress is not None:
        progress(Progress(stage, done, total, message))


def check(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if the token is set."""
    if cancel is not None:
        cancel.raise_if_cancelled()
