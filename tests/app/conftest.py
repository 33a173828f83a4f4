import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Keep the demo cache and the user's models folder out of the real home during tests."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setattr("core.synthetic.demo.cache_dir", lambda: base / "demo-cache")
    monkeypatch.setattr("core.catalog.library.user_models_dir", lambda: base / "user-models")
    monkeypatch.setattr("app.widgets.train_panel.user_models_dir", lambda: base / "user-models")
    return base


@pytest.fixture(autouse=True)
def isolated_autosave(tmp_path, monkeypatch):
    """Each test its own crash-recovery folder: no test is offered another's unsaved segmentation."""
    folder = tmp_path / "autosave"
    monkeypatch.setattr("core.study.autosave.autosave_dir", lambda: folder)
    return folder


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    win.confirm_close = False
    qtbot.addWidget(win)
    win.show()
    yield win
    win.jobs.cancel_all()
    assert not win.jobs.busy


@pytest.fixture(scope="session")
def threshold_models(tmp_path_factory):
    from tests.core.models import threshold_model
    root = tmp_path_factory.mktemp("gui-models")
    return str(threshold_model(root / "liver", "liver", 60)), str(threshold_model(root / "tumor", "tumor", 400))


def wait_idle(qtbot, win, timeout=120000):
    qtbot.waitUntil(lambda: not win.jobs.busy, timeout=timeout)


def demo_segmented(win, qtbot, label=None):
    """Open the demo study and show ``label`` (default: its reference) as the segmentation, measured."""
    from core.study.session import Segmented
    with qtbot.waitSignal(win.studyLoaded, timeout=60000):
        win.files.open_demo()
    wait_idle(qtbot, win)
    with qtbot.waitSignal(win.summaryUpdated, timeout=60000):
        shown = win.state.study.reference.copy() if label is None else label
        win.segmentation.show_segmentation(Segmented(shown), win.state.session)
    return win
