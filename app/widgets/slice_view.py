"""Orthogonal slice views (axial, coronal, sagittal) of CT with label overlays (pyqtgraph).

One :class:`PlaneView` per orientation; :class:`OrthoViewer` links three of
them with a shared cursor (crosshair), window/level and overlay settings.
Geometry is in millimetres, so the aspect ratio follows the voxel spacing.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

# (center, width) in HU
PRESETS = {
    "Abdomen 400/40": (40.0, 400.0),
    "Liver 150/90": (90.0, 150.0),
    "Bone 2500/480": (480.0, 2500.0),
    "Notebooks [-100, 400]": (150.0, 500.0),
}
LIVER_RGB, TUMOUR_RGB = (0, 220, 0), (255, 40, 40)
REF_LIVER_RGB, REF_TUMOUR_RGB = (120, 255, 255), (255, 220, 0)
AXES = ("axial", "coronal", "sagittal")


def overlay_lut(liver_alpha: int, tumour_alpha: int) -> np.ndarray:
    """256-entry RGBA table: 1 liver green, 2 tumour red; 3 and 4 are reference outlines."""
    lut = np.zeros((256, 4), dtype=np.ubyte)
    lut[1] = (*LIVER_RGB, liver_alpha)
    lut[2] = (*TUMOUR_RGB, tumour_alpha)
    lut[3] = (*REF_LIVER_RGB, 255 if liver_alpha else 0)
    lut[4] = (*REF_TUMOUR_RGB, 255 if tumour_alpha else 0)
    return lut


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a 2D mask (4-neighbourhood)."""
    m = mask.astype(bool)
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


class _ViewBox(pg.ViewBox):
    """Right-drag changes window/level; left-drag pans, or paints when a brush is active."""

    def __init__(self, owner: "PlaneView"):
        super().__init__(lockAspect=True, invertY=True)
        self.owner = owner
        self.setMenuEnabled(False)

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            d = ev.pos() - ev.lastPos()
            self.owner.windowDragged.emit(float(d.x()), float(d.y()))
            return
        if ev.button() == Qt.MouseButton.LeftButton and self.owner.brush_active:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            if ev.isStart():
                self.owner.strokeStarted.emit()
            self.owner._paint_at(p)
            if ev.isFinish():
                self.owner.strokeFinished.emit()
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            if self.owner.brush_active:
                self.owner.strokeStarted.emit()
                self.owner._paint_at(p)
                self.owner.strokeFinished.emit()
            else:
                self.owner._clicked(p)
            return
        super().mouseClickEvent(ev)


