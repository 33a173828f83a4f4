"""The main window's lesion review and one-click fixes (a mixin of :class:`app.main_window.MainWindow`).

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

from PySide6.QtWidgets import QVBoxLayout, QWidget

from core.study.review import lesion_at, next_lesion
from core.study.session import StudySession

from .workers import Job


class ReviewActions:
    """Expects ``session``, ``viewer``, ``results``, ``segment_panel``, ``tool``, ``jobs``,
    ``show_error``, ``jobFailed``, ``_update_summary`` and ``statusBar`` from the window."""

    def _connect_review(self) -> None:
        self.results.reviewRequested.connect(self.review)
        self.addActions(self.results.lesions.actions())  # the keys work whichever tab is shown
        for v in self.viewer.views:
            v.pointClicked.connect(self._view_clicked)
        # the 3D view: made when its tab is first shown (OpenGL is not touched at start-up)
        self.view3d = None
        self.tab3d = QWidget()
        QVBoxLayout(self.tab3d).setContentsMargins(0, 0, 0, 0)
        self.tabs.addTab(self.tab3d, "3D")
        self.tabs.currentChanged.connect(lambda _i: self._refresh_3d())
        self.summaryUpdated.connect(self._refresh_3d)
        self.results.lesions.itemSelectionChanged.connect(self._select_3d)

    # -- the 3D view ------------------------------------------------------------
    def _refresh_3d(self) -> None:
        """Surfaces of the working label, computed in a worker, when the 3D tab is shown."""
        if self.tabs.currentWidget() is not self.tab3d:
            return
        if self.view3d is None:
            from .widgets.view3d import View3D
            self.view3d = View3D()
            self.view3d.lesionPicked.connect(self._picked_3d)
            self.tab3d.layout().addWidget(self.view3d)
        label = self.study.label if self.study is not None else None
        if label is None or not self.view3d.available:
            self.view3d.set_meshes([])
            return
        from core.study.surfaces import label_meshes
        session = self.session
        job = Job("Surfaces", label_meshes, label.copy(), self.study.spacing)
        self.start_job(job, lambda meshes: self._show_3d(meshes, session), quiet=True)

    def _show_3d(self, meshes, session: StudySession) -> None:
        if session is self.session and self.view3d is not None:
            self.view3d.set_meshes(meshes, self._selected_anchor())

    def _selected_anchor(self):
        row = self.results.current_row()
        if row is None or row >= len(self.results.records):
            return None
        return tuple(self.results.records[row]["anchor"])

    def _select_3d(self) -> None:
        if self.view3d is not None:
            self.view3d.select(self._selected_anchor())

    def _picked_3d(self, z: int, y: int, x: int) -> None:
        for i, r in enumerate(self.results.records):
            if tuple(r["anchor"]) == (z, y, x):
                self.results.select(i)
                return

    def review(self, action: str) -> None:
        """"next" / "previous" lesion, "accept" / "reject" the selected one, or "reject_smaller"."""
        res, session = self.results, self.session
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
            self.statusBar().showMessage("Select a lesion first (click its row, or N for the next one)")
            return
        les = res.records[row]
        try:
            n = session.review_lesions(action, [les])
        except Exception as exc:  # a lesion edited away since the table was drawn
            self.show_error(str(exc), "")
            return
        self._reviewed(f"lesion {les['id']} {action}ed", n)
        if n and action == "accept":
            following = next_lesion(res.records, row, 1, unseen_first=True)
            if following is not None and following != row:
                res.select(following)

    def _reviewed(self, message: str, changed: int) -> None:
        self.statusBar().showMessage(message)
        if changed:
            self.viewer.redraw_overlays()
            self._update_summary(self.study.label)

    def _view_clicked(self, z: int, y: int, x: int) -> None:
        """A click in a view: run the click tool there, or select the lesion under it."""
        if self.session is None or self.study is None:
            return
        if self.tool in ("add_lesion", "grow", "shrink", "remove"):
            self.run_fix(self.tool, (z, y, x))
            return
        if self.study.label is not None and self.results.records:
            les = lesion_at(self.results.records, self.study.label, (z, y, x))
            if les is not None:
                self.results.select(self.results.records.index(les), jump=False)

    def run_fix(self, tool: str, voxel, scope: str | None = None) -> Job:
        """Compute ``tool`` at ``voxel`` in a worker, then apply it as one undo step."""
        session = self.session
        scope = scope or self.segment_panel.scope.currentData()
        job = Job("Fix", session.compute_fix, tool, voxel, scope)
        job.finished.connect(lambda fix: self._apply_fix(fix, session))
        job.failed.connect(self._fix_refused)  # a click where the tool cannot act: said, not a dialog
        return self.jobs.start(job)

    def _fix_refused(self, message: str, details: str) -> None:
        self.statusBar().showMessage(message)
        self.jobFailed.emit(message)

    def _apply_fix(self, fix, session: StudySession) -> None:
        if session is not self.session:
            return
        n = session.apply_fix(fix)
        self._reviewed(fix.message if n else "nothing changed", n)
