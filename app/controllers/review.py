"""The lesion review, the one-click fixes and the 3D tab.

The review (accept, reject, next / previous, reject the small ones) acts on the lesion records of
the last summary through :meth:`core.study.session.StudySession.review_lesions`: quick, in the GUI
thread, one undo step each. A click tool (:data:`app.widgets.segment_panel.CLICK_TOOLS`) computes
its change in a worker (:meth:`StudySession.compute_fix`: median filter, labelling, up to a few
hundred ms on a whole CT) and applies it in the GUI thread, one undo step. A click on a lesion in
any view, with no tool chosen, selects its row. The 3D tab (:class:`app.widgets.view3d.View3D`)
shows the working label's surfaces, computed in a worker after each change; the selected lesion
is yellow there, and a click on a lesion there selects its row.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QVBoxLayout, QWidget

from core.runtime.choices import FIX_TOOLS, FixScope, FixTool
from core.study.review import lesion_at, next_lesion
from core.study.session import StudySession

from ..widgets.view3d import View3D
from ..workers import Job
from .services import WindowServices


class ReviewController:
    """Reviews lesions, runs the click tools and keeps the 3D tab up to date.

    Receives the window's services, the viewer, the Results panel (lesion table, review buttons),
    the Segment panel (the click tools' scope), the tabs (it adds the 3D tab), ``tool()`` (the
    chosen editing tool) and ``measure(label)``, which measures the label again after a change.
    """

    def __init__(self, services: WindowServices, viewer, results, segment_panel, tabs,
                 tool: Callable[[], str | None], measure: Callable):
        self.services, self.state = services, services.state
        self.viewer, self.results, self.segment_panel, self.tabs = viewer, results, segment_panel, tabs
        self.tool, self.measure = tool, measure
        results.reviewRequested.connect(self.review)
        for v in viewer.views:
            v.pointClicked.connect(self._view_clicked)
        # the 3D view: made when its tab is first shown (OpenGL is not touched at start-up)
        self.view3d = None
        self.tab3d = QWidget()
        QVBoxLayout(self.tab3d).setContentsMargins(0, 0, 0, 0)
        tabs.addTab(self.tab3d, "3D")
        tabs.currentChanged.connect(lambda _i: self._refresh_3d())
        services.summaryUpdated.connect(self._refresh_3d)
        results.lesions.itemSelectionChanged.connect(self._select_3d)

    # -- the 3D view ------------------------------------------------------------
    def _refresh_3d(self) -> None:
        """Surfaces of the working label, computed in a worker, when the 3D tab is shown."""
        from core.study.surfaces import label_meshes  # lite edition: no 3D view, not bundled
        if self.tabs.currentWidget() is not self.tab3d:
            return
        if self.view3d is None:
            self.view3d = View3D()
            self.view3d.lesionPicked.connect(self._picked_3d)
            self.view3d.ready.connect(self._refresh_3d)  # OpenGL is tried in a child process first
            self.tab3d.layout().addWidget(self.view3d)
        study = self.state.study
        label = study.label if study is not None else None
        if label is None or not self.view3d.available:
            self.view3d.set_meshes([])
            return
        session = self.state.session
        job = Job("Surfaces", label_meshes, label.copy(), study.spacing)
        self.services.start_job(job, lambda meshes: self._show_3d(meshes, session), quiet=True)

    def _show_3d(self, meshes, session: StudySession) -> None:
        if session is self.state.session and self.view3d is not None:
            self.view3d.set_meshes(meshes, self._selected_anchor())

    def _selected_anchor(self):
        row = self.results.current_row()
        return tuple(self.results.records[row].anchor) if row is not None and row < len(self.results.records) else None

    def _select_3d(self) -> None:
        if self.view3d is not None:
            self.view3d.select(self._selected_anchor())

    def _picked_3d(self, z: int, y: int, x: int) -> None:
        for i, r in enumerate(self.results.records):
            if tuple(r.anchor) == (z, y, x):
                self.results.select(i)
                return

    # -- the review -------------------------------------------------------------
    def review(self, action: str) -> None:
        """"next" / "previous" lesion, "accept" / "reject" the selected one, or "reject_smaller"."""
        res, session = self.results, self.state.session
        if session is None or not res.records:
            return
        row = res.current_row()
        if action in ("next", "previous"):
            i = next_lesion(res.records, row, 1 if action == "next" else -1)
            if i is not None:
                res.select(i)
            return
        if action == "reject_smaller":
            n = session.review_lesions(action, res.records, res.min_ml.value())
            self._reviewed(f"{n} lesion(s) under {res.min_ml.value():.2f} mL rejected", n)
            return
        if row is None:
            self.services.status("Select a lesion first (click its row, or N for the next one)")
            return
        les = res.records[row]
        try:
            n = session.review_lesions(action, [les])
        except Exception as exc:  # a lesion edited away since the table was drawn
            self.services.show_error(str(exc), "")
            return
        self._reviewed(f"lesion {les.id} {action}ed", n)
        if n and action == "accept":
            following = next_lesion(res.records, row, 1, unseen_first=True)
            if following is not None and following != row:
                res.select(following)

    def _reviewed(self, message: str, changed: int) -> None:
        self.services.status(message)
        if changed:
            self.viewer.redraw_overlays()
            self.measure(self.state.study.label)

    # -- the click tools ----------------------------------------------------------
    def _view_clicked(self, z: int, y: int, x: int) -> None:
        """A click in a view: run the click tool there, or select the lesion under it."""
        study = self.state.study
        if self.state.session is None or study is None:
            return
        tool = self.tool()
        if tool in FIX_TOOLS:
            self.run_fix(tool, (z, y, x))
            return
        if study.label is not None and self.results.records:
            les = lesion_at(self.results.records, study.label, (z, y, x))
            if les is not None:
                self.results.select(self.results.records.index(les), jump=False)

    def run_fix(self, tool: FixTool, voxel, scope: FixScope | None = None) -> Job:
        """Compute ``tool`` at ``voxel`` in a worker, then apply it as one undo step."""
        session = self.state.session
        scope = scope or self.segment_panel.scope.currentData()
        job = Job("Fix", session.compute_fix, tool, voxel, scope)
        job.finished.connect(lambda fix: self._apply_fix(fix, session))
        job.failed.connect(self._fix_refused)  # a click where the tool cannot act: said, not a dialog
        return self.services.jobs.start(job)

    def _fix_refused(self, message: str, details: str) -> None:
        self.services.status(message)
        self.services.jobFailed.emit(message)

    def _apply_fix(self, fix, session: StudySession) -> None:
        if session is not self.state.session:
            return
        n = session.apply_fix(fix)
        self._reviewed(fix.message if n else "nothing changed", n)
