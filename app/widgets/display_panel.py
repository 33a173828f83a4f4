"""Display controls: window/level presets, overlay toggles and opacity, reference display mode."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QSlider, QWidget

from .slice_view import PRESETS

MODES = {"Segmentation": "prediction", "Reference (ground truth)": "reference",
         "Segmentation + reference outlines": "outlines"}


class DisplayPanel(QWidget):
    """Signals: ``windowChosen(center, width)``, ``overlayChanged(which, visible, alpha)``, ``modeChanged(mode)``."""

    windowChosen = Signal(float, float)
    overlayChanged = Signal(str, bool, int)
    modeChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        form = QFormLayout(self)
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.currentTextChanged.connect(self._preset_chosen)
        form.addRow("Window", self.preset)
        self.wl_label = QLabel("W 400  L 40 (right-drag to adjust)")
        self.wl_label.setWordWrap(True)
        form.addRow("", self.wl_label)
        self.boxes, self.alphas = {}, {}
        for which, text, alpha in (("liver", "Liver (green)", 110), ("tumour", "Tumour (red)", 150)):
            box = QCheckBox(text)
            box.setChecked(True)
            sl = QSlider(Qt.Orientation.Horizontal)
            sl.setRange(0, 255)
            sl.setValue(alpha)
            box.toggled.connect(lambda _, w=which: self._emit(w))
            sl.valueChanged.connect(lambda _, w=which: self._emit(w))
            self.boxes[which], self.alphas[which] = box, sl
            form.addRow(box, sl)
        self.mode = QComboBox()
        self.mode.addItems(list(MODES))
        self.mode.currentTextChanged.connect(self._mode_chosen)
        form.addRow("Show", self.mode)

    # Slots return None: PySide6 mishandles the reference count of a value a slot returns
    # (``Signal.emit`` returns True), which crashed the interpreter at exit.
    def _preset_chosen(self, text: str) -> None:
        self.windowChosen.emit(*PRESETS[text])

    def _mode_chosen(self, text: str) -> None:
        self.modeChanged.emit(MODES[text])

    def _emit(self, which: str) -> None:
        self.overlayChanged.emit(which, self.boxes[which].isChecked(), self.alphas[which].value())

    def show_window(self, center: float, width: float) -> None:
        self.wl_label.setText(f"W {width:.0f}  L {center:.0f} (right-drag to adjust)")
