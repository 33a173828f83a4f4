"""*File > Add to training set...*: the dialog choosing the lab dataset and who corrected the labels,
and the job that stores the open study there (:func:`core.datasets.lab_cases.add_study`)."""

from __future__ import annotations

import getpass
from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.datasets.dataset import list_cases
from core.datasets.lab_cases import CaseExists, add_study, default_lab_dataset

DATASET_KEY, WHO_KEY = "training_set/dataset", "training_set/corrected_by"


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (getpass raises several types)
        return ""


def add_case(dataset: str, study, label, corrected_by: str, replace: bool, source_dirs=(),
             progress=None, cancel=None):
    """The worker's job: (case id, number of cases in the dataset), or the :class:`CaseExists`
    refusal itself (returned, not raised, so the window can ask and run it again with ``replace``)."""
    try:
        cid = add_study(dataset, study, label, corrected_by, replace, source_dirs=source_dirs,
                        progress=progress, cancel=cancel)
    except CaseExists as exc:
        return exc
    return cid, len(list_cases(dataset, "all"))


class AddCaseDialog(QDialog):
    """The dataset folder (default: the user's lab dataset; Browse... picks or creates another) and
    who corrected the labels, remembered in ``settings`` (a QSettings) on OK."""

    def __init__(self, settings=None, case_name: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Add to training set")
        self.settings = settings
        lay = QVBoxLayout(self)
        intro = QLabel(f"Store the CT and the corrected labels of {case_name or 'the open study'} as a training "
                       "case. Its source is only read.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.folder = QLineEdit()
        browse = QPushButton("Browse...")
        browse.clicked.connect(self.browse)
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.folder, 1)
        h.addWidget(browse)
        form.addRow("Dataset folder", row)
        self.info = QLabel()
        form.addRow("", self.info)
        self.who = QLineEdit()
        form.addRow("Corrected by", self.who)
        lay.addLayout(form)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.folder.textChanged.connect(self._changed)
        self.who.textChanged.connect(self._changed)
        value = (lambda k: settings.value(k, "") or "") if settings is not None else (lambda k: "")
        self.set_dataset(str(value(DATASET_KEY) or default_lab_dataset()))
        self.set_corrected_by(str(value(WHO_KEY) or os_user()))
        self.resize(max(self.sizeHint().width(), 560), self.sizeHint().height())

    # -- fields (tests set them directly) -------------------------------------
    def set_dataset(self, path: str) -> None:
        self.folder.setText(str(path))

    def set_corrected_by(self, name: str) -> None:
        self.who.setText(name)

    def dataset(self) -> str:
        return self.folder.text().strip()

    def corrected_by(self) -> str:
        return self.who.text().strip()

    def browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Training dataset folder (choose or create one)", self.dataset())
        if path:
            self.set_dataset(path)

    def _changed(self) -> None:
        folder = Path(self.dataset()).expanduser() if self.dataset() else None
        if folder is None:
            text = "Choose a folder."
        elif not (folder / "manifest.json").is_file():
            text = "A new dataset will be created there."
        else:
            try:
                text = f"A dataset of {len(list_cases(folder, 'all'))} case(s)."
            except Exception as exc:  # a broken manifest: add_study will refuse it with its reason
                text = str(exc)
        self.info.setText(text)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(self.dataset() and self.corrected_by()))

    def accept(self) -> None:
        if not (self.dataset() and self.corrected_by()):
            return
        if self.settings is not None:
            default = self.dataset() == str(default_lab_dataset())
            self.settings.setValue(DATASET_KEY, "" if default else self.dataset())  # the default follows the user
            self.settings.setValue(WHO_KEY, self.corrected_by())
        super().accept()
