"""A small dialog to pick one item of a list (a series found in a folder, a case of a dataset)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QListWidget, QVBoxLayout


class ListChooser(QDialog):
    """Pick one item of a list (a series found in a folder, a case of a dataset)."""

    def __init__(self, title: str, items: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        lay = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.addItems(items)
        self.list.setCurrentRow(0)
        lay.addWidget(self.list)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)

    def choose(self) -> int | None:
        """Show the dialog; the row picked, or None (cancelled)."""
        ok = self.exec() == QDialog.DialogCode.Accepted and self.list.currentItem() is not None
        return self.list.currentRow() if ok else None
