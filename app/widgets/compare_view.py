"""The follow-up comparison window: the baseline and the follow-up side by side with linked
cursors, the lesion table of both time points with the reader's targets, and the RECIST 1.1 and
mRECIST categories.

Why linked cursors: a reader checks each match by looking at the same place in both studies, and
the patients lie differently at each visit. A click, a scroll or a key in either study moves the
other to the registered corresponding point (the comparison's transform, baseline LPS to follow-up
LPS, and its inverse); a row of the table shows that lesion in both.

The window only shows: choosing targets emits ``targetsChanged`` and the export button
``exportRequested``; the controller (:mod:`app.controllers.followup`) recomputes and writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.followup.compare import NOTICE, Comparison
from core.followup.diameters import LesionMeasure
from core.followup.matching import LesionMatch
from core.followup.recist import MAX_TARGETS, Response
from core.followup.timepoint import TimePoint
from core.study.viewer_state import Change

from .slice_view import OrthoViewer

HEAD = ["baseline", "match", "BL long mm", "BL short mm", "BL mL", "follow-up", "FU long mm", "FU short mm", "FU mL",
        "volume", "target"]
TIPS = ["baseline lesion id (largest first)", "same, new, gone, merged, split or regrouped (after registration)",
        "longest axial diameter at baseline", "the longest diameter perpendicular to it", "volume at baseline",
        "the follow-up lesion(s) matched", "longest axial diameter at follow-up (each lesion of a split)",
        "perpendicular diameter at follow-up", "volume at follow-up (the group's)",
        "volume change of the group", f"a target lesion of RECIST 1.1 and mRECIST (at most {MAX_TARGETS})"]
TARGET_COL = HEAD.index("target")
ERROR_STYLE = "color: #c0392b;"


class CompareWindow(QDialog):
    """One comparison shown. Signals: ``targetsChanged(object)``: the baseline ids checked as
    targets (None: the software's choice again); ``exportRequested()``."""

    targetsChanged = Signal(object)
    exportRequested = Signal()

    def __init__(self, comparison: Comparison, baseline: TimePoint, followup: TimePoint, parent=None):
        super().__init__(parent)
        self.setWindowTitle("LiverSeg Studio - follow-up comparison")
        self.setWindowFlag(Qt.WindowType.Window)
        self.setWindowFlag(Qt.WindowType.WindowMaximizeButtonHint)
        self.resize(1600, 950)
        self.baseline, self.followup, self.comparison = baseline, followup, comparison
        self._linking = False
        self._rows: list[tuple[int | None, tuple[int, ...], LesionMatch | None]] = []

        self.base_view, self.follow_view = OrthoViewer(), OrthoViewer()
        self.base_caption, self.follow_caption = QLabel(), QLabel()
        views = QWidget()
        vrow = QHBoxLayout(views)
        vrow.setContentsMargins(0, 0, 0, 0)
        for view, caption, tp in ((self.base_view, self.base_caption, baseline),
                                  (self.follow_view, self.follow_caption, followup)):
            view.set_study(tp.hu, tp.spacing, tp.label)
            view.set_mode("prediction")
            caption.setWordWrap(True)
            col = QVBoxLayout()
            col.addWidget(caption)
            col.addWidget(view, 1)
            vrow.addLayout(col, 1)
        self.base_view.state.events.connect(self._baseline_moved)  # held weakly: bound methods
        self.follow_view.state.events.connect(self._followup_moved)

        self.table = QTableWidget(0, len(HEAD))
        self.table.setHorizontalHeaderLabels(HEAD)
        for c, tip in enumerate(TIPS):
            if (head := self.table.horizontalHeaderItem(c)) is not None:
                head.setToolTip(tip)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.cellClicked.connect(lambda row, _col: self.show_row(row))
        self.table.itemChanged.connect(self._item_changed)
        self.categories = QLabel()
        self.categories.setWordWrap(True)
        self.categories.setTextFormat(Qt.TextFormat.RichText)
        self.categories.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.message = QLabel()
        self.message.setWordWrap(True)
        notice = QLabel(NOTICE)
        notice.setWordWrap(True)
        notice.setStyleSheet("color: #777; font-size: 11px;")
        self.default_btn = QPushButton("Software's targets")
        self.default_btn.setToolTip("the two largest measurable lesions, as the software chose them")
        self.default_btn.clicked.connect(lambda: self.targetsChanged.emit(None))
        self.export_btn = QPushButton("Export...")
        self.export_btn.setToolTip("compare.json, compare.csv and compare.pdf into a folder")
        self.export_btn.clicked.connect(self.exportRequested)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        scroll = QScrollArea()  # the categories' reasons can be long
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.categories)
        side = QVBoxLayout()
        side.addWidget(scroll, 1)
        side.addWidget(notice)
        side.addWidget(self.message)
        buttons = QHBoxLayout()
        for b in (self.default_btn, self.export_btn, close):
            buttons.addWidget(b)
        side.addLayout(buttons)
        bottom = QWidget()
        brow = QHBoxLayout(bottom)
        brow.setContentsMargins(0, 0, 0, 0)
        brow.addWidget(self.table, 3)
        brow.addLayout(side, 2)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(views)
        split.addWidget(bottom)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([580, 370])
        QVBoxLayout(self).addWidget(split)
        self.show_comparison(comparison)
        if self._rows:
            self.show_row(0)
        else:
            self.follow_view.state.focus_liver(followup.label)

    # -- linked cursors ----------------------------------------------------------
    def map_point(self, when: str, zyx: Sequence[float]) -> np.ndarray:
        """The fractional voxel (z, y, x) of the other study at the registered point of voxel
        ``zyx`` of ``when`` ("baseline" or "followup")."""
        reg = self.comparison.registration
        if when == "baseline":
            return self.followup.grid.to_voxel(reg.to_followup(self.baseline.grid.to_lps([zyx])))[0]
        return self.baseline.grid.to_voxel(reg.to_baseline(self.followup.grid.to_lps([zyx])))[0]

    def _baseline_moved(self, ch: Change) -> None:
        self._follow(ch, "baseline")

    def _followup_moved(self, ch: Change) -> None:
        self._follow(ch, "followup")

    def _follow(self, ch: Change, when: str) -> None:
        """The other study's cursor to the registered point of this one's (never back again)."""
        if ch.name != "cursor" or self._linking:
            return
        other = self.follow_view if when == "baseline" else self.base_view
        z, y, x = (int(v) for v in np.round(self.map_point(when, ch.value)))
        self._linking = True
        try:
            other.set_cursor(z, y, x)
        finally:
            self._linking = False

    def show_row(self, row: int) -> None:
        """Show the lesions of table row ``row`` in both studies (each at its own centre; a gone or a
        new lesion's other side at the registered point)."""
        if not 0 <= row < len(self._rows):
            return
        bid, fids, _ = self._rows[row]
        b = {les.id: les for les in self.comparison.baseline.lesions}
        f = [les for les in self.comparison.followup.lesions if les.id in fids]
        if bid is not None:
            self.base_view.set_cursor(*_centre(b[bid]))  # the follow-up follows...
        if f:
            self._linking = bid is not None  # ...unless it has its own lesion to show
            try:
                self.follow_view.set_cursor(*_centre(max(f, key=lambda les: les.longest_mm)))
            finally:
                self._linking = False

    # -- the table and the categories ------------------------------------------------
    def show_comparison(self, c: Comparison) -> None:
        """Fill the table (a row per baseline lesion, then one per new lesion) and the categories."""
        self.comparison = c
        b = {les.id: les for les in c.baseline.lesions}
        f = {les.id: les for les in c.followup.lesions}
        targets = {t.baseline_id for t in c.recist.targets}
        rows: list[tuple[int | None, tuple[int, ...], LesionMatch | None]] = []
        for les in c.baseline.lesions:
            m = c.match_of("baseline", les.id)
            rows.append((les.id, m.followup_ids if m else (), m))
        rows += [(None, (j,), m) for m in c.matches if m.status == "new" for j in m.followup_ids]
        self._rows = rows
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        for r, (bid, fids, m) in enumerate(rows):
            bl, fl = b.get(bid) if bid is not None else None, [f[j] for j in fids]
            vals = ([str(bid), m.status if m else "gone", f"{bl.longest_mm:.1f}", f"{bl.perpendicular_mm:.1f}",
                     f"{bl.volume_ml:.2f}"] if bl else ["-", "new", "", "", ""])
            vals += [", ".join(map(str, fids)) or "-", "; ".join(f"{x.longest_mm:.1f}" for x in fl),
                     "; ".join(f"{x.perpendicular_mm:.1f}" for x in fl),
                     f"{sum(x.volume_ml for x in fl):.2f}" if fl else "", _change(m, bl is not None)]
            for col, v in enumerate(vals):
                self.table.setItem(r, col, QTableWidgetItem(v))
            item = QTableWidgetItem()
            if bid is not None:
                item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled
                              | Qt.ItemFlag.ItemIsSelectable)
                item.setCheckState(Qt.CheckState.Checked if bid in targets else Qt.CheckState.Unchecked)
            else:
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            self.table.setItem(r, TARGET_COL, item)
        self.table.blockSignals(False)
        self.categories.setText(self._summary_html(c))
        self._captions(c)

    def targets(self) -> list[int]:
        """The baseline ids checked as targets, in table order."""
        return [bid for r, (bid, _, _) in enumerate(self._rows) if bid is not None
                and self._target_item(r).checkState() == Qt.CheckState.Checked]

    def set_target(self, baseline_id: int, on: bool) -> None:
        """Check or uncheck a baseline lesion as a target (as the user's click does)."""
        r = next(i for i, (bid, _, _) in enumerate(self._rows) if bid == baseline_id)
        self._target_item(r).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _target_item(self, row: int) -> QTableWidgetItem:
        item = self.table.item(row, TARGET_COL)
        assert item is not None, "show_comparison fills every cell"
        return item

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != TARGET_COL:
            return
        ids = self.targets()
        if len(ids) > MAX_TARGETS:
            self.table.blockSignals(True)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.table.blockSignals(False)
            self.say(f"At most {MAX_TARGETS} target lesions (RECIST 1.1: 2 per organ): uncheck one first.", error=True)
            return
        self.say("")
        self.targetsChanged.emit(ids)

    def say(self, text: str, error: bool = False) -> None:
        """One line under the categories (red for an error)."""
        self.message.setStyleSheet(ERROR_STYLE if error else "")
        self.message.setText(text)

    def _captions(self, c: Comparison) -> None:
        for caption, part, what in ((self.base_caption, c.baseline, "Baseline"),
                                    (self.follow_caption, c.followup, "Follow-up")):
            i = part.info
            name = i["name"] if len(i["name"]) < 70 else "..." + i["name"][-67:]
            caption.setText(f"<b>{what}</b> {_date(i['study_date'])}  phase <b>{part.phase.phase}</b>  "
                            f"{len(part.lesions)} lesion(s), tumour {part.tumour_ml:.1f} mL<br>"
                            f"<span style='color:#888'>{name}</span>")
            caption.setToolTip(f"{i['name']}\nphase read from the images: {part.phase.reason}")

    @staticmethod
    def _summary_html(c: Comparison) -> str:
        reg = c.registration
        fit = reg.fit(reg.kind)
        fit_text = (f": liver Dice {fit.liver_dice:.3f}, mean surface distance {fit.liver_msd_mm:.1f} mm"
                    if fit is not None and fit.liver_dice is not None else "")
        pct = c.tumour_change_pct
        parts = [_response_html(c.recist), _response_html(c.mrecist),
                 f"Tumour volume {c.baseline.tumour_ml:.1f} mL &rarr; {c.followup.tumour_ml:.1f} mL"
                 + ("" if pct is None else f" ({pct:+.0f} %)"),
                 f"Registration {reg.kind}{fit_text}"]
        parts += [f"<i>warning: {w}</i>" for w in c.warnings]
        return "<br>".join(parts)


