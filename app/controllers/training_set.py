"""File > Add to training set...: store the open study with its corrected label as a case of a
lab dataset (:func:`app.widgets.add_case_dialog.add_case`, in a worker), asking before replacing
the case this study already has; the Train tab's fine-tune then starts from that dataset. The case
added keeps the corrected labels, so their crash recovery is cleared (:mod:`app.autosave`)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox

from core.datasets.lab_cases import CaseExists

from ..widgets.add_case_dialog import AddCaseDialog, add_case
from ..workers import Job
from .services import WindowServices


class TrainingSetController:
    """Owns *Add to training set...* (enabled while the open study has a working label).

    Receives the window's services, the Train panel (its fine-tune dataset follows the case
    added) and ``saved()``, called when the case was written (the autosaver's ``clear``).
    """

    def __init__(self, services: WindowServices, train_panel, saved: Callable[[], None]):
        self.services, self.state, self.train_panel, self.saved = services, services.state, train_panel, saved
        self.add_case_action = None
        self.add_case_dialog = None

    def build_menu(self, menu):
        """*Add to training set...* in ``menu``, enabled while the open study has a working label."""
        action = menu.addAction("Add to &training set...", self.add_to_training_set)
        action.setObjectName("addToTrainingSet")
        action.setStatusTip("Store the open study with its corrected labels as a case of a lab dataset")
        self.add_case_action = action
        for sig in (self.services.studyLoaded, self.services.segmented, menu.aboutToShow):
            sig.connect(self._update_training_action)
        self._update_training_action()
        return action

    def _update_training_action(self) -> None:
        session = self.state.session
        self.add_case_action.setEnabled(session is not None and session.label is not None)

    def add_to_training_set(self):
        """Open the dialog (non-modal: ``self.add_case_dialog``); on OK the case is written in a worker."""
        session = self.state.session
        if session is None or session.label is None:
            self.services.show_error("Nothing to add yet: open a study, segment it and correct the labels.", "")
            return None
        dialog = AddCaseDialog(self.services.settings, session.study.name, self.services.parent)
        dialog.accepted.connect(lambda: self.add_case(dialog.dataset(), dialog.corrected_by()))
        if self.add_case_dialog is not None:
            self.add_case_dialog.deleteLater()  # the last one, closed
        self.add_case_dialog = dialog
        dialog.open()
        return dialog

    def add_case(self, dataset: str, corrected_by: str, replace: bool = False) -> Job | None:
        """Store the open study and its label as it is now in ``dataset``; asks before replacing."""
        session = self.state.session
        if session is None or session.label is None:
            return None

        def done(result) -> None:
            if isinstance(result, CaseExists):
                if self.ask_replace(result.case_id, dataset):
                    self.add_case(dataset, corrected_by, replace=True)
                else:
                    self.services.status(f"Not added: {dataset} keeps its case {result.case_id}")
                return
            cid, n = result
            self.services.status(f"Added case {cid} to {dataset} ({n} case(s))")
            self.saved()  # the corrected labels are kept: no recovery needed
            tp = self.train_panel
            if tp is not None and not tp.lite:  # the Train tab's fine-tune starts from this dataset
                tp.dataset.setText(dataset)
        job = Job("Add to training set", add_case, dataset, session.study, session.label.copy(), corrected_by,
                  replace, session.source_dirs)
        return self.services.start_job(job, done)

    def ask_replace(self, case_id: str, dataset: str) -> bool:
        """Yes / No: replace the case this study already has (tests replace this method)."""
        answer = QMessageBox.question(self.services.parent, "Add to training set",
                                      f"Replace the case of this study?\n\n{case_id} in {dataset}")
        return answer == QMessageBox.StandardButton.Yes
