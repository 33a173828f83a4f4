"""Starting the GUI: ``liverseg`` / ``liverseg gui [PATH] [--demo] [--screenshot PNG --quit]``."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

HEAVY = ("tensorflow", "keras", "jax", "torch")


def launch_time() -> float:
    """When the user launched us (wall clock): LIVERSEG_LAUNCH_T set by a launcher or benchmark,
    else the process's own start time (Linux), else now."""
    env = os.environ.get("LIVERSEG_LAUNCH_T")
    if env:
        return float(env)
    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


class StartupTimings:
    """Seconds from launch to a window that takes input and to the first slice on screen, and
    which heavy ML modules were loaded by then (none should be: TensorFlow is lazy)."""

    def __init__(self, path: str):
        self.path, self.t0, self.data = path, launch_time(), {}

    def mark(self, key: str) -> None:
        if key not in self.data:
            self.data[key] = round(time.time() - self.t0, 4)
            self.data[key[:-2] + "_heavy_modules"] = sorted(
                m for m in sys.modules if m.split(".")[0] in HEAVY and "." not in m)

    def write(self) -> None:
        from core.runtime.atomic import write_json
        write_json(self.path, self.data)


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
    timings = StartupTimings(args.timings) if getattr(args, "timings", None) else None
    if timings:  # the first turn of the event loop: the window is shown and takes input
        QTimer.singleShot(0, lambda: timings.mark("window_ready_s"))

    def after_load():
        if win.jobs.busy:  # let measurements finish so the screenshot shows them
            QTimer.singleShot(100, after_load)
            return
        if timings:
            timings.write()
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
    from core.runtime.edition import keras_available
    warm = {"done": args.quit or not keras_available()}  # the lite edition has no Keras to warm up

    def first_slice_shown():
        if timings:  # after this turn's paint: the slice is on screen
            QTimer.singleShot(0, lambda: timings.mark("first_slice_s"))
        if not warm["done"]:  # import the Keras backend only once the first study is on screen
            warm["done"] = True
            QTimer.singleShot(1500, win.segmentation.warm_up_backend)

    win.studyLoaded.connect(first_slice_shown)
    win.jobFailed.connect(on_fail)
    if args.path:
        win.files.open_path(args.path, choose=lambda series: 0)
    else:
        win.files.open_demo()
    win.studyLoaded.connect(lambda: QTimer.singleShot(300, after_load))
    app.exec()
    return status["code"]