def _response_html(r: Response) -> str:
    name = "RECIST 1.1" if r.criteria == "recist" else "mRECIST"
    targets = ", ".join(f"{t.baseline_id} ({t.baseline_mm:.0f} &rarr; {t.followup_mm:.0f} mm)" for t in r.targets)
    basis = "; ".join(r.basis[1:] if r.targets else r.basis)
    return (f"<b style='font-size:15px'>{name}: {r.category}</b> "
            f"<span style='color:#888'>(targets by the {r.chosen_by}: {targets or 'none'})</span><br>{basis}")


def _centre(les: LesionMeasure) -> tuple[int, int, int]:
    """A lesion's voxel to show: its long axis's slice, its centre in it."""
    return les.axis_slice, round(les.centroid[1]), round(les.centroid[2])


def _change(m: LesionMatch | None, at_baseline: bool) -> str:
    if m is None:
        return "-100 %" if at_baseline else ""
    if m.status == "new":
        return "new"
    pct = m.volume_change_pct
    return "" if pct is None else f"{pct:+.0f} %"


def _date(d: str) -> str:
    """A DICOM date (YYYYMMDD) as YYYY-MM-DD; anything else as it is."""
    return f"{d[:4]}-{d[4:6]}-{d[6:]}" if len(d) == 8 and d.isdigit() else d
