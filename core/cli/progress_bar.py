"""Progress on the terminal for the CLI: a rich bar with rate and ETA, or plain lines.

The long jobs report :class:`~core.runtime.jobs.Progress` events (stage, done, total, message). On a
terminal each stage gets a line of `rich <https://rich.readthedocs.io>`_'s progress display
(bar, done/total, rate, time left, message); when the output is not a terminal (a log file, a
batch system), one plain line at most every few seconds per stage, with the same rate and
ETA, so logs stay readable.
"""

from __future__ import annotations

import atexit
import sys
import time
from typing import Any

from ..runtime.jobs import Progress


def format_eta(seconds: float | None) -> str:
    """``1:02:03`` / ``02:03``, or ``--:--`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0 or seconds > 1e7:
        return "--:--"
    s = int(round(seconds))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class _Stage:
    """Rate and ETA of one stage, measured from its first event."""

    def __init__(self, now: float, done: int):
        self.t0, self.done0 = now, done
        self.last: float | None = None  # when the last plain line was written

    def rate(self, now: float, done: int) -> float | None:
        dt = now - self.t0
        return (done - self.done0) / dt if dt > 0.5 and done > self.done0 else None

    def eta(self, now: float, done: int, total: int) -> float | None:
        r = self.rate(now, done)
        return (total - done) / r if r and total else None


class ProgressBar:
    """A callable for ``progress=``: feeds rich's display on a terminal, plain lines otherwise."""

    def __init__(self, stream=None, min_interval: float = 0.1, plain_interval: float = 2.0,
                 tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.tty = (hasattr(self.stream, "isatty") and self.stream.isatty()) if tty is None else tty
        self.min_interval = min_interval
        self.plain_interval = plain_interval
        self._stages: dict[str, _Stage] = {}
        self._rich: Any = None  # a rich.progress.Progress once started (rich is imported lazily)
        self._tasks: dict[str, int] = {}

    def __call__(self, ev: Progress) -> None:
        now = time.monotonic()
        st = self._stages.get(ev.stage)
        if st is None:
            st = self._stages[ev.stage] = _Stage(now, ev.done)
        if self.tty:
            self._rich_update(ev)
            return
        final = bool(ev.total) and ev.done >= ev.total
        if not final and st.last is not None and now - st.last < self.plain_interval:
            return
        st.last = now
        self.stream.write(self.plain_line(ev, st.rate(now, ev.done), st.eta(now, ev.done, ev.total)) + "\n")
        self.stream.flush()

    @staticmethod
    def plain_line(ev: Progress, rate: float | None, eta: float | None) -> str:
        if ev.total:
            parts = [f"{ev.stage:8s} {ev.done}/{ev.total} {100 * ev.done // max(ev.total, 1):3d}%"]
        else:
            parts = [f"{ev.stage:8s} {ev.done}"]
        if rate is not None:
            parts.append(f"{rate:.1f}/s")
            if ev.total and ev.done < ev.total:
                parts.append(f"ETA {format_eta(eta)}")
        if ev.message:
            parts.append(ev.message)
        return "  ".join(parts)

    # -- rich, on a terminal ------------------------------------------------------
    def _rich_update(self, ev: Progress) -> None:
        if self._rich is None:
            self._rich = _rich_progress(self.stream, self.min_interval)
            self._rich.start()
            atexit.register(self.close)
        task = self._tasks.get(ev.stage)
        if task is None:
            task = self._tasks[ev.stage] = self._rich.add_task(ev.stage, total=ev.total or None,
                                                               completed=ev.done, message=ev.message)
        self._rich.update(task, completed=ev.done, total=ev.total or None, message=ev.message)

    def close(self) -> None:
        """Stop the live display (cursor back, last state left on screen); idempotent."""
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
            self._tasks.clear()


def _rich_progress(stream, refresh_interval: float):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f}/s" if task.speed else "", style="progress.data.speed")

    return RichProgress(TextColumn("{task.description:8s}"), BarColumn(bar_width=30), MofNCompleteColumn(),
                        RateColumn(), TimeRemainingColumn(), TextColumn("{task.fields[message]}"),
                        console=Console(file=stream), refresh_per_second=max(1.0, 1.0 / max(refresh_interval, 1e-3)))
