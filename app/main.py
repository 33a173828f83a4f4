"""Starting the GUI: ``liverseg`` / ``liverseg gui [PATH] [--demo] [--screenshot PNG --quit]``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def _log_to_file() -> Path:
    import platformdirs
    folder = Path(platformdirs.user_log_dir("LiverSegStudio", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "liverseg.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    return path


def run_gui(args) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    try:
        _log_to_file()
    except OSError:
        pass
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LiverSeg Studio")
    app.setOrganizationName("LiverSegStudio")
    from .main_window import MainWindow
    win = MainWindow()
    win.show()
    status = {"code": 0}

    def after_load():
        if win.jobs.busy:  # let measurements finish so the screenshot shows them
            QTimer.singleShot(100, after_load)
            return
        if args.screenshot:
            app.processEvents()
            win.grab().save(args.screenshot)
        if args.quit:
            QTimer.singleShot(0, app.quit)

    def on_fail(*_):
        status["code"] = 2
        if args.quit:
            QTimer.singleShot(0, app.quit)

    win.confirm_close = not args.quit
    if not args.quit:
        QTimer.singleShot(1500, win.warm_up_backend)  # after the first study is on screen
    win.jobFailed.connect(on_fail)
    if args.path:
        win.open_path(args.path, choose=lambda series: 0)
    else:
        win.open_demo()
    win.studyLoaded.connect(lambda: QTimer.singleShot(300, after_load))
    app.exec()
    return status["code"]