class PlaneView(QWidget):
    """One orientation of a volume with CT, overlay and crosshair.

    Signals:
        indexChanged(int): the slice shown changed.
        cursorMoved(str): status text (voxel, mm, HU) under the mouse.
        pointClicked(int, int, int): (z, y, x) voxel clicked.
        windowDragged(float, float): right-drag deltas (pixels).
        painted(int, float, float): (z, y, x) brush position (axial view only).
        strokeStarted(), strokeFinished()
    """

    indexChanged = Signal(int)
    cursorMoved = Signal(str)
    pointClicked = Signal(int, int, int)
    windowDragged = Signal(float, float)
    painted = Signal(int, float, float)
    strokeStarted = Signal()
    strokeFinished = Signal()

    def __init__(self, axis: int = 0, parent=None):
        super().__init__(parent)
        self.axis = axis
        self.hu: Optional[np.ndarray] = None
        self.label: Optional[np.ndarray] = None
        self.reference: Optional[np.ndarray] = None
        self.mode = "prediction"  # "prediction", "reference" or "outlines"
        self.spacing = (1.0, 1.0, 1.0)
        self.index = -1
        self.window = PRESETS["Abdomen 400/40"]
        self.alphas = {"liver": 110, "tumour": 150}
        self.visible = {"liver": True, "tumour": True}
        self.brush_active = False

        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("k")
        self.vb = _ViewBox(self)
        self.glw.addItem(self.vb)
        self.ct_item = pg.ImageItem()
        self.ov_item = pg.ImageItem()
        self.ov_item.setZValue(10)
        self.vb.addItem(self.ct_item)
        self.vb.addItem(self.ov_item)
        pen = pg.mkPen((255, 200, 0, 140), width=1)
        self.hline = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=pen)
        for line in (self.hline, self.vline):
            line.setZValue(20)
            self.vb.addItem(line, ignoreBounds=True)
        self.glw.scene().sigMouseMoved.connect(self._mouse_moved)
        self.glw.viewport().installEventFilter(self)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self.set_index)
        self.pos_label = QLabel("-")
        self.title = AXES[axis]
        row = QHBoxLayout()
        row.addWidget(QLabel(self.title))
        row.addWidget(self.slider, 1)
        row.addWidget(self.pos_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.glw, 1)
        lay.addLayout(row)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # -- geometry -------------------------------------------------------------
    def _plane_spacing(self) -> tuple[float, float]:
        """(row, column) spacing in mm of this view's images."""
        sz, sy, sx = self.spacing
        return {0: (sy, sx), 1: (sz, sx), 2: (sz, sy)}[self.axis]

    def _take(self, vol: np.ndarray, k: int) -> np.ndarray:
        """The 2D image of slice ``k`` (coronal/sagittal flipped so the head is up)."""
        if self.axis == 0:
            return vol[k]
        img = vol[:, k, :] if self.axis == 1 else vol[:, :, k]
        return img[::-1]

    def voxel_of(self, p: QPointF) -> Optional[tuple[int, int, int]]:
        """(z, y, x) voxel under a view point, or None outside the image."""
        if self.hu is None:
            return None
        rs, cs = self._plane_spacing()
        r, c = int(np.floor(p.y() / rs)), int(np.floor(p.x() / cs))
        nz, ny, nx = self.hu.shape
        k = self.index
        if self.axis == 0:
            z, y, x = k, r, c
        elif self.axis == 1:
            z, y, x = nz - 1 - r, k, c
        else:
            z, y, x = nz - 1 - r, c, k
        if 0 <= z < nz and 0 <= y < ny and 0 <= x < nx:
            return z, y, x
        return None

    # -- data -----------------------------------------------------------------
    def set_volume(self, hu: np.ndarray, spacing, label=None, reference=None) -> None:
        self.hu, self.label, self.reference = hu, label, reference
        self.spacing = tuple(float(s) for s in spacing)
        n = hu.shape[self.axis]
        img = self._take(hu, 0)
        rs, cs = self._plane_spacing()
        rect = QRectF(0, 0, img.shape[1] * cs, img.shape[0] * rs)
        # setRect scales by the current image size: give both items an image of the right shape first.
        self.ct_item.setImage(img, autoLevels=False, levels=self._levels())
        self.ov_item.setImage(np.zeros(img.shape, np.uint8), autoLevels=False, levels=(0, 255))
        self.ct_item.setRect(rect)
        self.ov_item.setRect(rect)
        self.slider.blockSignals(True)
        self.slider.setRange(0, n - 1)
        self.slider.blockSignals(False)
        self.index = -1
        self.set_index(n // 2)
        self.vb.autoRange(padding=0.02)

    def set_labels(self, label=None, reference=None) -> None:
        self.label, self.reference = label, reference
        self.redraw_overlay()

    # -- display --------------------------------------------------------------
    def set_index(self, k: int) -> None:
        if self.hu is None:
            return
        k = int(np.clip(k, 0, self.hu.shape[self.axis] - 1))
        if k == self.index:
            return
        self.index = k
        self.ct_item.setImage(self._take(self.hu, k), autoLevels=False, levels=self._levels())
        self.redraw_overlay()
        if self.slider.value() != k:
            self.slider.blockSignals(True)
            self.slider.setValue(k)
            self.slider.blockSignals(False)
        self.pos_label.setText(f"{k + 1}/{self.hu.shape[self.axis]}")
        self.indexChanged.emit(k)

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
        self.redraw_overlay()

    def overlay_image(self) -> Optional[np.ndarray]:
        """The uint8 overlay of the current slice (0..4, see :func:`overlay_lut`)."""
        lab = self.label if self.mode != "reference" else self.reference
        img = None if lab is None else self._take(lab, self.index)
        if self.mode == "outlines" and self.reference is not None:
            ref = self._take(self.reference, self.index)
            img = np.zeros(ref.shape, np.uint8) if img is None else img.copy()
            img[outline(ref > 0)] = 3
            img[outline(ref == 2)] = 4
        return img

    def redraw_overlay(self) -> None:
        if self.hu is None or self.index < 0:
            return
        img = self.overlay_image()
        if img is None:
            img = np.zeros(self.ct_item.image.shape, np.uint8)  # keep the item's shape (and so its rect)
        lut = overlay_lut(self.alphas["liver"] if self.visible["liver"] else 0,
                          self.alphas["tumour"] if self.visible["tumour"] else 0)
        self.ov_item.setImage(img, lut=lut, levels=(0, 255), autoLevels=False)

    def set_crosshair(self, z: int, y: int, x: int) -> None:
        """Place the crosshair lines through voxel (z, y, x) (in this view's plane)."""
        if self.hu is None:
            return
        rs, cs = self._plane_spacing()
        nz = self.hu.shape[0]
        if self.axis == 0:
            row, col = y, x
        elif self.axis == 1:
            row, col = nz - 1 - z, x
        else:
            row, col = nz - 1 - z, y
        self.hline.setPos((row + 0.5) * rs)
        self.vline.setPos((col + 0.5) * cs)

    # -- input ----------------------------------------------------------------
    def eventFilter(self, obj, ev):
        if ev.type() == ev.Type.Wheel and not (ev.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.set_index(self.index + (1 if ev.angleDelta().y() > 0 else -1))
            return True
        return super().eventFilter(obj, ev)

    def keyPressEvent(self, ev):
        steps = {Qt.Key.Key_Up: 1, Qt.Key.Key_Right: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_Left: -1,
                 Qt.Key.Key_PageUp: 10, Qt.Key.Key_PageDown: -10}
        if ev.key() in steps and self.hu is not None:
            self.set_index(self.index + steps[ev.key()])
        else:
            super().keyPressEvent(ev)

    def _mouse_moved(self, pos) -> None:
        if self.hu is None:
            return
        p = self.vb.mapSceneToView(pos)
        v = self.voxel_of(p)
        if v is not None:
            z, y, x = v
            sz, sy, sx = self.spacing
            self.cursorMoved.emit(f"voxel (x {x}, y {y}, z {z})   ({x * sx:.1f}, {y * sy:.1f}, {z * sz:.1f}) mm"
                                  f"   {int(self.hu[z, y, x])} HU")

    def _clicked(self, p: QPointF) -> None:
        v = self.voxel_of(p)
        if v is not None:
            self.pointClicked.emit(*v)

    def _paint_at(self, p: QPointF) -> None:
        if self.axis != 0 or self.hu is None:
            return
        rs, cs = self._plane_spacing()
        self.painted.emit(self.index, p.y() / rs - 0.5, p.x() / cs - 0.5)


class OrthoViewer(QWidget):
    """Axial (large), coronal and sagittal views with a linked crosshair.

    Signal ``cursorMoved(str)`` forwards the status text of any view.
    """

    cursorMoved = Signal(str)
    windowChanged = Signal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.views = [PlaneView(a) for a in range(3)]
        self.axial, self.coronal, self.sagittal = self.views
        self.cursor = (0, 0, 0)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.axial, 0, 0, 2, 1)
        grid.addWidget(self.coronal, 0, 1)
        grid.addWidget(self.sagittal, 1, 1)
        grid.setColumnStretch(0, 2)
        grid.setColumnStretch(1, 1)
        for v in self.views:
            v.cursorMoved.connect(self.cursorMoved)
            v.pointClicked.connect(self.set_cursor)
            v.windowDragged.connect(self._drag_window)
            v.indexChanged.connect(lambda k, a=v.axis: self._index_changed(a, k))

    @property
    def window(self):
        return self.axial.window

    def set_study(self, hu, spacing, label=None, reference=None) -> None:
        for v in self.views:
            v.set_volume(hu, spacing, label, reference)
        z, y, x = (s // 2 for s in hu.shape)
        self.set_cursor(z, y, x)

    def set_labels(self, label=None, reference=None, mode: Optional[str] = None) -> None:
        """Show new labels (and a display mode with them): one redraw per view."""
        for v in self.views:
            if mode is not None:
                v.mode = mode
            v.set_labels(label, reference)

    def redraw_overlays(self) -> None:
        for v in self.views:
            v.redraw_overlay()

    def set_mode(self, mode: str) -> None:
        for v in self.views:
            v.mode = mode
            v.redraw_overlay()

    def set_cursor(self, z: int, y: int, x: int) -> None:
        self.cursor = (int(z), int(y), int(x))
        self.axial.set_index(z)
        self.coronal.set_index(y)
        self.sagittal.set_index(x)
        for v in self.views:
            v.set_crosshair(*self.cursor)

    def _index_changed(self, axis: int, k: int) -> None:
        c = list(self.cursor)
        if c[axis] == k:
            return
        c[axis] = k
        self.cursor = tuple(c)
        for v in self.views:
            v.set_crosshair(*self.cursor)

    def set_window(self, center: float, width: float) -> None:
        for v in self.views:
            v.set_window(center, width)

    def _drag_window(self, dx: float, dy: float) -> None:
        c, w = self.window
        w = max(1.0, w + dx * 2.0)
        c = c - dy * 1.0
        self.set_window(c, w)
        self.windowChanged.emit(c, w)

    def set_overlay(self, which: str, visible=None, alpha=None) -> None:
        for v in self.views:
            v.set_overlay(which, visible, alpha)
