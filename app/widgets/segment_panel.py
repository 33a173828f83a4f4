"""Segment and correct: model choice, Segment/Cancel, brush tools, one-click fix tools, undo/redo."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from core.catalog.library import ModelEntry, default_models, scan_models
from core.catalog.model_share import import_model, target_folder
from core.runtime.choices import PAINT_TOOLS, Engine, FixTool, PaintTool
from core.runtime.edition import LITE_NAME, keras_available
from core.runtime.errors import LiverSegError

ENGINE_TEXT = {"auto": "Auto (fastest available)", "keras": "Keras", "onnx": "ONNX Runtime fp32",
               "onnx-int8": "ONNX Runtime int8 (CPU)"}
ONNX_ONLY_TIP = (f"Auto: ONNX Runtime (a GPU provider, the int8 model when it passed its Dice check, else fp32). "
                 f"This edition ({LITE_NAME}) runs ONNX models only: no Keras engine.")
TOOLS: dict[str, PaintTool | None] = {"View / pan": None, "Liver brush": "liver", "Tumour brush": "tumor",
                                         "Eraser": "erase"}
BRUSHES = PAINT_TOOLS
# One click in any view (core.study.fixes); each is one undo step.
CLICK_TOOLS: dict[str, FixTool] = {"Add lesion": "add_lesion", "Grow lesion": "grow", "Shrink lesion": "shrink",
                                   "Remove region": "remove"}
CLICK_TIPS = {"add_lesion": "click inside a missed tumour: it is grown in 3D from the CT, inside the liver",
              "grow": "click a lesion: it grows by 3 mm where the CT looks like it",
              "shrink": "click a lesion: one voxel is peeled off its outline",
              "remove": "click a liver region (e.g. the vena cava or the heart) or a lesion: it is removed"}


class SegmentPanel(QWidget):
    """Signals: ``segmentRequested(liver_path, tumour_path)``, ``cancelRequested()``, ``toolChanged(tool)``,
    ``undoRequested()``, ``redoRequested()``."""

    segmentRequested = Signal(str, str)
    cancelRequested = Signal()
    toolChanged = Signal(object)
    undoRequested = Signal()
    redoRequested = Signal()
    engineChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.extra: list[str] = []
        form = QFormLayout(self)
        self.liver = QComboBox()
        self.tumour = QComboBox()
        for c in (self.liver, self.tumour):
            c.setMinimumContentsLength(24)
            c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        form.addRow("Liver model", self.liver)
        form.addRow("Tumour model", self.tumour)
        self.engine = QComboBox()
        self.lite = not keras_available()  # the lite edition offers the ONNX engines only
        for key, text in ENGINE_TEXT.items():
            if not (self.lite and key == "keras"):
                self.engine.addItem(text, key)
        self.engine.setToolTip(ONNX_ONLY_TIP if self.lite else
                               "Auto: Keras on a GPU; else ONNX Runtime (a GPU provider, the int8 model when "
                               "it passed its Dice check, else fp32); else Keras on the CPU")
        self.engine.currentIndexChanged.connect(self._engine_changed)
        form.addRow("Engine", self.engine)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        form.addRow(self.info)
        add = QPushButton("Add model file...")
        add.clicked.connect(self._add_model)
        form.addRow(add)
        row = QHBoxLayout()
        self.segment_btn = QPushButton("Segment")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.segment_btn.clicked.connect(self._segment)
        self.cancel_btn.clicked.connect(self.cancelRequested)
        row.addWidget(self.segment_btn)
        row.addWidget(self.cancel_btn)
        form.addRow(row)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        form.addRow(self.progress)

        self.tools = QButtonGroup(self)
        self.tool_buttons = {}
        for group in (TOOLS, CLICK_TOOLS):
            trow = QHBoxLayout()
            for text, tool in group.items():
                b = QRadioButton(text)
                b.setChecked(tool is None)
                b.setToolTip(CLICK_TIPS.get(tool, ""))
                b.toggled.connect(lambda on, t=tool: self._tool_toggled(on, t))
                self.tools.addButton(b)
                self.tool_buttons[tool] = b
                trow.addWidget(b)
            form.addRow(trow)
        self.scope = QComboBox()
        self.scope.addItem("in 3D", "3d")
        self.scope.addItem("on this slice", "slice")
        self.scope.setToolTip("what Remove region removes: the connected region in 3D, or on the clicked slice only")
        form.addRow("Remove region", self.scope)
        self.radius = QSpinBox()
        self.radius.setRange(1, 50)
        self.radius.setValue(6)
        self.radius.setSuffix(" px")
        form.addRow("Brush radius", self.radius)
        urow = QHBoxLayout()
        self.undo_btn, self.redo_btn = QPushButton("Undo"), QPushButton("Redo")
        self.undo_btn.clicked.connect(self.undoRequested)
        self.redo_btn.clicked.connect(self.redoRequested)
        urow.addWidget(self.undo_btn)
        urow.addWidget(self.redo_btn)
        form.addRow(urow)
        self.liver.currentIndexChanged.connect(self._describe)
        self.tumour.currentIndexChanged.connect(self._describe)
        self.refresh()

    def set_engine(self, engine: Engine) -> None:
        i = self.engine.findData(engine)
        self.engine.blockSignals(True)
        self.engine.setCurrentIndex(max(i, 0))
        self.engine.blockSignals(False)

    def _engine_changed(self, _index: int) -> None:
        self.engineChanged.emit(self.engine.currentData())

    def _tool_toggled(self, on: bool, tool) -> None:
        if on:
            self.toolChanged.emit(tool)

    def refresh(self, select_defaults: bool = False) -> None:
        """Rescan the library (bundled, user folder, files added by hand); the default models (this
        installation's chosen ones, else the bundled real-CT ones) are selected unless the user had
        chosen another model (``select_defaults``: select them anyway, after the defaults changed)."""
        entries = scan_models(self.extra)
        defaults = dict(zip(("liver", "tumor"), default_models(entries), strict=True))
        for combo, stage in ((self.liver, "liver"), (self.tumour, "tumor")):
            previous = None if select_defaults else combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            if stage == "tumor":
                combo.addItem("(none: liver only)", None)
            for e in entries:
                if e.stage in (stage, "?"):
                    combo.addItem(e.title, e)
            want = previous if previous is not None else defaults[stage]
            paths = [getattr(combo.itemData(i), "path", None) for i in range(combo.count())]
            if want is not None and want.path in paths:
                combo.setCurrentIndex(paths.index(want.path))
            elif stage == "tumor" and combo.count() > 1:
                combo.setCurrentIndex(1)
            combo.blockSignals(False)
        self._describe()

    def _describe(self) -> None:
        parts = []
        for combo in (self.liver, self.tumour):
            e: ModelEntry = combo.currentData()
            if e is not None:
                parts.append(f"{e.stage}: {e.input_size} px, {e.recipe}, "
                             f"val Dice {format(e.val_dice, '.3f') if e.val_dice is not None else '-'}, "
                             f"{e.date or 'no date'}"
                             + (f", {e.exports}" if e.exports else "") + (f" [{e.label}]" if e.label else ""))
                if self.lite and not e.exports:
                    parts.append(f"  (no ONNX files: this edition ({LITE_NAME}) cannot run this model)")
                if e.kind == "demo":
                    parts.append("  (a demo model, trained on synthetic phantoms: not for real CT)")
        self.info.setText("\n".join(parts) or "No model found: train one, or add a model file.")
        self.segment_btn.setEnabled(self.liver.currentData() is not None)

    def _add_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add model", "", "Models (*.keras *.h5 *.zip);;Keras models "
                                              "(*.keras *.h5);;Shared models, liverseg export-model (*.zip)")
        if path.lower().endswith(".zip"):
            self.import_zip(path)
        elif path:
            self.extra.append(path)
            self.refresh()

    def import_zip(self, path: str) -> str | None:
        """Install a shared model (core.catalog.model_share) into the user's models folder, rescan and
        select it; the installed model file, or None (refused: the error is shown; or not replaced)."""
        try:
            force = target_folder(path).exists()
            if force and QMessageBox.question(self, "Add model", f"A model named {target_folder(path).name} is "
                                              f"installed already. Replace it?") != QMessageBox.StandardButton.Yes:
                return None
            model = str(import_model(path, force=force))
        except LiverSegError as exc:
            self._show_error(str(exc))
            return None
        self.refresh()
        for combo in (self.liver, self.tumour):
            paths = [getattr(combo.itemData(i), "path", None) for i in range(combo.count())]
            if model in paths:
                combo.setCurrentIndex(paths.index(model))
        return model

    def _show_error(self, message: str) -> None:
        show = getattr(self.window(), "show_error", None)  # the main window's error dialog
        if callable(show):
            show(message, "")
            return
        self.errorBox = QMessageBox(QMessageBox.Icon.Warning, "LiverSeg Studio", message, parent=self)
        self.errorBox.open()

    def selected_models(self) -> tuple[str | None, str | None]:
        """(liver, tumour) model paths selected (None: no liver model; no tumour model)."""
        liver, tumour = self.liver.currentData(), self.tumour.currentData()
        return (liver.path if liver is not None else None, tumour.path if tumour is not None else None)

    def _segment(self) -> None:
        liver, tumour = self.selected_models()
        if liver is not None:
            self.segmentRequested.emit(liver, tumour or "")

    def set_busy(self, busy: bool) -> None:
        self.segment_btn.setEnabled(not busy and self.liver.currentData() is not None)
        self.cancel_btn.setEnabled(busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)
