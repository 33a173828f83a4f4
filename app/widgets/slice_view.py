"""Axial slice viewer: CT with window/level and liver/tumour overlays (pyqtgraph)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QSlider, QVBoxLayout, QWidget, QLabel

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

# (center, width) in HU
PRESETS = {
    "Abdomen 400/40": (40.0, 400.0),
    "Liver 150/90": (90.0, 150.0),
    "Bone 2500/480": (480.0, 2500.0),
    "Notebooks [-100, 400]": (150.0, 500.0),
}
LIVER_RGB, TUMOUR_RGB = (0, 220, 0), (255, 40, 40)


def overlay_lut(liver_alpha: int, tumour_alpha: int) -> np.ndarray:
    """256-entry RGBA table for label images (0 clear, 1 liver green, 2 tumour red)."""
    lut = np.zeros((256, 4), dtype=np.ubyte)
    lut[1] = (*LIVER_RGB, liver_alpha)
    lut[2] = (*TUMOUR_RGB, tumour_alpha)
    return lut


class SliceView(QWidget):
    """Shows one axial slice of a volume with an optional label overlay.

    Slices scroll with the wheel, the slider, the arrow keys and Page Up/Down;
    Ctrl+wheel zooms and dragging pans. Geometry is in mm, so the aspect ratio
    follows the pixel spacing.

    Signals:
        sliceChanged(int): the shown slice index.
        cursorMoved(str): a status line (voxel, mm, HU) for the cursor.
    """

    sliceChanged = Signal(int)
    cursorMoved = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.hu: Optional[np.ndarray] = None
        self.label: Optional[np.ndarray] = None
        self.spacing = (1.0, 1.0, 1.0)
        self.index = 0
        self.window = PRESETS["Abdomen 400/40"]
        self.alphas = {"liver": 110, "tumour": 150}
        self.visible = {"liver": True, "tumour": True}

        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("k")
        self.vb = self.glw.addViewBox(lockAspect=True, invertY=True)
        self.vb.setMenuEnabled(False)
        self.ct_item = pg.ImageItem()
        self.ov_item = pg.ImageItem()
        self.ov_item.setZValue(10)
        self.vb.addItem(self.ct_item)
        self.vb.addItem(self.ov_item)
        self.glw.scene().sigMouseMoved.connect(self._mouse_moved)
        self.glw.viewport().installEventFilter(self)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self.set_slice)
        self.pos_label = QLabel("-")
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.pos_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.glw, 1)
        lay.addLayout(row)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # -- data ---------------------------------------------------------------
    def set_volume(self, hu: np.ndarray, spacing, label: Optional[np.ndarray] = None) -> None:
        """Show a volume: ``hu`` int16 [Z, Y, X], ``spacing`` (z, y, x) mm, ``label`` uint8 or None."""
        self.hu, self.label, self.spacing = hu, label, tuple(float(s) for s in spacing)
        z, y, x = hu.shape
        rect = QRectF(0, 0, x * self.spacing[2], y * self.spacing[1])
        self.ct_item.setRect(rect)
        self.ov_item.setRect(rect)
        self.slider.blockSignals(True)
        self.slider.setRange(0, z - 1)
        self.slider.blockSignals(False)
        self.index = -1
        self.set_slice(z // 2)
        self.vb.autoRange(padding=0.02)

    def set_label(self, label: Optional[np.ndarray]) -> None:
        self.label = label
        self._draw_overlay()

    # -- display ------------------------------------------------------------
    def set_slice(self, k: int) -> None:
        if self.hu is None:
            return
        k = int(np.clip(k, 0, self.hu.shape[0] - 1))
        if k == self.index:
            return
        self.index = k
        self.ct_item.setImage(self.hu[k], autoLevels=False, levels=self._levels())
        self._draw_overlay()
        if self.slider.value() != k:
            self.slider.blockSignals(True)
            self.slider.setValue(k)
            self.slider.blockSignals(False)
        self.pos_label.setText(f"slice {k + 1}/{self.hu.shape[0]}")
        self.sliceChanged.emit(k)

    def _levels(self):
        c, w = self.window
        return (c - w / 2, c + w / 2)

    def set_window(self, center: float, width: float) -> None:
        self.window = (float(center), max(1.0, float(width)))
        self.ct_item.setLevels(self._levels())

    def set_overlay(self, which: str, visible: Optional[bool] = None, alpha: Optional[int] = None) -> None:
        if visible is not None:
            self.visible[which] = visible
        if alpha is not None:
            self.alphas[which] = int(alpha)
        self._draw_overlay()

    def _draw_overlay(self) -> None:
        if self.label is None or self.hu is None or self.index < 0:
            self.ov_item.clear()
            return
        lut = overlay_lut(self.alphas["liver"] if self.visible["liver"] else 0,
                          self.alphas["tumour"] if self.visible["tumour"] else 0)
        self.ov_item.setImage(self.label[self.index], lut=lut, levels=(0, 255), autoLevels=False)

    # -- input --------------------------------------------------------------
    def eventFilter(self, obj, ev):
        if ev.type() == ev.Type.Wheel and not (ev.modifiers() & Qt.KeyboardModifier.ControlModifier):
            step = 1 if ev.angleDelta().y() > 0 else -1
            self.set_slice(self.index + step)
            return True
        return super().eventFilter(obj, ev)

    def keyPressEvent(self, ev):
        steps = {Qt.Key.Key_Up: 1, Qt.Key.Key_Right: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_Left: -1,
                 Qt.Key.Key_PageUp: 10, Qt.Key.Key_PageDown: -10}
        if ev.key() in steps and self.hu is not None:
            self.set_slice(self.index + steps[ev.key()])
        else:
            super().keyPressEvent(ev)

    def _mouse_moved(self, pos) -> None:
        if self.hu is None:
            return
        p = self.vb.mapSceneToView(pos)
        x, y = int(p.x() / self.spacing[2]), int(p.y() / self.spacing[1])
        z = self.index
        if 0 <= x < self.hu.shape[2] and 0 <= y < self.hu.shape[1]:
            self.cursorMoved.emit(f"voxel ({x}, {y}, {z})   {p.x():.1f}, {p.y():.1f}, "
                                  f"{z * self.spacing[0]:.1f} mm   {int(self.hu[z, y, x])} HU")
