"""Results: liver volume, tumour burden, lesion table, metrics against the reference."""

from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

LESION_HEAD = ["id", "slices", "mL", "diam. mm", "mean HU"]
LESION_TIPS = ["lesion number, largest first", "first-last axial slice", "volume in mL",
               "longest axial diameter in mm", "mean Hounsfield units inside the lesion"]
METRIC_HEAD = ["", "Dice", "Jaccard", "ASSD mm", "RVD"]


class ResultsPanel(QWidget):
    """Signal ``lesionClicked(z, y, x)``: the centroid of the lesion whose row was clicked."""

    lesionClicked = Signal(int, int, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
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
        lay.addWidget(self.lesions, 2)
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
        self.show_metrics(None)

    def show_summary(self, summary: dict) -> None:
        self.summary.setText(f"Liver {summary['liver_ml']:.1f} mL    tumour {summary['tumor_ml']:.2f} mL    "
                             f"burden {summary['tumor_burden_pct']:.2f} %    {len(summary['lesions'])} lesion(s)")
        les = summary["lesions"]
        self.lesions.setRowCount(len(les))
        self._centroids = []
        for r, l in enumerate(les):
            vals = [str(l["id"]), f"{l['slices'][0] + 1}-{l['slices'][1] + 1}", f"{l['volume_ml']:.2f}",
                    f"{l['longest_axial_diameter_mm']:.1f}", f"{l.get('mean_hu', float('nan')):.0f}"]
            for c, v in enumerate(vals):
                self.lesions.setItem(r, c, QTableWidgetItem(v))
            self._centroids.append(tuple(int(round(x)) for x in l["centroid"]))

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
