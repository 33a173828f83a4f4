"""*Open from PACS*: search a PACS for studies, list a study's series, retrieve one.

Every query and the retrieve run in workers (:class:`app.widgets.job_dialog.JobDialog`); an error
(server down, refused association, a bad date) is one line in the dialog. The retrieve fills the
user's cache (:func:`core.pacs.operations.retrieve_series`: nothing partial is ever left usable) and
shows its progress, with *Cancel*; when it is done the dialog emits ``seriesRetrieved(folder)``
and closes, and the window opens the folder as it opens any DICOM folder.
"""

from __future__ import annotations

from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from core.pacs.connections import PacsConnection, load_connections
from core.pacs.operations import query_series, query_studies, retrieve_series
from core.pacs.types import PacsQuery, SeriesHit, StudyHit
from core.runtime.errors import PacsError

from .. import background
from ..workers import Job, JobRunner
from .job_dialog import JobDialog
from .pacs_connections import PacsConnectionsDialog

STUDY_COLUMNS = ("Patient ID", "Name", "Date", "Description", "Accession", "Modalities", "Series", "Instances")
SERIES_COLUMNS = ("Number", "Modality", "Description", "Slices")


def _table(columns: tuple[str, ...], stretch: int) -> QTableWidget:
    """A read-only table of rows picked one at a time; column ``stretch`` takes the spare width."""
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(list(columns))
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return t


def _fill(table: QTableWidget, rows: list[tuple]) -> None:
    table.clearSelection()
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.setItem(r, c, QTableWidgetItem("" if value is None else str(value)))


def _date(text: str) -> str:
    """A date field as YYYYMMDD (YYYY-MM-DD is accepted too)."""
    return text.strip().replace("-", "")


def retrieved_name(connection: str, study: StudyHit | None, series) -> str:
    """How a retrieved series is named in the window: "PACS: patient, date, series"."""
    parts = []
    if study is not None and study.study_uid == series.study_uid:
        date = study.date
        if len(date) == 8 and date.isdigit():
            date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
        person = " ".join(p for p in study.patient_name.split("^") if p)  # DICOM PN: family^given^...
        parts += [person or study.patient_id, date]
    parts.append(series.description or (f"series {series.number}" if series.number else series.series_uid))
    return f"{connection}: " + ", ".join(p for p in parts if p)


