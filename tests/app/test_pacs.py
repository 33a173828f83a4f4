"""The PACS in the GUI, against a real private Orthanc (the ``orthanc`` fixture): saved connections
(the secret in the keyring, never in pacs.json), Test connection, Open from PACS (search, series,
retrieve with progress, the window opens the series), errors as one line, Send to PACS (a DICOM
SEG arrives in Orthanc)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.pacs import connections as pc
from core.pacs.connections import PacsConnection
from tests.core.pacs.fake_keyring import memory_keyring as fake_memory_keyring

from .conftest import wait_idle

T = 30000  # ms: the bound of every wait (each step takes well under a second here)


def _use_keyring(backend):
    import keyring
    old = keyring.get_keyring()
    keyring.set_keyring(backend)
    return lambda: keyring.set_keyring(old)


@pytest.fixture
def memory_keyring():
    with fake_memory_keyring() as kr:
        yield kr


@pytest.fixture
def no_keyring():
    from keyring.backends import fail
    restore = _use_keyring(fail.Keyring())
    yield
    restore()


@pytest.fixture
def pacs_home(tmp_path, monkeypatch):
    """pacs.json, the retrieve cache and the session's secrets of this test only."""
    path = tmp_path / "pacs.json"
    monkeypatch.setattr("core.pacs.connections.connections_path", lambda: path)
    monkeypatch.setattr("core.pacs.cache.cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr("core.pacs.connections._session_secrets", {})
    return path


def dimse(orthanc, name="orthanc", **changes) -> PacsConnection:
    from tests.pacs_server import AET
    fields = dict(host="127.0.0.1", port=orthanc.dicom_port, called_ae=AET, calling_ae="LIVERSEGTEST", timeout=5.0)
    return PacsConnection(name, "dimse", **{**fields, **changes})


def down(name="down") -> PacsConnection:
    from tests.pacs_server import free_port
    return PacsConnection(name, "dimse", host="127.0.0.1", port=free_port(), timeout=2.0)


def connections_dialog(qtbot):
    from app.widgets.pacs_connections import PacsConnectionsDialog
    d = PacsConnectionsDialog()
    qtbot.addWidget(d)
    d.show()
    return d


def fill(d, name, protocol="dimse", **values) -> None:
    """Type a connection into the form."""
    d.new()
    d.name.setText(name)
    d.protocol.setCurrentIndex(d.protocol.findData(protocol))
    if "auth" in values:
        d.auth.setCurrentIndex(d.auth.findData(values.pop("auth")))
    for key, value in values.items():
        w = getattr(d, key)
        w.setValue(value) if hasattr(w, "setValue") else w.setText(value)


def test_connections_are_saved_without_their_secret(qtbot, pacs_home, memory_keyring, orthanc):
    from tests.pacs_server import PASSWORD, USER
    d = connections_dialog(qtbot)
    fill(d, "lab web", "dicomweb", url=orthanc.dicomweb_url, auth="basic", username=USER, secret=PASSWORD)
    d.save_btn.click()
    assert not d.error and "saved lab web" in d.status.text()
    text = pacs_home.read_text()
    assert PASSWORD not in text and json.loads(text)["connections"][0]["username"] == USER
    assert pc.load_connections() == [PacsConnection("lab web", "dicomweb", url=orthanc.dicomweb_url, auth="basic",
                                                    username=USER, timeout=10.0)]
    assert memory_keyring.store == {(pc.KEYRING_SERVICE, "lab web"): PASSWORD}
    assert d.secret.text() == "" and d.list.count() == 1  # the secret is not shown again
    # Test connection with the saved secret (from the keyring), then with a wrong one typed
    with qtbot.waitSignal(d.tested, timeout=T) as ok:
        d.test_btn.click()
    assert "QIDO-RS answered" in ok.args[0] and not d.error
    d.secret.setText("wrong")
    d.test_btn.click()
    qtbot.waitUntil(lambda: bool(d.error), timeout=T)
    assert "HTTP 401" in d.error and "\n" not in d.status.text()
    qtbot.waitUntil(lambda: d.test_btn.isEnabled(), timeout=T)
    # renaming keeps the secret under the new name; Delete removes the connection and its secret
    d.secret.clear()
    d.name.setText("lab")
    d.save_btn.click()
    assert [c.name for c in pc.load_connections()] == ["lab"]
    assert memory_keyring.store == {(pc.KEYRING_SERVICE, "lab"): PASSWORD}
    d.delete_btn.click()
    assert pc.load_connections() == [] and memory_keyring.store == {} and d.list.count() == 0


def test_without_a_keyring_the_secret_is_kept_for_this_session(qtbot, pacs_home, no_keyring):
    d = connections_dialog(qtbot)
    fill(d, "token pacs", "dicomweb", url="https://pacs.example/dicom-web", auth="token", secret="tok-123")
    d.save_btn.click()
    assert "no keyring on this system" in d.status.text() and "session only" in d.status.text()
    assert "tok-123" not in pacs_home.read_text() and pc.load_secret("token pacs") == "tok-123"
    fill(d, "bad", url="", host="")  # an invalid form: one line, nothing saved
    d.save_btn.click()
    assert "no host" in d.error and [c.name for c in pc.load_connections()] == ["token pacs"]


def test_test_connection_answers_and_a_wrong_ae_title_is_one_line(qtbot, pacs_home, orthanc):
    from tests.pacs_server import AET
    d = connections_dialog(qtbot)
    fill(d, "orthanc", host="127.0.0.1", port=orthanc.dicom_port, called_ae=AET, timeout=5.0)
    with qtbot.waitSignal(d.tested, timeout=T) as ok:
        d.test_btn.click()
    assert "C-ECHO answered" in ok.args[0] and ok.args[0] in d.status.text()
    d.called_ae.setText("NOTTHEPACS")
    d.test_btn.click()
    qtbot.waitUntil(lambda: bool(d.error), timeout=T)
    assert "refused the association" in d.error and "NOTTHEPACS" in d.error
    assert pc.load_connections() == []  # testing saves nothing
    qtbot.waitUntil(lambda: not d.runner.busy, timeout=T)


def search_phantom(window, qtbot, orthanc):
    """File > Open from PACS, search the phantom's patient, select its study and CT series."""
    from core.synthetic.phantom import phantom_name
    window.pacs.open_from_pacs()
    d = window.pacs.pacs_dialog
    assert d.isVisible() and d.connection() is not None
    d.patient_id.setText(phantom_name(3, 1))
    with qtbot.waitSignal(d.studiesFound, timeout=T):
        d.search_btn.click()
    assert [(s.patient_id, s.n_instances) for s in d.studies] == [(phantom_name(3, 1), 24)]
    assert d.study_table.item(0, 0).text() == phantom_name(3, 1) and d.study_table.item(0, 5).text() == "CT"
    with qtbot.waitSignal(d.seriesFound, timeout=T):
        d.study_table.selectRow(0)
    assert [(s.modality, s.n_instances) for s in d.series] == [("CT", 24)]
    assert d.series_table.item(0, 3).text() == "24" and d.retrieve_btn.isEnabled()  # the one series is selected
    return d


def retrieve_phantom(window, qtbot, orthanc):
    d = search_phantom(window, qtbot, orthanc)
    seen = []
    with qtbot.waitSignal(window.studyLoaded, timeout=60000):
        d.retrieve()
        d.retrieve_job.progress.connect(lambda ev: seen.append(ev.stage))
        assert d.cancel_btn.isEnabled() and not d.retrieve_btn.isEnabled()
    wait_idle(qtbot, window)
    assert window.state.study.shape[0] == 24 and not d.isVisible()
    assert "retrieve" in seen and "Retrieved 24 instance(s)" in d.status.text()
    return d


def test_open_from_pacs_retrieves_the_series_and_the_window_opens_it(window, qtbot, pacs_home, orthanc, tmp_path):
    pc.save_connections([dimse(orthanc)])
    file_menu = window.menuBar().actions()[0].menu()
    names = [a.objectName() for a in file_menu.actions()]
    assert {"openFromPacs", "sendToPacs", "pacsConnections"} <= set(names)
    assert not window.pacs.send_pacs_action.isEnabled()
    d = retrieve_phantom(window, qtbot, orthanc)
    folder = window.state.session.source
    assert folder.startswith(str(tmp_path / "cache")) and len(list((tmp_path / "cache").rglob("*.dcm"))) == 24
    assert window.state.study.volume is not None and window.state.study.volume.meta.series_uid
    assert folder not in window.files.recent()  # the cache may evict it: not offered under File > Recent
    # named by the PACS, the patient and the series, not by the cache folder (a UID)
    hit = d.studies[0]
    name = " ".join(hit.patient_name.split("^"))
    date = f"{hit.date[:4]}-{hit.date[4:6]}-{hit.date[6:]}"
    title = window.windowTitle()
    assert title == f"LiverSeg Studio - {dimse(orthanc).name}: {name}, {date}, {d.series[0].description}", title
    study = window.state.study
    assert study.volume.meta.series_uid not in title and study.name in window.statusBar().currentMessage()


def test_a_server_down_is_one_line_and_opens_nothing(window, qtbot, pacs_home, orthanc):
    pc.save_connections([down("down"), dimse(orthanc)])
    window.pacs.open_from_pacs()
    d = window.pacs.pacs_dialog
    d.select_connection("down")
    d.search_btn.click()
    qtbot.waitUntil(lambda: bool(d.error), timeout=T)
    assert "cannot connect" in d.error and d.study_table.rowCount() == 0
    # the PACS stops answering between the listing and the retrieve
    d.select_connection("orthanc")
    d = search_phantom(window, qtbot, orthanc)
    d.connections[d.connection_combo.currentIndex()] = down("orthanc")
    d.retrieve()
    qtbot.waitUntil(lambda: bool(d.error), timeout=T)
    wait_idle(qtbot, window)
    assert "cannot connect" in d.error and "\n" not in d.status.text()
    assert window.state.session is None and d.isVisible() and d.retrieve_btn.isEnabled() and not d.progress.isVisible()
    assert not list(pacs_home.parent.joinpath("cache").rglob("*.dcm"))  # nothing partial left
    # Cancel: the retrieve stops and nothing opens
    d.reload_connections()
    d = search_phantom(window, qtbot, orthanc)
    d.retrieve()
    d.cancel_btn.click()
    qtbot.waitUntil(lambda: d.retrieve_job is None, timeout=T)
    wait_idle(qtbot, window)
    assert "cancelled" in d.status.text() and window.state.session is None and d.isVisible()


def test_send_to_pacs_stores_a_dicom_seg(window, qtbot, pacs_home, orthanc):
    from core.study.session import Segmented
    conn = dimse(orthanc)
    pc.save_connections([conn])
    retrieve_phantom(window, qtbot, orthanc)
    hu = window.state.study.hu
    label = np.where(hu > 0, 1, 0).astype(np.uint8)
    label[hu > 150] = 2
    with qtbot.waitSignal(window.summaryUpdated, timeout=T):
        window.segmentation.show_segmentation(Segmented(label), window.state.session)
    window.pacs._update_pacs_action()
    assert window.pacs.send_pacs_action.isEnabled()
    before = set(orthanc.rest("GET", "/series"))
    window.pacs.send_to_pacs(conn)
    wait_idle(qtbot, window)
    assert "1 instance(s) accepted" in window.statusBar().currentMessage()
    assert window.pacs.pacs_box is not None and "1 instance(s) accepted" in window.pacs.pacs_box.text()
    new = set(orthanc.rest("GET", "/series")) - before
    try:
        assert [orthanc.rest("GET", f"/series/{s}")["MainDicomTags"]["Modality"] for s in new] == ["SEG"]
        study_uid = window.state.study.volume.meta.study_uid
        qido = orthanc.rest("GET", f"/dicom-web/studies/{study_uid}/series", params={"Modality": "SEG"}).json()
        assert len(qido) == 1
    finally:
        for s in new:  # the session's Orthanc keeps only the phantom for the other tests
            orthanc.rest("DELETE", f"/series/{s}")


def test_send_needs_a_dicom_study_and_reports_a_refusal(window, qtbot, pacs_home, tmp_path):
    from core.pacs.types import StoreResult
    from core.study.session import Segmented
    from tests.core.io.test_volume_file import canonical_ct, write_as
    write_as(tmp_path / "ct.nii.gz", canonical_ct(8, 48, 48), "RAS")
    with qtbot.waitSignal(window.studyLoaded, timeout=T):
        window.files.open_path(str(tmp_path / "ct.nii.gz"))
    wait_idle(qtbot, window)
    with qtbot.waitSignal(window.summaryUpdated, timeout=T):
        window.segmentation.show_segmentation(Segmented(np.ones(window.state.study.shape, np.uint8)),
                                              window.state.session)
    window.pacs._update_pacs_action()
    assert window.pacs.send_pacs_action.isEnabled()
    with qtbot.waitSignal(window.jobFailed, timeout=T) as failed:
        assert window.pacs.send_to_pacs(down()) is None
    assert "DICOM SEG" in failed.args[0] and "volume file" in failed.args[0]
    with qtbot.waitSignal(window.jobFailed, timeout=T) as failed:  # a refused instance is an error
        window.pacs._pacs_sent(StoreResult([], [("1.2.3", "status 0xA700")]), down("lab"))
    assert "refused" in failed.args[0] and "0xA700" in failed.args[0]
    assert window.pacs.pacs_box is None


def test_without_the_pacs_libraries_the_menu_says_why_and_the_cli_refuses(qtbot, tmp_path, monkeypatch, capsys):
    """The lite edition leaves pynetdicom and dicomweb-client out: greyed entries, a one-line refusal."""
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QAction

    from app.cli import main
    from app.main_window import MainWindow
    monkeypatch.setattr("core.runtime.edition.pacs_available", lambda: False)
    monkeypatch.setattr("app.controllers.pacs.pacs_available", lambda: False)
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    actions = {a.objectName(): a for a in win.findChildren(QAction)}
    for name in ("openFromPacs", "sendToPacs", "pacsConnections"):
        assert not actions[name].isEnabled() and "not in this edition" in actions[name].statusTip()
    assert main(["pacs", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Working with a PACS (query, retrieve, send) is not in this edition" in err and "\n" not in err
