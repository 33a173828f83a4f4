"""Results: liver volume, tumour burden, the lesion table with its review (accept / reject, next /
previous, reject the small ones), metrics against the reference."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.runtime.summary import LesionSummary, StudySummary

LESION_HEAD = ["id", "slices", "mL", "diam. mm", "mean HU", "review"]
LESION_TIPS = ["lesion number, largest first", "first-last axial slice", "volume in mL",
               "longest axial diameter in mm", "mean Hounsfield units inside the lesion",
               "accepted, or not yet seen (rejected lesions are removed from the segmentation)"]
REVIEW_KEYS = {"previous": "P", "next": "N", "accept": "A", "reject": "R"}
STATE_COLOUR = {"accepted": QColor(40, 140, 60), "unseen": None}
METRIC_HEAD = ["", "Dice", "Jaccard", "ASSD mm", "RVD"]


class ResultsPanel(QWidget):
    """Signals: ``lesionClicked(z, y, x)``: the centroid of the lesion whose row was selected;
    ``reviewRequested(action)``: "accept", "reject", "next", "previous" (buttons, the rows' context
    menu, keys N / P / A / R) or "reject_smaller" (below :attr:`min_ml`)."""

    lesionClicked = Signal(int, int, int)
    reviewRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.phase = QLabel("")
        self.phase.setWordWrap(True)
        lay.addWidget(self.phase)
        self.summary = QLabel("No segmentation yet.")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.lesions = QTableWidget(0, len(LESION_HEAD))
        self.lesions.setHorizontalHeaderLabels(LESION_HEAD)
        for c, tip in enumerate(LESION_TIPS):
            self.lesions.horizontalHeaderItem(c).setToolTip(tip)
        self.lesions.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.lesions.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.lesions.cellClicked.connect(self._clicked)
        self.lesions.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        lay.addWidget(self.lesions, 2)
        row = QHBoxLayout()
        self.review_buttons = {}
        for action, text in (("previous", "< Previous"), ("next", "Next >"), ("accept", "Accept"),
                             ("reject", "Reject")):
            b = QPushButton(f"{text} ({REVIEW_KEYS[action]})")
            b.setToolTip(f"{text.strip('<> ')} lesion; key {REVIEW_KEYS[action]}")
            b.clicked.connect(lambda _=False, a=action: self.reviewRequested.emit(a))
            row.addWidget(b)
            self.review_buttons[action] = b
            act = QAction(text.strip("<> "), self)  # the context menu of the rows, and the key
            act.setShortcut(REVIEW_KEYS[action])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.triggered.connect(lambda _=False, a=action: self.reviewRequested.emit(a))
            self.lesions.addAction(act)
        lay.addLayout(row)
        srow = QHBoxLayout()
        self.min_ml = QDoubleSpinBox()
        self.min_ml.setRange(0.0, 100.0)
        self.min_ml.setDecimals(2)
        self.min_ml.setSingleStep(0.1)
        self.min_ml.setValue(0.5)
        self.min_ml.setSuffix(" mL")
        self.reject_small_btn = QPushButton("Reject smaller")
        self.reject_small_btn.setToolTip("reject every lesion below this volume that is not accepted (one undo step)")
        self.reject_small_btn.clicked.connect(lambda: self.reviewRequested.emit("reject_smaller"))
        srow.addWidget(QLabel("Lesions below"))
        srow.addWidget(self.min_ml)
        srow.addWidget(self.reject_small_btn)
        srow.addStretch(1)
        lay.addLayout(srow)
        self.metrics_label = QLabel("Against the reference:")
        lay.addWidget(self.metrics_label)
        self.metrics = QTableWidget(0, len(METRIC_HEAD))
        self.metrics.setHorizontalHeaderLabels(METRIC_HEAD)
        self.metrics.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        lay.addWidget(self.metrics, 1)
        for table in (self.lesions, self.metrics):  # the id column numbers the rows: no second number
            table.verticalHeader().hide()
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            table.horizontalHeader().setStretchLastSection(True)
        self._centroids: list[tuple[int, int, int]] = []
        self.records: list[LesionSummary] = []  # the lesion records shown, one per row
        self.show_metrics(None)

    def show_phase(self, estimate) -> None:
        """The study's contrast phase (a :class:`core.study.phase.PhaseEstimate`; None: being read)."""
        if estimate is None:
            self.phase.setText("Contrast phase: reading...")
            self.phase.setToolTip("")
            return
        self.phase.setText(f"Contrast phase: <b>{estimate.phase}</b>")
        self.phase.setToolTip(f"read from the images: {estimate.reason}")

    def show_summary(self, summary: StudySummary) -> None:
        les = summary.lesions
        accepted = sum(r.review == "accepted" for r in les)
        rejected = len(summary.rejected_lesions)
        self.summary.setText(f"Liver {summary.liver_ml:.1f} mL    tumour {summary.tumour_ml:.2f} mL    "
                             f"burden {summary.tumour_burden_pct:.2f} %    {len(les)} lesion(s)"
                             + (f"    reviewed: {accepted} accepted, {rejected} rejected"
                                if accepted or rejected else ""))
        selected = self.current_row()
        self.lesions.setRowCount(len(les))
        self.records = list(les)
        self._centroids = []
        for r, rec in enumerate(les):
            mean_hu = rec.mean_hu if rec.mean_hu is not None else float("nan")
            vals = [str(rec.id), f"{rec.slices[0] + 1}-{rec.slices[1] + 1}", f"{rec.volume_ml:.2f}",
                    f"{rec.longest_axial_diameter_mm:.1f}", f"{mean_hu:.0f}", rec.review]
            for c, v in enumerate(vals):
                item = QTableWidgetItem(v)
                if c == len(vals) - 1 and STATE_COLOUR.get(v) is not None:
                    item.setForeground(STATE_COLOUR[v])
                self.lesions.setItem(r, c, item)
            self._centroids.append(tuple(int(round(x)) for x in rec.centroid))
        if selected is not None and les:
            self.lesions.selectRow(min(selected, len(les) - 1))

    def current_row(self):
        """The selected lesion row, or None."""
        rows = self.lesions.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def select(self, row: int, jump: bool = True) -> None:
        """Select lesion row ``row`` (and jump the views to it: ``lesionClicked``)."""
        if 0 <= row < len(self._centroids):
            self.lesions.selectRow(row)
            self.lesions.scrollToItem(self.lesions.item(row, 0))
            if jump:
                self.lesionClicked.emit(*self._centroids[row])

    def show_metrics(self, report) -> None:
        """``report`` from core.evaluation.evaluate.case_report, or None to hide the table."""
        self.metrics.setVisible(report is not None)
        self.metrics_label.setVisible(report is not None)
        if report is None:
            return
        rows = [("Liver", report["liver"]), ("Tumour", report["tumor"])]
        self.metrics.setRowCount(3)
        for r, (name, m) in enumerate(rows):
            vals = [name] + [_fmt(m[k]) for k in ("dice", "jaccard", "assd_mm", "rvd")]
            for c, v in enumerate(vals):
                self.metrics.setItem(r, c, QTableWidgetItem(v))
        le = report["lesions"]
        self.metrics.setItem(2, 0, QTableWidgetItem("Lesion recall"))
        self.metrics.setItem(2, 1, QTableWidgetItem(f"{_fmt(le['recall'])} ({le['hits']}/{le['true_lesions']}, "
                                                    f"{le['false_positives']} FP)"))

    def _clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._centroids):
            self.lesionClicked.emit(*self._centroids[row])


def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and math.isfinite(x) else "-"
