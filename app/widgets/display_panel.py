"""Display controls: window/level presets, overlay toggles and opacity, reference display mode.

The panel emits signals for each choice; bound to the viewer's :class:`core.study.viewer_state.ViewerState`
(:meth:`DisplayPanel.bind`) it also writes the choices into the state and shows the state's changes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QSlider, QWidget

from core.study.viewer_state import DEFAULT_ALPHAS, PRESETS, Change, ViewerState

MODES = {"Segmentation": "prediction", "Reference (ground truth)": "reference",
         "Segmentation + reference outlines": "outlines"}


class DisplayPanel(QWidget):
    """Signals: ``windowChosen(center, width)``, ``overlayChanged(which, visible, alpha)``, ``modeChanged(mode)``."""

    windowChosen = Signal(float, float)
    overlayChanged = Signal(str, bool, int)
    modeChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.state: ViewerState | None = None
        form = QFormLayout(self)
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.currentTextChanged.connect(self._preset_chosen)
        form.addRow("Window", self.preset)
        self.wl_label = QLabel("W 400  L 40 (right-drag to adjust)")
        self.wl_label.setWordWrap(True)
        form.addRow("", self.wl_label)
        self.boxes, self.alphas = {}, {}
        for which, text in (("liver", "Liver (green)"), ("tumour", "Tumour (red)")):
            box = QCheckBox(text)
            box.setChecked(True)
            sl = QSlider(Qt.Orientation.Horizontal)
            sl.setRange(0, 255)
            sl.setValue(DEFAULT_ALPHAS[which])
            box.toggled.connect(lambda _, w=which: self._emit(w))
            sl.valueChanged.connect(lambda _, w=which: self._emit(w))
            self.boxes[which], self.alphas[which] = box, sl
            form.addRow(box, sl)
        self.mode = QComboBox()
        self.mode.addItems(list(MODES))
        self.mode.currentTextChanged.connect(self._mode_chosen)
        form.addRow("Show", self.mode)

    # Slots return None: PySide6 mishandles the reference count of a value a slot returns
    # (``Signal.emit`` returns True), which can crash the interpreter at exit.
    def _preset_chosen(self, text: str) -> None:
        if self.state is not None:
            self.state.apply_preset(text)
        self.windowChosen.emit(*PRESETS[text])

    def _mode_chosen(self, text: str) -> None:
        if self.state is not None:
            self.state.set_mode(MODES[text])
        self.modeChanged.emit(MODES[text])

    def _emit(self, which: str) -> None:
        visible, alpha = self.boxes[which].isChecked(), self.alphas[which].value()
        if self.state is not None:
            self.state.set_overlay(which, visible, alpha)
        self.overlayChanged.emit(which, visible, alpha)

    def show_window(self, center: float, width: float) -> None:
        self.wl_label.setText(f"W {width:.0f}  L {center:.0f} (right-drag to adjust)")

    def show_mode(self, mode: str) -> None:
        """Show ``mode`` in the combo box without emitting ``modeChanged``."""
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(list(MODES.values()).index(mode))
        self.mode.blockSignals(False)

    def show_overlay(self, which: str, visible: bool, alpha: int) -> None:
        """Show an overlay's visibility and opacity without emitting ``overlayChanged``."""
        box, slider = self.boxes[which], self.alphas[which]
        box.blockSignals(True)
        slider.blockSignals(True)
        box.setChecked(visible)
        slider.setValue(alpha)
        box.blockSignals(False)
        slider.blockSignals(False)

    def bind(self, state: ViewerState) -> None:
        """Write the controls' changes into ``state`` and show its changes (the signals still fire)."""
        self.state = state
        state.events.connect(self._state_changed)  # held weakly
        self.show_window(*state.window)
        self.show_mode(state.mode)
        for which in self.boxes:
            self.show_overlay(which, state.visible[which], state.alphas[which])

    def _state_changed(self, ch: Change) -> None:
        if ch.name == "window":
            self.show_window(*ch.value)
        elif ch.name == "mode":
            self.show_mode(ch.value)
        elif ch.name == "overlay":
            self.show_overlay(*ch.value)
