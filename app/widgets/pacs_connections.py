"""*PACS connections*: the saved connections (a list) and the one being edited (a form).

*Save* writes the connection to ``pacs.json`` (:mod:`core.pacs.connections`) and its password or
token to the platform's keyring, never to the file; without a keyring the secret is kept for
this session only, and the dialog says so. *Test connection* runs a C-ECHO (DIMSE) or a one-study
QIDO query (DICOMweb) on the form as it is, saved or not, in a worker.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.pacs import connections as pc
from core.pacs.operations import test_connection
from core.runtime.errors import PacsError

from .. import background
from ..workers import Job, JobRunner
from .job_dialog import JobDialog

NO_KEYRING = "no keyring on this system: the {what} of {name!r} is kept for this session only"
SECRET_HINT = {"none": "", "basic": "password", "token": "token"}


def _combo(items: tuple[tuple[str, str], ...]) -> QComboBox:
    combo = QComboBox()
    for text, data in items:
        combo.addItem(text, data)
    return combo


class PacsConnectionsDialog(JobDialog):
    """Signals: ``changed()`` (a connection was saved or deleted), ``tested(str)`` (the success
    line of *Test connection*; an error shows in the status line)."""

    changed = Signal()
    tested = Signal(str)

    def __init__(self, runner: JobRunner | None = None, parent=None):
        super().__init__(runner, parent)
        self.setWindowTitle("PACS connections")
        self.connections: list[pc.PacsConnection] = []
        self._test_job: Job | None = None
        self.list = QListWidget()
        self.list.setMinimumWidth(240)
        self.list.currentRowChanged.connect(self._show_row)
        self.name = QLineEdit()
        self.protocol = _combo((("DIMSE (C-FIND / C-GET / C-STORE)", "dimse"), ("DICOMweb (QIDO / WADO / STOW)",
                                                                                 "dicomweb")))
        self.host = QLineEdit()
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.called_ae, self.calling_ae = QLineEdit(), QLineEdit()
        for ae in (self.called_ae, self.calling_ae):
            ae.setMaxLength(16)
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://pacs:8042/dicom-web")
        self.auth = _combo((("None", "none"), ("User name and password", "basic"), ("Bearer token", "token")))
        self.username = QLineEdit()
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(0.5, 600.0)
        self.timeout.setSuffix(" s")
        self.form = QFormLayout()
        for label, w in (("Name", self.name), ("Protocol", self.protocol), ("Host", self.host), ("Port", self.port),
                         ("Called AE title (the PACS)", self.called_ae), ("Calling AE title (us)", self.calling_ae),
                         ("DICOMweb URL", self.url), ("Authentication", self.auth), ("User name", self.username),
                         ("Password or token", self.secret), ("Timeout", self.timeout)):
            self.form.addRow(label, w)
        self.protocol.currentIndexChanged.connect(self._update_fields)
        self.auth.currentIndexChanged.connect(self._update_fields)

        self.new_btn, self.save_btn = QPushButton("&New"), QPushButton("&Save")
        self.delete_btn, self.test_btn = QPushButton("&Delete"), QPushButton("&Test connection")
        for b, slot in ((self.new_btn, self.new), (self.save_btn, self.save), (self.delete_btn, self.delete),
                        (self.test_btn, self.test)):
            b.setAutoDefault(False)
            b.clicked.connect(slot)
        buttons = QHBoxLayout()
        for b in (self.new_btn, self.save_btn, self.delete_btn, self.test_btn):
            buttons.addWidget(b)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        right = QVBoxLayout()
        right.addLayout(self.form)
        right.addLayout(buttons)
        right.addWidget(self.status)
        right.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.list, 1)
        holder = QWidget()
        holder.setLayout(right)
        top.addWidget(holder, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(close)
        self.reload()

    # -- the list ---------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        """Read the saved connections again; select ``select`` (or the current one, or the first)."""
        current = select or (self.connections[self.list.currentRow()].name
                             if 0 <= self.list.currentRow() < len(self.connections) else None)
        self.connections = pc.load_connections()
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems([c.describe() for c in self.connections])
        self.list.blockSignals(False)
        names = [c.name for c in self.connections]
        row = names.index(current) if current in names else (0 if names else -1)
        self.list.setCurrentRow(row)
        self._show_row(row)

    def showEvent(self, ev) -> None:
        self.reload()
        super().showEvent(ev)

    def _show_row(self, row: int) -> None:
        self.set_form(self.connections[row] if 0 <= row < len(self.connections) else None)
        self.delete_btn.setEnabled(0 <= row < len(self.connections))

    def selected(self) -> pc.PacsConnection | None:
        row = self.list.currentRow()
        return self.connections[row] if 0 <= row < len(self.connections) else None

    # -- the form ---------------------------------------------------------------
    def set_form(self, conn: pc.PacsConnection | None) -> None:
        """Show ``conn`` in the form (None: a new DIMSE connection with the defaults). The secret
        field stays empty: a saved secret is kept unless a new one is typed."""
        c = conn or pc.PacsConnection("new", host="localhost")
        self.name.setText(c.name if conn is not None else "")
        self.protocol.setCurrentIndex(self.protocol.findData(c.protocol))
        self.host.setText(c.host if conn is not None else "")
        self.port.setValue(int(c.port))
        self.called_ae.setText(c.called_ae)
        self.calling_ae.setText(c.calling_ae)
        self.url.setText(c.url)
        self.auth.setCurrentIndex(self.auth.findData(c.auth))
        self.username.setText(c.username)
        self.secret.clear()
        self.timeout.setValue(float(c.timeout))
        self._update_fields()

    def _update_fields(self) -> None:
        dimse = self.protocol.currentData() == "dimse"
        auth = self.auth.currentData()
        for w in (self.host, self.port, self.called_ae, self.calling_ae):
            self.form.setRowVisible(w, dimse)
        for w in (self.url, self.auth):
            self.form.setRowVisible(w, not dimse)
        self.form.setRowVisible(self.username, not dimse and auth == "basic")
        self.form.setRowVisible(self.secret, not dimse and auth != "none")
        saved = self.selected() is not None and self.selected().name == self.name.text().strip()
        self.secret.setPlaceholderText(f"saved {SECRET_HINT[auth]} kept; type to replace it"
                                       if saved and auth != "none" else "")

    def connection(self) -> pc.PacsConnection:
        """The connection the form describes; :class:`PacsError` (one line) when it is not valid."""
        web = self.protocol.currentData() == "dicomweb"
        auth = self.auth.currentData() if web else "none"
        return pc.PacsConnection(
            name=self.name.text().strip(), protocol=self.protocol.currentData(), host=self.host.text().strip(),
            port=self.port.value(), called_ae=self.called_ae.text().strip(), calling_ae=self.calling_ae.text().strip(),
            url=self.url.text().strip(), auth=auth, username=self.username.text().strip() if auth == "basic" else "",
            timeout=self.timeout.value())

    def secret_text(self) -> str:
        """The typed password or token ("" when none is typed or the connection needs none)."""
        web = self.protocol.currentData() == "dicomweb"
        return self.secret.text() if web and self.auth.currentData() != "none" else ""

    # -- actions ----------------------------------------------------------------
    def new(self) -> None:
        self.list.setCurrentRow(-1)
        self.set_form(None)
        self.delete_btn.setEnabled(False)
        self.name.setFocus()
        self.say("")

    def save(self) -> None:
        """Save the form (renaming the selected connection when its name was changed); the secret
        goes to the keyring. An invalid form is said in the status line."""
        old = self.selected()
        try:
            conn = self.connection()
            renamed = old is not None and old.name != conn.name
            if renamed and any(c.name == conn.name for c in self.connections):
                raise PacsError(f"a PACS connection is already named {conn.name!r}")
            secret = self.secret_text() or (pc.load_secret(old.name) if renamed and conn.auth != "none" else "")
            pc.upsert_connection(conn)
            if renamed:
                pc.remove_connection(old.name)  # and its secret
        except (PacsError, OSError) as exc:
            self.say(str(exc), error=True)
            return
        note = f"saved {conn.describe()}"
        if conn.auth == "none" and old is not None and old.auth != "none":
            pc.store_secret(conn.name, "")  # a secret it no longer needs goes
        elif secret and not pc.store_secret(conn.name, secret):
            note += "; " + NO_KEYRING.format(what=SECRET_HINT[conn.auth], name=conn.name)
        self.reload(select=conn.name)
        self.say(note)
        self.changed.emit()

    def delete(self) -> None:
        conn = self.selected()
        if conn is None:
            return
        try:
            pc.remove_connection(conn.name)
        except (PacsError, OSError) as exc:
            self.say(str(exc), error=True)
            return
        self.reload()
        self.say(f"deleted {conn.name}")
        self.changed.emit()

    def test(self) -> None:
        """C-ECHO / QIDO the form's connection in a worker; the answer shows in the status line."""
        try:
            conn = self.connection()
        except PacsError as exc:
            self.say(str(exc), error=True)
            return
        old, secret = self.selected(), self.secret_text()
        if not secret and conn.auth != "none":  # the saved secret (of the connection being renamed)
            secret = pc.load_secret(old.name) if old is not None else ""
        self.test_btn.setEnabled(False)
        self.say(f"testing {conn.describe()}...")
        job = Job("Test connection", background.call, test_connection, conn, secret)
        self._test_job = job
        self.run(job, self._tested, lambda: self.test_btn.setEnabled(True))

    def _tested(self, line: str) -> None:
        self.say(line)
        self.tested.emit(line)
