"""Training panel: dataset (choose or import), options, Start/Stop/Resume, live curves; run monitor.

In the lite edition (no Keras, :mod:`core.runtime.edition`) it shows one line on where to get the full
edition instead of the controls; following a run folder's curves still works."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.catalog.library import user_models_dir
from core.runtime.edition import keras_available, not_in_edition, require_full
from core.training import defaults as D

from .curves import CurvesWidget
from .finetune_box import FinetuneBox


class TrainPanel(QWidget):
    """Collects a :class:`core.training.trainer.TrainConfig`; the main window runs the jobs.

    Signals: ``startRequested(config, resume)``, ``stopRequested()``, ``importRequested(src, out)``,
    ``monitorRequested(run_dir)``.
    """

    startRequested = Signal(object, bool)
    stopRequested = Signal()
    importRequested = Signal(str, str)
    monitorRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.lite = not keras_available()
        if self.lite:  # no Keras here: a note instead of the controls; following a run still works
            self._build_lite(lay)
            return
        form = QFormLayout()
        lay.addLayout(form)
        self.dataset = QLineEdit()
        self.dataset.setPlaceholderText("dataset folder (from Import)")
        drow = QHBoxLayout()
        drow.addWidget(self.dataset, 1)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse_dataset)
        imp = QPushButton("Import 3D-IRCADb-01...")
        imp.clicked.connect(self._import)
        drow.addWidget(browse)
        drow.addWidget(imp)
        form.addRow("Dataset", drow)
        self.import_progress = QProgressBar()
        self.import_progress.setVisible(False)
        form.addRow(self.import_progress)
        self.stage = QComboBox()
        self.stage.addItems(["liver", "tumor"])
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(D.EPOCHS)
        self.batch = QSpinBox()
        self.batch.setRange(1, 512)
        self.batch.setValue(D.BATCH_SIZE)
        self.size = QComboBox()
        self.size.addItems(["256", "128", "64", "512"])
        self.fraction = QComboBox()
        self.fraction.addItems(["1.0", "0.5", "0.25"])
        self.precision = QComboBox()
        self.precision.addItems(list(D.PRECISIONS))
        for name, w in (("Stage", self.stage), ("Epochs", self.epochs), ("Batch size", self.batch),
                        ("Image size", self.size), ("Data fraction", self.fraction), ("Precision", self.precision)):
            form.addRow(name, w)
        self.run_dir = QLineEdit()
        self.run_dir.setPlaceholderText("run folder (default: a new one in your models folder)")
        form.addRow("Run folder", self.run_dir)
        brow = QHBoxLayout()
        self.start_btn, self.stop_btn = QPushButton("Start"), QPushButton("Stop")
        self.resume_btn = QPushButton("Resume")
        self.stop_btn.setEnabled(False)
        self.start_btn.clicked.connect(lambda: self._start(False))
        self.resume_btn.clicked.connect(lambda: self._start(True))
        self.stop_btn.clicked.connect(self.stopRequested)
        mon = QPushButton("Monitor a run folder...")
        mon.clicked.connect(self._monitor)
        for b in (self.start_btn, self.stop_btn, self.resume_btn, mon):
            brow.addWidget(b)
        lay.addLayout(brow)
        self.finetune = FinetuneBox(lambda: self.dataset.text().strip())
        lay.addWidget(self.finetune)
        self.curves = CurvesWidget()
        lay.addWidget(self.curves, 1)

    def _build_lite(self, lay: QVBoxLayout) -> None:
        self.note = QLabel(not_in_edition("Training (and fine-tuning)"))
        self.note.setWordWrap(True)
        self.note.setObjectName("editionNote")
        lay.addWidget(self.note)
        self.start_btn = self.stop_btn = self.resume_btn = self.finetune = None
        self.import_progress = QProgressBar()
        self.import_progress.setVisible(False)
        mon = QPushButton("Monitor a run folder...")
        mon.setToolTip("Follow the curves of a training that runs elsewhere (its run folder's metrics.jsonl)")
        mon.clicked.connect(self._monitor)
        lay.addWidget(mon)
        self.curves = CurvesWidget()
        lay.addWidget(self.curves, 1)

    def config(self, resume: bool):
        from core.training.trainer import TrainConfig  # lite edition: training is not bundled
        require_full("Training")
        out = self.run_dir.text().strip()
        if not out:
            out = str(user_models_dir() / f"{self.stage.currentText()}-{time.strftime('%Y%m%d-%H%M%S')}")
            self.run_dir.setText(out)
        return TrainConfig(dataset=self.dataset.text().strip(), out=out, stage=self.stage.currentText(),
                           epochs=self.epochs.value(), batch_size=self.batch.value(),
                           image_size=int(self.size.currentText()), fraction=float(self.fraction.currentText()),
                           precision=self.precision.currentText())

    def _start(self, resume: bool) -> None:
        self.startRequested.emit(self, resume)

    def set_running(self, running: bool) -> None:
        if self.lite:
            return
        self.start_btn.setEnabled(not running)
        self.resume_btn.setEnabled(not running)
        self.stop_btn.setEnabled(running)

    def _browse_dataset(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Dataset folder")
        if d:
            self.dataset.setText(d)

    def _import(self) -> None:
        src, _ = QFileDialog.getOpenFileName(self, "3D-IRCADb-01 archive (or cancel to pick a folder)", "",
                                             "Zip archives (*.zip)")
        if not src:
            src = QFileDialog.getExistingDirectory(self, "3D-IRCADb-01 folder (3Dircadb1.N patients)")
        if not src:
            return
        out = QFileDialog.getExistingDirectory(self, "Dataset folder to write")
        if out:
            self.dataset.setText(str(Path(out)))
            self.importRequested.emit(src, out)

    def _monitor(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Run folder to monitor")
        if d:
            self.monitorRequested.emit(d)
