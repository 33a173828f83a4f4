"""The Train tab's fine-tune box: teach the default models a lab's own cases, then compare.

Dataset (the Train tab's), base model (this installation's defaults preselected), stages and minutes;
*Fine-tune* runs :func:`core.training.finetune_compare.finetune_and_compare` (the main window runs the
job); at the end a table per held-out case (liver Dice, tumour Dice, lesions) of the base models and
the fine-tuned ones, and *Use as default* / *Restore bundled defaults*
(:func:`core.catalog.library.set_user_defaults`: the user models folder, the bundled models untouched).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
)

from core.catalog import library
from core.training.finetune import FinetuneConfig

COLUMNS = ("case", "liver Dice base", "fine-tuned", "tumour Dice base", "fine-tuned", "lesions base", "fine-tuned")


def _num(x) -> str:
    return f"{x:.3f}" if isinstance(x, float) and math.isfinite(x) else "-"


class FinetuneBox(QGroupBox):
    """Signals: ``finetuneRequested(FinetuneConfig)``, ``defaultsChanged()`` (the model list must
    reselect the defaults)."""

    finetuneRequested = Signal(object)
    defaultsChanged = Signal()

    def __init__(self, dataset: Callable[[], str], parent=None):
        super().__init__("Fine-tune on your cases", parent)
        self._dataset = dataset
        self.outcome = None
        self.run_folder = ""  # of the last fine-tune started
        form = QFormLayout(self)
        self.base = QComboBox()
        self.base.addItem("this installation's default models", "default")
        self.base.addItem("a run or model folder...", None)
        self.base.activated.connect(self._base_chosen)
        form.addRow("Start from", self.base)
        self.stages = QComboBox()
        for text, stages in (("both stages", ("liver", "tumor")), ("liver", ("liver",)), ("tumour", ("tumor",))):
            self.stages.addItem(text, stages)
        form.addRow("Stages", self.stages)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.5, 600.0)
        self.minutes.setDecimals(1)
        self.minutes.setValue(10.0)
        self.minutes.setSuffix(" min")
        form.addRow("Time budget", self.minutes)
        row = QHBoxLayout()
        self.start_btn = QPushButton("Fine-tune")
        self.start_btn.setObjectName("finetuneButton")
        self.start_btn.clicked.connect(self._start)
        self.use_btn = QPushButton("Use as default")
        self.use_btn.setEnabled(False)
        self.use_btn.clicked.connect(self.use_as_default)
        self.restore_btn = QPushButton("Restore bundled defaults")
        self.restore_btn.clicked.connect(self.restore_defaults)
        for b in (self.start_btn, self.use_btn, self.restore_btn):
            row.addWidget(b)
        form.addRow(row)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setVisible(False)
        form.addRow(self.table)
        self.note = QLabel()
        self.note.setWordWrap(True)
        form.addRow(self.note)
        self._show_defaults()

    # -- the request ----------------------------------------------------------
    def _base_chosen(self, index: int) -> None:
        if self.base.itemData(index) is not None:
            return
        d = QFileDialog.getExistingDirectory(self, "Run or model folder to start from")
        if d:
            self.set_base(d)
        else:
            self.base.setCurrentIndex(0)

    def set_base(self, folder: str) -> None:
        """Start from this run folder (liver/, tumor/) or model folder."""
        self.base.insertItem(self.base.count() - 1, folder, folder)
        self.base.setCurrentIndex(self.base.count() - 2)

    def config(self):
        """The :class:`core.training.finetune.FinetuneConfig` the controls describe (a new run
        folder in the user models folder)."""
        out = library.user_models_dir() / f"finetune-{time.strftime('%Y%m%d-%H%M%S')}"
        self.run_folder = str(out)
        return FinetuneConfig(dataset=self._dataset(), base=self.base.currentData() or "default", out=str(out),
                              stages=tuple(self.stages.currentData()), minutes=float(self.minutes.value()))

    def _start(self) -> None:
        self.finetuneRequested.emit(self)

    def set_running(self, running: bool) -> None:
        self.start_btn.setEnabled(not running)
        if running:
            self.use_btn.setEnabled(False)
            self.note.setText("Fine-tuning...")

    # -- the result -----------------------------------------------------------
    def show_outcome(self, outcome) -> None:
        """Fill the before/after table (:class:`core.training.finetune_compare.FinetuneOutcome`)."""
        self.outcome = outcome
        self.table.setRowCount(len(outcome.cases))
        for i, c in enumerate(outcome.cases):
            cells = (c.case_id, _num(c.before.liver_dice), _num(c.after.liver_dice), _num(c.before.tumour_dice),
                     _num(c.after.tumour_dice), c.before.lesions, c.after.lesions)
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.setVisible(bool(outcome.cases))
        runs = "; ".join(f"{s}: {r.status}, best val Dice {r.best_val_dice:.3f}" for s, r in outcome.results.items())
        self.note.setText(f"{runs}. Held-out case(s): the base models against the fine-tuned ones."
                          if outcome.cases else runs)
        self.use_btn.setEnabled(not outcome.cancelled and bool(outcome.results))

    def use_as_default(self) -> None:
        """The fine-tuned models become this installation's defaults (the Segment tab, ``liverseg
        predict`` and ``evaluate``)."""
        if self.outcome is None:
            return
        tuned = {s: p for s, p in self.outcome.tuned_models.items() if s in self.outcome.results}
        library.set_user_defaults({**{s: e.path for s, e in library.user_default_models().items()}, **tuned})
        self._show_defaults()
        self.defaultsChanged.emit()

    def restore_defaults(self) -> None:
        library.set_user_defaults({})
        self._show_defaults()
        self.defaultsChanged.emit()

    def _show_defaults(self) -> None:
        chosen = library.user_default_models()
        self.restore_btn.setEnabled(bool(chosen))
        self.setToolTip("Default models: " + (", ".join(f"{s}: {e.label or e.path}" for s, e in chosen.items())
                                              if chosen else "the bundled ones"))
