"""Orthogonal slice views (axial, coronal, sagittal) of CT with label overlays (pyqtgraph).

One :class:`PlaneView` per orientation; :class:`OrthoViewer` links three of
them through one :class:`core.study.viewer_state.ViewerState` (cursor and crosshair,
window/level, display mode, overlays): the views write the user's changes into
the state and redraw when it tells them what changed. The volumes, labels and
spacing are data the views hold. Geometry is in millimetres, so the aspect
ratio follows the voxel spacing.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from core.runtime.labels import LIVER, TUMOUR
from core.study.viewer_state import PRESETS, Change, ViewerState  # noqa: F401  (PRESETS: the panels import it here)

from .overlay import REF_LIVER_OUTLINE, REF_TUMOUR_OUTLINE, outline, overlay_lut

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

AXES = ("axial", "coronal", "sagittal")


class _ViewBox(pg.ViewBox):
    """Right-drag changes window/level; left-drag pans, or paints when a brush is active."""

    def __init__(self, owner: PlaneView):
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
        indexChanged(int): the slice shown changed (it is ``state.cursor[axis]``).
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

    def __init__(self, axis: int = 0, parent=None, state: ViewerState | None = None):
        super().__init__(parent)
        self.axis = axis
        self.state = ViewerState() if state is None else state  # shared by the views of one viewer
        self.hu: np.ndarray | None = None
        self.label: np.ndarray | None = None
        self.reference: np.ndarray | None = None
        self.spacing = (1.0, 1.0, 1.0)
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
        self.state.events.connect(self._state_changed)  # held weakly

    # -- the state this view renders ----------------------------------------------
    @property
    def index(self) -> int:
        """The slice shown (-1 before a volume)."""
        return self.state.index(self.axis)

    @property
    def mode(self) -> str:
        """Display mode, one of :data:`core.study.viewer_state.MODES`."""
        return self.state.mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self.state.set_mode(mode)

    @property
    def window(self) -> tuple[float, float]:
        return self.state.window

    @property
    def alphas(self):
        return self.state.alphas

    @property
    def visible(self):
        return self.state.visible

    def _state_changed(self, ch: Change) -> None:
        """Redraw what ``ch`` changed: only this view's slice, its overlay, its levels, its crosshair."""
        if self.hu is None or self.state.shape != self.hu.shape:
            return  # the state belongs to a volume this view does not hold (yet)
        if ch.name == "volume" or (ch.name == "cursor" and ch.value[self.axis] != ch.old[self.axis]):
            self._show_slice()
        if ch.name in ("volume", "cursor"):
            self.set_crosshair(*self.state.cursor)
        elif ch.name == "window":
            self.ct_item.setLevels(self.state.levels)
        elif ch.name in ("mode", "overlay"):
            self.redraw_overlay()

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

    def voxel_of(self, p: QPointF) -> tuple[int, int, int] | None:
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
        """Show a volume (at its centre slice). With a shared state, use :meth:`OrthoViewer.set_study`."""
        self.load_volume(hu, spacing, label, reference)
        self.state.set_shape(hu.shape)  # -> _state_changed("volume") draws the slice

    def load_volume(self, hu: np.ndarray, spacing, label=None, reference=None) -> None:
        """Take the data and set up the geometry; drawn when the state gets the volume's shape."""
        self.hu, self.label, self.reference = hu, label, reference
        self.spacing = tuple(float(s) for s in spacing)
        img = self._take(hu, 0)
        rs, cs = self._plane_spacing()
        rect = QRectF(0, 0, img.shape[1] * cs, img.shape[0] * rs)
        # setRect scales by the current image size: give both items an image of the right shape first.
        self.ct_item.setImage(img, autoLevels=False, levels=self.state.levels)
        self.ov_item.setImage(np.zeros(img.shape, np.uint8), autoLevels=False, levels=(0, 255))
        self.ct_item.setRect(rect)
        self.ov_item.setRect(rect)
        self.slider.blockSignals(True)
        self.slider.setRange(0, hu.shape[self.axis] - 1)
        self.slider.blockSignals(False)
        self.vb.autoRange(padding=0.02)

    def set_labels(self, label=None, reference=None) -> None:
        self.label, self.reference = label, reference
        self.redraw_overlay()

    # -- display --------------------------------------------------------------
    def set_index(self, k: int) -> None:
        """Show slice ``k`` (clamped); the state moves the cursor and the views redraw."""
        if self.hu is not None:
            self.state.set_index(self.axis, k)

    def _show_slice(self) -> None:
        """Draw the state's slice: one image update, one overlay redraw."""
        k = self.index
        self.ct_item.setImage(self._take(self.hu, k), autoLevels=False, levels=self.state.levels)
        self.redraw_overlay()
        if self.slider.value() != k:
            self.slider.blockSignals(True)
            self.slider.setValue(k)
            self.slider.blockSignals(False)
        self.pos_label.setText(f"{k + 1}/{self.hu.shape[self.axis]}")
        self.indexChanged.emit(k)

    def set_window(self, center: float, width: float) -> None:
        self.state.set_window(center, width)

    def set_overlay(self, which: str, visible: bool | None = None, alpha: int | None = None) -> None:
        self.state.set_overlay(which, visible, alpha)

    def overlay_image(self) -> np.ndarray | None:
        """The uint8 overlay of the current slice (0..4, see :func:`overlay_lut`)."""
        lab = self.label if self.mode != "reference" else self.reference
        img = None if lab is None else self._take(lab, self.index)
        if self.mode == "outlines" and self.reference is not None:
            ref = self._take(self.reference, self.index)
            img = np.zeros(ref.shape, np.uint8) if img is None else img.copy()
            img[outline(ref >= LIVER)] = REF_LIVER_OUTLINE
            img[outline(ref == TUMOUR)] = REF_TUMOUR_OUTLINE
        return img

    def redraw_overlay(self) -> None:
        if self.hu is None or self.index < 0:
            return
        img = self.overlay_image()
        if img is None:
            img = np.zeros(self.ct_item.image.shape, np.uint8)  # keep the item's shape (and so its rect)
        lut = overlay_lut(self.state.alpha("liver"), self.state.alpha("tumour"))
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
            if self.hu is not None:
                self.state.step(self.axis, 1 if ev.angleDelta().y() > 0 else -1)
            return True
        return super().eventFilter(obj, ev)

    def keyPressEvent(self, ev):
        steps = {Qt.Key.Key_Up: 1, Qt.Key.Key_Right: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_Left: -1,
                 Qt.Key.Key_PageUp: 10, Qt.Key.Key_PageDown: -10}
        if ev.key() in steps and self.hu is not None:
            self.state.step(self.axis, steps[ev.key()])
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

    The three views render one :class:`ViewerState` (``self.state``): the cursor is the three
    slice indices, and the window, display mode and overlays are shared.
    Signal ``cursorMoved(str)`` forwards the status text of any view; ``windowChanged(c, w)``
    follows a right-drag.
    """

    cursorMoved = Signal(str)
    windowChanged = Signal(float, float)

    def __init__(self, parent=None, state: ViewerState | None = None):
        super().__init__(parent)
        self.state = ViewerState() if state is None else state
        self.views = [PlaneView(a, state=self.state) for a in range(3)]
        self.axial, self.coronal, self.sagittal = self.views
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

    @property
    def cursor(self) -> tuple[int, int, int]:
        return self.state.cursor

    @property
    def window(self) -> tuple[float, float]:
        return self.state.window

    def set_study(self, hu, spacing, label=None, reference=None) -> None:
        """Show a volume: every view gets the data, then the state its shape (cursor at the centre)."""
        for v in self.views:
            v.load_volume(hu, spacing, label, reference)
        self.state.set_shape(hu.shape)

    def set_labels(self, label=None, reference=None, mode: str | None = None) -> None:
        """Show new labels (and a display mode with them): one redraw per view."""
        for v in self.views:
            v.label, v.reference = label, reference
        if mode is None or not self.state.set_mode(mode):  # a new mode redraws the views itself
            self.redraw_overlays()

    def redraw_overlays(self) -> None:
        for v in self.views:
            v.redraw_overlay()

    def set_mode(self, mode: str) -> None:
        self.state.set_mode(mode)

    def set_cursor(self, z: int, y: int, x: int) -> None:
        self.state.set_cursor(z, y, x)

    def set_window(self, center: float, width: float) -> None:
        self.state.set_window(center, width)

    def _drag_window(self, dx: float, dy: float) -> None:
        self.state.drag_window(dx, dy)
        self.windowChanged.emit(*self.state.window)

    def set_overlay(self, which: str, visible=None, alpha=None) -> None:
        self.state.set_overlay(which, visible, alpha)
