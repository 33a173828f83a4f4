"""Whether OpenGL can run in this process, decided (on Linux) in a child process so a broken driver
never takes the app down.

The child (``python -m app.widgets.gl_probe``, or ``liverseg gl-probe`` in the bundle) makes a GL
context on the same display and prints one JSON line: the renderer and the driver libraries that
link LLVM. The window then isolates those from TensorFlow's LLVM
(:func:`core.runtime.gl_isolation.isolate`) before making its own context. :class:`GLProbe` runs the
child without blocking the GUI thread; the answer is kept for the rest of the session.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, QTimer
from PySide6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext

from core.runtime.gl_isolation import isolate, llvm_users, mapped_libraries

PROBE_TIMEOUT_MS = 30000
_ANSWER: dict | None = None  # the child's answer, once per process


def probe_main() -> int:
    """The child: make a context, draw nothing, print ``{"ok", "renderer", "llvm_libs"}`` or ``{"ok": false}``."""
    app = QGuiApplication(sys.argv[:1])
    surface = QOffscreenSurface()
    surface.create()
    ctx = QOpenGLContext()
    if not ctx.create() or not ctx.makeCurrent(surface):
        print(json.dumps({"ok": False, "platform": app.platformName()}))
        return 0
    f = ctx.functions()
    f.glClear(0x4000)  # GL_COLOR_BUFFER_BIT: the driver is really there
    renderer = f.glGetString(0x1F01) or "?"  # GL_RENDERER
    ctx.doneCurrent()
    print(json.dumps({"ok": True, "renderer": str(renderer), "llvm_libs": llvm_users(mapped_libraries())}))
    return 0


def probe_command() -> list:
    """The child's command line: the bundle's own executable, or this Python on this source tree."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "gl-probe"]
    return [sys.executable, "-m", "app.widgets.gl_probe"]


def problem_of(answer: dict, platform: str) -> str:
    """Why the 3D view cannot run in this process, in one line, from the child's ``answer``; "" when it
    can (the driver's LLVM, if any, isolated here first)."""
    tail = "; the slice views work as usual"
    if answer.get("crashed") is not None:
        return f"3D view unavailable: OpenGL failed in a test process ({answer['crashed']}){tail}"
    if not answer.get("ok"):
        return f"3D view unavailable: the display ({platform}) offers no OpenGL{tail}"
    why = isolate(answer.get("llvm_libs", []))
    return f"3D view unavailable: {answer.get('renderer', '?')}: {why}{tail}" if why else ""


class GLProbe:
    """Runs the child once per process (a QProcess: the GUI thread never waits) and calls
    ``done(answer)``; at once when the answer is known."""

    def __init__(self, parent, done: Callable[[dict], None]):
        self.done = done
        if _ANSWER is not None:
            QTimer.singleShot(0, lambda: done(_ANSWER))
            return
        if not sys.platform.startswith("linux"):  # one symbol namespace per library: no clash to isolate,
            answer = {"ok": QOpenGLContext().create(), "renderer": "", "llvm_libs": []}
            QTimer.singleShot(0, lambda: done(answer))
            return
        self.proc = QProcess(parent)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("QT_QPA_PLATFORM", QGuiApplication.platformName())
        root = str(Path(__file__).resolve().parents[2])
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (root, env.value("PYTHONPATH")) if p))
        self.proc.setProcessEnvironment(env)
        self.proc.finished.connect(self._finished)
        self.proc.errorOccurred.connect(self._error)
        self.timer = QTimer(parent, singleShot=True, interval=PROBE_TIMEOUT_MS)
        self.timer.timeout.connect(self._timeout)
        self.timed_out = False
        cmd = probe_command()
        self.proc.start(cmd[0], cmd[1:])
        self.timer.start()
        self._answered = False

    def _answer(self, answer: dict) -> None:
        global _ANSWER
        if self._answered:
            return
        self._answered = True
        self.timer.stop()
        if "crashed" not in answer or answer["crashed"] is None:
            _ANSWER = answer  # a crash or a timeout may be passing: ask again next time
        self.done(answer)

    def _finished(self, code: int, status) -> None:
        out = bytes(self.proc.readAllStandardOutput()).decode("utf-8", "replace").splitlines()
        lines = [ln for ln in out if ln.startswith("{")]
        if status == QProcess.ExitStatus.NormalExit and code == 0 and lines:
            try:
                self._answer(json.loads(lines[-1]))
                return
            except ValueError:
                pass
        what = (f"no answer in {PROBE_TIMEOUT_MS // 1000} s" if self.timed_out else
                "it crashed" if status != QProcess.ExitStatus.NormalExit else f"exit code {code}")
        self._answer({"ok": False, "crashed": what})

    def _timeout(self) -> None:
        self.timed_out = True
        self.proc.kill()  # _finished reports it

    def _error(self, err) -> None:
        if err == QProcess.ProcessError.FailedToStart:  # no finished signal follows
            self._answer({"ok": False, "crashed": "it could not be started"})


if __name__ == "__main__":
    sys.exit(probe_main())
