"""The real main window for the screenshot scripts (``bench/recipes/*_screenshot*.py``): made, shown at the
docs' size, with its settings in a throw-away file, and a way to wait for one of its signals."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def open_window(settings_file: str | Path):
    """(the QApplication, a shown MainWindow 1600 x 950 whose settings live in ``settings_file``).

    The user data and config folders are private to the run (a fresh temporary folder), so no
    recovery of an earlier run's segmentation is offered over the picture and nothing of the
    user's is changed."""
    private = tempfile.mkdtemp(prefix="liverseg-shots-")
    os.environ["XDG_DATA_HOME"] = os.path.join(private, "data")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(private, "config")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication(sys.argv)
    from app.main_window import MainWindow
    w = MainWindow(QSettings(str(settings_file), QSettings.Format.IniFormat))
    w.confirm_close = False
    w.resize(1600, 950)
    w.show()
    return app, w


def wait(signal, ms: int = 600000) -> None:
    """Run the event loop until ``signal`` fires (or ``ms`` pass)."""
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
