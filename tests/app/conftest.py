import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def demo_cache(tmp_path_factory, monkeypatch):
    """Keep the demo study's cache out of the user's folders during tests."""
    folder = tmp_path_factory.getbasetemp() / "demo-cache"
    monkeypatch.setattr("core.demo.cache_dir", lambda: folder)
    return folder


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    yield win
    win.jobs.cancel_all()
    assert not win.jobs.busy
