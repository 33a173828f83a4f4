"""Editing the working label by hand: the Segment tab's tools (brushes in the axial view; the
click tools run through :class:`app.controllers.review.ReviewController`), undo and redo (the Edit
menu and the panel's buttons). Each finished change is measured again."""

from __future__ import annotations

from collections.abc import Callable

from ..widgets.segment_panel import BRUSHES
from .services import WindowServices


class EditingController:
    """The chosen tool, painting strokes, undo and redo.

    Receives the window's services, the viewer, the Segment panel (tool, radius, undo / redo
    buttons) and ``measure(label)``, which measures the label again after a change.
    """

    def __init__(self, services: WindowServices, viewer, segment_panel, measure: Callable):
        self.services, self.state = services, services.state
        self.viewer, self.segment_panel, self.measure = viewer, segment_panel, measure
        self.tool: str | None = None
        segment_panel.toolChanged.connect(self.set_tool)
        segment_panel.undoRequested.connect(self.undo)
        segment_panel.redoRequested.connect(self.redo)
        ax = viewer.axial
        ax.strokeStarted.connect(self._stroke_started)
        ax.painted.connect(self._paint)
        ax.strokeFinished.connect(self._stroke_done)

    def build_menu(self, menubar) -> None:
        """The Edit menu: *Undo*, *Redo*."""
        e = menubar.addMenu("&Edit")
        e.addAction("&Undo", self.undo, "Ctrl+Z")
        e.addAction("&Redo", self.redo, "Ctrl+Y")

    def set_tool(self, tool: str | None) -> None:
        self.tool = tool
        self.viewer.axial.brush_active = tool in BRUSHES  # the click tools act on a click in any view
        study = self.state.study
        if tool is not None and study is not None and study.label is None:
            self.state.session.draw_from_scratch()
            self.viewer.set_labels(study.label, study.reference)

    def _stroke_started(self) -> None:
        if self.state.editor is not None:
            self.state.editor.begin()

    def _paint(self, z: int, y: float, x: float) -> None:
        editor = self.state.editor
        if editor is None or self.tool not in BRUSHES:
            return
        if editor.paint(z, y, x, self.segment_panel.radius.value(), self.tool):
            self.viewer.redraw_overlays()

    def _stroke_done(self) -> None:
        if self.state.editor is not None and self.state.editor.end():
            self.measure(self.state.study.label)

    def undo(self) -> None:
        session = self.state.session
        if session is not None and session.undo():
            self.viewer.redraw_overlays()
            self.measure(self.state.study.label)

    def redo(self) -> None:
        session = self.state.session
        if session is not None and session.redo():
            self.viewer.redraw_overlays()
            self.measure(self.state.study.label)