class PacsDialog(JobDialog):
    """Signals: ``seriesRetrieved(str folder, str name)`` (name: connection, patient, date and series,
    for the window's title; the folder is a cache entry named by UIDs), ``studiesFound(int)``,
    ``seriesFound(int)``."""

    seriesRetrieved = Signal(str, str)
    studiesFound = Signal(int)
    seriesFound = Signal(int)

    def __init__(self, runner: JobRunner | None = None, parent=None):
        super().__init__(runner, parent)
        self.setWindowTitle("Open from PACS")
        self.resize(900, 640)
        self.connections: list[PacsConnection] = []
        self.studies: list[StudyHit] = []
        self.series: list[SeriesHit] = []
        self.retrieve_job: Job | None = None
        self._series_of: str | None = None  # the study whose series are asked for or shown
        self.last_query: PacsQuery | None = None
        self.connections_dialog = None  # made when first asked for

        self.connection_combo = QComboBox()
        self.connection_combo.currentIndexChanged.connect(self._connection_changed)
        self.edit_btn = QPushButton("Co&nnections...")
        self.edit_btn.clicked.connect(self.edit_connections)
        conn_row = QHBoxLayout()
        conn_row.addWidget(QLabel("PACS"))
        conn_row.addWidget(self.connection_combo, 1)
        conn_row.addWidget(self.edit_btn)

        dates = QRegularExpressionValidator(QRegularExpression(r"\d{0,4}-?\d{0,2}-?\d{0,2}"))
        self.patient_id, self.patient_name, self.accession = QLineEdit(), QLineEdit(), QLineEdit()
        self.patient_name.setPlaceholderText("* matches anything")
        self.date_from, self.date_to = QLineEdit(), QLineEdit()
        for d in (self.date_from, self.date_to):
            d.setPlaceholderText("YYYYMMDD")
            d.setValidator(dates)
        self.modality = QLineEdit("CT")
        self.modality.setPlaceholderText("any")
        search = QGridLayout()
        for i, (label, w) in enumerate((("Patient ID", self.patient_id), ("Patient name", self.patient_name),
                                        ("Accession", self.accession), ("From date", self.date_from),
                                        ("To date", self.date_to), ("Modality", self.modality))):
            search.addWidget(QLabel(label), i % 3, 2 * (i // 3))
            search.addWidget(w, i % 3, 2 * (i // 3) + 1)
        self.search_btn = QPushButton("&Search")
        self.search_btn.setDefault(True)
        self.search_btn.clicked.connect(self.search)
        search.addWidget(self.search_btn, 0, 4)
        for w in (self.patient_id, self.patient_name, self.accession, self.date_from, self.date_to, self.modality):
            w.returnPressed.connect(self.search)

        self.study_table = _table(STUDY_COLUMNS, STUDY_COLUMNS.index("Description"))
        self.study_table.itemSelectionChanged.connect(self._study_selected)
        self.series_table = _table(SERIES_COLUMNS, SERIES_COLUMNS.index("Description"))
        self.series_table.itemSelectionChanged.connect(self._update_buttons)
        self.series_table.itemDoubleClicked.connect(lambda *_: self.retrieve())

        self.progress = QProgressBar()
        self.progress.hide()
        self.retrieve_btn = QPushButton("&Retrieve and open")
        self.retrieve_btn.clicked.connect(self.retrieve)
        self.cancel_btn = QPushButton("&Cancel")
        self.cancel_btn.clicked.connect(self.cancel_retrieve)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        for b in (self.edit_btn, self.retrieve_btn, self.cancel_btn):
            b.setAutoDefault(False)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.retrieve_btn)
        bottom.addWidget(self.cancel_btn)
        bottom.addWidget(close)

        lay = QVBoxLayout(self)
        lay.addLayout(conn_row)
        lay.addLayout(search)
        lay.addWidget(QLabel("Studies"))
        lay.addWidget(self.study_table, 3)
        lay.addWidget(QLabel("Series of the selected study"))
        lay.addWidget(self.series_table, 2)
        lay.addWidget(self.status)
        lay.addLayout(bottom)
        self.reload_connections()

    # -- connections ------------------------------------------------------------
    def reload_connections(self) -> None:
        """Read the saved connections again, keeping the chosen one when it still exists."""
        current = self.connection_combo.currentData()
        self.connections = load_connections()
        self.connection_combo.blockSignals(True)
        self.connection_combo.clear()
        for c in self.connections:
            self.connection_combo.addItem(c.describe(), c.name)
        i = self.connection_combo.findData(current)
        self.connection_combo.setCurrentIndex(i if i >= 0 else 0)
        self.connection_combo.blockSignals(False)
        if not self.connections:
            self.say("No PACS connection saved: add one with Connections...")
        if self.connection_combo.currentData() != current:
            self._connection_changed()
        self._update_buttons()

    def showEvent(self, ev) -> None:
        self.reload_connections()
        super().showEvent(ev)

    def connection(self) -> PacsConnection | None:
        i = self.connection_combo.currentIndex()
        return self.connections[i] if 0 <= i < len(self.connections) else None

    def select_connection(self, name: str) -> None:
        self.connection_combo.setCurrentIndex(self.connection_combo.findData(name))

    def _connection_changed(self) -> None:
        """Another PACS: the results of the last one no longer apply."""
        self.studies, self.series, self._series_of = [], [], None
        _fill(self.study_table, [])
        _fill(self.series_table, [])
        self._update_buttons()

    def edit_connections(self) -> None:
        if self.connections_dialog is None:
            self.connections_dialog = PacsConnectionsDialog(self.runner, self)
            self.connections_dialog.changed.connect(self.reload_connections)
        self.connections_dialog.show()
        self.connections_dialog.raise_()

    # -- search -----------------------------------------------------------------
    def query(self) -> PacsQuery:
        """The search the fields describe; :class:`PacsError` when a date is not one."""
        return PacsQuery(patient_id=self.patient_id.text().strip(), patient_name=self.patient_name.text().strip(),
                         date_from=_date(self.date_from.text()), date_to=_date(self.date_to.text()),
                         accession=self.accession.text().strip(), modality=self.modality.text().strip().upper())

    def search(self) -> None:
        """Query the chosen PACS for studies in a worker; they fill the studies table."""
        conn = self.connection()
        if conn is None:
            self.say("Choose a PACS first (Connections... adds one).", error=True)
            return
        try:
            query = self.query()
        except PacsError as exc:
            self.say(str(exc), error=True)
            return
        self._connection_changed()
        self.last_query = query
        self.search_btn.setEnabled(False)
        self.say(f"Searching {conn.describe()}...")
        job = Job("PACS search", background.call, query_studies, conn, query)
        self.run(job, lambda hits: self._show_studies(hits, conn), lambda: self.search_btn.setEnabled(True))

    def _show_studies(self, hits: list[StudyHit], conn: PacsConnection) -> None:
        if conn != self.connection():  # the user switched PACS meanwhile
            return
        self.studies = list(hits)
        _fill(self.study_table, [(h.patient_id, h.patient_name, h.date, h.description, h.accession, h.modalities,
                                  h.n_series, h.n_instances) for h in self.studies])
        self.say(f"{len(hits)} stud{'y' if len(hits) == 1 else 'ies'} found on {conn.name}"
                 + (": select one to list its series" if hits else ""))
        self.studiesFound.emit(len(hits))

    def selected_study(self) -> StudyHit | None:
        rows = self.study_table.selectionModel().selectedRows()
        return self.studies[rows[0].row()] if rows and rows[0].row() < len(self.studies) else None

    def selected_series(self) -> SeriesHit | None:
        rows = self.series_table.selectionModel().selectedRows()
        return self.series[rows[0].row()] if rows and rows[0].row() < len(self.series) else None

    def _study_selected(self) -> None:
        study, conn = self.selected_study(), self.connection()
        self.series = []
        _fill(self.series_table, [])
        self._series_of = study.study_uid if study is not None else None
        self._update_buttons()
        if study is None or conn is None:
            return
        self.say(f"Listing the series of {study.patient_name or study.patient_id or study.study_uid}...")
        modality = self.last_query.modality if self.last_query is not None else ""  # the search's modality
        job = Job("PACS series query", background.call, query_series, conn, study.study_uid, modality)
        self.run(job, lambda hits: self._show_series(hits, study.study_uid))

    def _show_series(self, hits: list[SeriesHit], study_uid: str) -> None:
        if study_uid != self._series_of:  # another study was selected meanwhile
            return
        self.series = list(hits)
        _fill(self.series_table, [(h.number, h.modality, h.description, h.n_instances) for h in self.series])
        if len(hits) == 1:
            self.series_table.selectRow(0)
        self.say(f"{len(hits)} series" + (": select one and retrieve it" if hits else ""))
        self.seriesFound.emit(len(hits))

    # -- retrieve ---------------------------------------------------------------
    def _update_buttons(self) -> None:
        busy = self.retrieve_job is not None
        self.retrieve_btn.setEnabled(not busy and self.selected_series() is not None and self.connection() is not None)
        self.cancel_btn.setEnabled(busy)

    def retrieve(self) -> None:
        """Retrieve the selected series into the cache in a worker (progress, *Cancel*)."""
        series, conn = self.selected_series(), self.connection()
        if series is None or conn is None or self.retrieve_job is not None:
            return
        job = Job("Retrieve", retrieve_series, conn, series.study_uid, series.series_uid)
        self._retrieving_name = retrieved_name(conn.name, self.selected_study(), series)
        job.progress.connect(self._on_progress)
        self.retrieve_job = job
        self.progress.setRange(0, 0)
        self.progress.show()
        self.say(f"Retrieving series {series.number or series.series_uid} from {conn.name}...")
        self._update_buttons()
        self.run(job, self._retrieved, self._retrieve_ended)

    def _on_progress(self, ev) -> None:
        self.progress.setRange(0, max(ev.total, 0))
        self.progress.setValue(ev.done)
        if ev.message:
            self.say(f"{ev.stage}: {ev.message}")

    def _retrieve_ended(self) -> None:
        self.retrieve_job = None
        self.progress.hide()
        self._update_buttons()

    def _retrieved(self, result) -> None:
        if self.retrieve_job is not None and self.retrieve_job.token.cancelled:  # closed as it ended
            self.say("Retrieve: cancelled")
            return
        how = "from the cache" if result.from_cache else f"in {result.seconds:.1f} s"
        self.say(f"Retrieved {result.n_files} instance(s) {how}")
        self.seriesRetrieved.emit(result.path, self._retrieving_name)
        self.accept()

    def cancel_retrieve(self) -> None:
        if self.retrieve_job is not None:
            self.retrieve_job.token.cancel()

    def reject(self) -> None:
        """Closing the dialog cancels a retrieve in progress (nothing is opened then)."""
        self.cancel_retrieve()
        super().reject()
