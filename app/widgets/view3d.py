"""The 3D view: liver (translucent green) and lesions (red, the selected one yellow) as surfaces
(:mod:`core.study.surfaces`), rotated and zoomed with the mouse (pyqtgraph's OpenGL view); a click on
a lesion selects it. Where OpenGL is missing (no PyOpenGL, a display without OpenGL, a remote
session) or fails, the view says so in one line and the rest of the app works: a child process
tries OpenGL first (:mod:`app.widgets.gl_probe`), and the driver's LLVM is kept apart from
TensorFlow's before this process touches OpenGL (:mod:`core.runtime.gl_isolation`).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QVector3D
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .gl_probe import GLProbe, problem_of

LIVER_RGBA = (0.25, 0.8, 0.35, 0.25)
TUMOUR_RGBA = (0.9, 0.15, 0.15, 1.0)
SELECTED_RGBA = (1.0, 0.85, 0.1, 1.0)
PICK_PX = 12  # a click this far outside a lesion's projected outline still picks it


def opengl_problem() -> str:
    """Why the 3D view cannot run here as far as Python's side tells, in one line; "" when it may (the
    display's OpenGL is then tried in a child process, :class:`app.widgets.gl_probe.GLProbe`)."""
    try:
        import OpenGL.GL  # noqa: F401
        import pyqtgraph.opengl  # noqa: F401
    except Exception as exc:  # ImportError, or PyOpenGL finding no GL library
        return f"3D view unavailable: OpenGL for Python is missing ({type(exc).__name__}: {exc})"
    return ""


class View3D(QWidget):
    """Signals ``lesionPicked(z, y, x)``: the anchor of the lesion clicked; ``ready``: the OpenGL view
    was made (after the child process's answer) or ``problem`` says in one line why not."""

    lesionPicked = Signal(int, int, int)
    ready = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.problem = opengl_problem()
        self.message = QLabel(self.problem or "Checking OpenGL...")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.gl = None
        self.meshes: list = []
        self.items: list = []
        self.selected: tuple | None = None
        self.checked = bool(self.problem)  # whether the answer is in (OpenGL on, or a problem)
        if not self.problem:
            self._probe = GLProbe(self, self._probed)

    def _probed(self, answer: dict) -> None:
        self.problem = problem_of(answer, QGuiApplication.platformName())
        self.checked = True
        if self.problem:
            self.message.setText(self.problem)
        else:
            self._make_view()
        self.ready.emit()

    def _make_view(self) -> None:
        self.message.setText("No segmentation yet.")
        import pyqtgraph.opengl as gl
        self.gl = gl.GLViewWidget()
        self.gl.setBackgroundColor((20, 20, 24))
        self.gl.mouseReleaseEvent = self._released
        self.gl.mousePressEvent = self._pressed
        self.layout().addWidget(self.gl, 1)
        self._press = None
        if self.meshes:
            self.set_meshes(self.meshes, self.selected)

    @property
    def available(self) -> bool:
        return self.gl is not None

    def set_meshes(self, meshes: list, selected: tuple | None = None) -> None:
        """Show ``meshes`` (:class:`core.study.surfaces.Mesh`), the lesion anchored at ``selected`` yellow."""
        self.meshes, self.selected = list(meshes), selected
        n = sum(m.kind == "tumor" for m in meshes)
        if not self.available:
            return
        self.message.setText(f"{n} lesion(s); drag to rotate, wheel to zoom, click a lesion to select it"
                             if meshes else "No segmentation yet.")
        import pyqtgraph.opengl as gl
        for item in self.items:
            self.gl.removeItem(item)
        self.items = []
        for m in sorted(self.meshes, key=lambda m: m.kind == "liver"):  # opaque first, the translucent liver last
            colour = LIVER_RGBA if m.kind == "liver" else (SELECTED_RGBA if m.anchor == selected else TUMOUR_RGBA)
            item = gl.GLMeshItem(vertexes=m.vertices, faces=m.faces, color=colour, smooth=False, shader="shaded",
                                 glOptions="translucent" if m.kind == "liver" else "opaque")
            self.gl.addItem(item)
            self.items.append(item)
        if meshes and (selected is None or not hasattr(self, "_framed")):
            self._frame()

    def select(self, anchor: tuple | None) -> None:
        if anchor != self.selected:
            self.set_meshes(self.meshes, anchor)

    def _frame(self) -> None:
        pts = np.concatenate([m.vertices for m in self.meshes])
        lo, hi = pts.min(0), pts.max(0)
        c = (lo + hi) / 2
        self.gl.setCameraPosition(pos=QVector3D(float(c[0]), float(c[1]), float(c[2])),
                                  distance=float(np.linalg.norm(hi - lo)) * 1.1, elevation=10,
                                  azimuth=-90)  # from the front (-Y): the patient's right on the left
        self._framed = True

    def pick(self, px: float, py: float) -> tuple | None:
        """The anchor of the lesion under the widget point (px, py), or None: each lesion's centre and
        radius projected with the view's matrices, the nearest whose outline holds the point."""
        if not self.available:
            return None
        w, h = max(1, self.gl.width()), max(1, self.gl.height())
        mvp = self.mvp()
        best, best_d = None, None
        for m in self.meshes:
            if m.kind != "tumor":
                continue
            c = mvp.map(QVector3D(*[float(v) for v in m.centre]))
            edge = mvp.map(QVector3D(*[float(v) for v in m.centre]) + self._right() * m.radius)
            sx, sy = (c.x() + 1) / 2 * w, (1 - c.y()) / 2 * h
            r = np.hypot((edge.x() - c.x()) / 2 * w, (edge.y() - c.y()) / 2 * h)
            d = np.hypot(px - sx, py - sy)
            if d <= r + PICK_PX and (best_d is None or d < best_d):
                best, best_d = m.anchor, d
        return best

    def mvp(self):
        """The scene-to-clip matrix the view draws with."""
        vp = self.gl.getViewport()
        return self.gl.projectionMatrix(vp, vp) * self.gl.viewMatrix()

    def _right(self):
        """The camera's right-hand direction in the scene (for a lesion's projected radius)."""
        v = self.gl.viewMatrix()
        return QVector3D(v.row(0).x(), v.row(0).y(), v.row(0).z())

    def _pressed(self, ev) -> None:
        self._press = ev.position()
        type(self.gl).mousePressEvent(self.gl, ev)

    def _released(self, ev) -> None:
        p = ev.position()
        moved = self._press is None or (p - self._press).manhattanLength() > 4
        type(self.gl).mouseReleaseEvent(self.gl, ev)
        if not moved and ev.button() == Qt.MouseButton.LeftButton:
            anchor = self.pick(p.x(), p.y())
            if anchor is not None:
                self.lesionPicked.emit(*anchor)
