"""Running ``core`` jobs in QThreads; progress and results come back as signals in the GUI thread.

A :class:`Job` wraps a plain ``core`` function ``fn(*args, progress=..., cancel=...)``.
The Job object lives in the GUI thread. Its QThread runs the function and touches
no Qt object: it only puts messages (progress, result, error) on a thread-safe
queue, which a QTimer in the GUI thread drains and turns into the Job's signals.
So everything connected to a Job's signals runs in the GUI thread, and no Python
object crosses threads through Qt's signal machinery (PYSIDE-3124).

PySide6 6.12.0 corrupts reference counts when a Python slot runs in the GUI
thread while another thread runs code that releases the GIL (numpy, scipy,
TensorFlow): the interpreter aborts with "deallocating True or False"/"None",
whatever the thread type. Reproduced here in 40 lines; 6.10.3 and 6.11.3 run the
same code clean, hence ``PySide6-Essentials<6.12`` in pyproject.toml.
:meth:`JobRunner.cancel_all` cancels and joins every job (the main window calls it
when it closes), so no QThread outlives the window.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import sys
import threading
import traceback
import warnings
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from core.runtime.errors import Cancelled, LiverSegError, one_line
from core.runtime.jobs import CancelToken

log = logging.getLogger(__name__)
PUMP_MS = 15
# Job threads run this much nicer than the GUI thread (Linux: per thread; the thread pools a job
# starts, ONNX Runtime's and TensorFlow's, inherit it). On two cores the cascade's threads otherwise
# take the GUI thread's core, and painting a slice that takes 40 ms alone takes 150 ms.
WORKER_NICE = 5


def lower_this_thread() -> None:
    """Give the calling (worker) thread a lower CPU priority than the GUI thread."""
    try:
        if sys.platform.startswith("linux"):
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICE))
        elif sys.platform == "win32":
            kernel32 = ctypes.windll.kernel32
            kernel32.SetThreadPriority(kernel32.GetCurrentThread(), -1)  # THREAD_PRIORITY_BELOW_NORMAL
    except (OSError, AttributeError) as exc:  # a sandbox may refuse it: the job runs all the same
        log.debug("worker priority unchanged: %s", exc)


class Job(QObject):
    """One job. Signals (always emitted in the GUI thread): ``progress(Progress)``,
    ``finished(object)``, ``failed(str message, str details)``, ``cancelled()``."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()

    def __init__(self, name: str, fn: Callable, *args, **kwargs):
        super().__init__()
        self.name, self.fn, self.args, self.kwargs = name, fn, args, kwargs
        self.token = CancelToken()
        self.messages: queue.SimpleQueue = queue.SimpleQueue()
        self.done = False

    def release(self) -> None:
        """Drop what the job held once it has ended: its arguments (a study's arrays) and the
        slots connected to it. A slot that closes over the job makes a cycle through Qt's C++
        connection list that Python's collector cannot see; without this every job, and every
        study it was given, would stay alive for the life of the window."""
        self.fn, self.args, self.kwargs = None, (), {}
        with warnings.catch_warnings():  # PySide warns (and may raise) when nothing is connected
            warnings.simplefilter("ignore", RuntimeWarning)
            for sig in (self.progress, self.finished, self.failed, self.cancelled):
                try:
                    sig.disconnect()
                except (RuntimeError, TypeError):
                    pass


class _JobThread(QThread):
    """Runs a job's function; communicates only through ``job.messages``."""

    def __init__(self, job: Job):
        super().__init__()
        self.job = job

    def run(self) -> None:
        job = self.job
        put = job.messages.put
        lower_this_thread()
        try:
            result = job.fn(*job.args, progress=lambda ev: put(("progress", ev)), cancel=job.token, **job.kwargs)
        except Cancelled:
            put(("cancelled",))
        except LiverSegError as exc:
            put(("failed", str(exc), traceback.format_exc()))
        except Exception as exc:  # an unexpected bug: still a dialog, never a silent crash
            log.exception("job %s failed", job.name)
            put(("failed", f"{job.name} failed: {one_line(exc)}", traceback.format_exc()))
        else:
            put(("finished", result))


class JobRunner(QObject):
    """Starts jobs on threads, relays their messages as signals, and keeps them until they end."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._running: dict[Job, _JobThread] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(PUMP_MS)
        self._timer.timeout.connect(self._pump)

    def start(self, job: Job) -> Job:
        thread = _JobThread(job)
        self._running[job] = thread
        thread.start()
        self._timer.start()
        return job

    @Slot()
    def _pump(self) -> None:
        for job, thread in list(self._running.items()):
            latest: dict = {}  # the newest progress of each step per tick (a "recipe" step survives batches)
            while True:
                try:
                    msg = job.messages.get_nowait()
                except queue.Empty:
                    break
                if msg[0] == "progress":
                    latest.pop(getattr(msg[1], "stage", None), None)
                    latest[getattr(msg[1], "stage", None)] = msg[1]
                    continue
                self._emit_progress(job, latest)
                thread.wait()  # the function has returned; the thread is ending
                del self._running[job]
                job.done = True
                if msg[0] == "finished":
                    job.finished.emit(msg[1])
                elif msg[0] == "failed":
                    job.failed.emit(msg[1], msg[2])
                else:
                    job.cancelled.emit()
                job.release()
                break
            self._emit_progress(job, latest)
        if not self._running:
            self._timer.stop()

    @staticmethod
    def _emit_progress(job: Job, latest: dict) -> None:
        """Emit the kept events in the order of their last arrival, then forget them."""
        for ev in latest.values():
            job.progress.emit(ev)
        latest.clear()

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def cancel_all(self, wait_ms: int = 60000) -> None:
        for job in list(self._running):
            job.token.cancel()
        for job, thread in list(self._running.items()):
            if not thread.wait(wait_ms):
                log.error("job %s did not stop within %d ms", job.name, wait_ms)
            else:
                job.release()
        self._running.clear()
        self._timer.stop()
