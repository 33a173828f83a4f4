"""Studies into the window: open a DICOM folder, a volume file, a dataset case or the demo (the
File menu, drag and drop, File > Recent), and bring back a segmentation onto the open study. The
open study becomes the window's :class:`app.controllers.services.OpenStudy` session."""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from core.datasets.dataset import list_cases
from core.io.dicom import select_series
from core.io.dicom.types import SeriesInfo
from core.io.volume_file import is_volume_file
from core.pacs import cache as pacs_cache
from core.study.session import Segmented, StudySession

from .. import background
from ..widgets.list_chooser import ListChooser
from ..workers import Job
from .services import WindowServices

MAX_RECENT = 8
VOLUME_FILTER = ("CT volumes (*.nii.gz *.nii *.nrrd *.nhdr *.mha *.mhd);;NIfTI (*.nii.gz *.nii);;"
                 "NRRD (*.nrrd *.nhdr);;MetaImage (*.mha *.mhd);;All files (*)")


class StudyFiles:
    """Opens studies and segmentation files, and keeps the recent list (in the settings).

    Receives the window's services, the viewer, the Results panel (cleared for a new study),
    ``measure(label)`` (a study with a reference and no label shows the reference's measurements)
    and ``show_segmentation(result, session)`` (a loaded working segmentation is shown as one).
    """

    def __init__(self, services: WindowServices, viewer, results, measure: Callable, show_segmentation: Callable):
        self.services, self.state = services, services.state
        self.viewer, self.results = viewer, results
        self.measure, self.show_segmentation = measure, show_segmentation
        self.recent_menu = None

    def build_menu(self, menu) -> None:
        """The File menu's ways to open a study or a segmentation, and *Recent*."""
        m = menu
        m.addAction("&Open DICOM folder...", self.open_dialog, "Ctrl+O")
        m.addAction("Open &file (NIfTI)...", self.open_file_dialog, "Ctrl+Shift+O")
        m.addAction("Open &segmentation (NIfTI, DICOM SEG)...", lambda: self.open_label_dialog("label"))
        m.addAction("Open segmentation as &reference...", lambda: self.open_label_dialog("reference"))
        m.addAction("Open dataset &case...", self.open_case_dialog)
        m.addAction("Open &demo study", self.open_demo)
        self.recent_menu = m.addMenu("&Recent")
        self._fill_recent()

    # -- opening --------------------------------------------------------------
    def open_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self.services.parent, "Open DICOM folder")
        if path:
            self.open_path(path)

    def open_path(self, path: str, choose=None, name: str = "") -> Job:
        """A volume file (NIfTI, NRRD, MetaImage) opens directly; a folder is scanned, and with several
        CT series the user picks one (``choose`` picks in tests); the stack a localizer shares a UID
        with is not offered separately (it loads the largest stack, with a warning)."""
        start_job = self.services.start_job
        if is_volume_file(path):
            self._add_recent(path)
            return start_job(Job("Open volume file", StudySession.open, path), self.show_study)

        def chosen(info) -> None:
            load = functools.partial(StudySession.open_series, name=name)  # Job's own first argument is "name"
            start_job(Job("Load series", load, info, path), self.show_study)
            self._add_recent(path)
        return scan_and_choose(self.services, path, chosen, choose)

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.services.parent, "Open CT volume", "", VOLUME_FILTER)
        if path:
            self.open_path(path)

    def open_label_dialog(self, role: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self.services.parent, "Open segmentation", "",
                                              "Segmentations (*.nii.gz *.nii *.nrrd *.nhdr *.mha *.mhd *.dcm);;"
                                              "All files (*)")
        if path:
            self.open_label(path, role)

    def open_label(self, path: str, role: str = "label") -> Job | None:
        """Load a label file onto the open study (checked against its grid) as the working
        segmentation (editable, measured, exportable) or as the reference to compare with."""
        session = self.state.session
        if session is None:
            self.services.show_error("Open a study first: a segmentation is loaded onto the open study.", "")
            return None

        def loaded(label) -> None:
            if session is not self.state.session:  # another study was opened meanwhile
                return
            if role == "reference":
                session.set_reference(label)
                current = session.label if session.label is not None else label
                self.viewer.set_labels(session.label, label)
                mode = "outlines" if session.label is not None else "reference"
                self.viewer.set_mode(mode)  # the display panel follows the viewer's state
                self.services.status(f"Reference loaded from {path}")
                self.measure(current)
            else:
                self.show_segmentation(
                    Segmented(label, {"engines": {}, "device": f"loaded from {os.path.basename(path)}"}), session)
                self.services.status(f"Segmentation loaded from {path}")
        return self.services.start_job(Job("Open segmentation", session.read_label, path), loaded)

    def open_demo(self) -> Job:
        return self.services.start_job(Job("Open demo study", StudySession.open_demo), self.show_study)

    def open_case_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.services.parent, "Dataset folder")
        if not folder:
            return
        try:
            cases = list_cases(folder)
        except Exception as exc:
            self.services.show_error(str(exc), "")
            return
        idx = ListChooser("Open case", list(cases), self.services.parent).choose()
        if idx is not None:
            self.open_case(folder, cases[idx])

    def open_case(self, folder: str, case_id: str) -> Job:
        return self.services.start_job(Job("Open case", StudySession.open_case, folder, case_id), self.show_study)

    def show_study(self, session: StudySession) -> None:
        self.state.session = session
        study = session.study
        self.viewer.set_study(study.hu, study.spacing, study.label, study.reference)
        mode = "prediction" if study.label is not None or study.reference is None else "reference"
        self.viewer.set_mode(mode)  # the display panel follows the viewer's state
        z, y, x = study.shape
        sz, sy, sx = study.spacing
        name = study.name if len(study.name) < 60 else "..." + study.name[-57:]
        self.services.set_title(f"LiverSeg Studio - {name}")
        msg = f"{name}: {x} x {y} x {z} voxels, {sx:.2f} x {sy:.2f} x {sz:.2f} mm"
        if study.warnings:
            msg += "   warning: " + "; ".join(study.warnings)
        self.services.status(msg)
        self.results.summary.setText("No segmentation yet." if study.reference is None else
                                     "Reference masks shown; segment to compare.")
        self.results.lesions.setRowCount(0)
        self.results.show_metrics(None)
        if study.reference is not None and study.label is None:
            self.measure(study.reference)
        self.services.studyLoaded.emit()

    # -- recent -----------------------------------------------------------------
    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.recent():
            self.recent_menu.addAction(p, lambda p=p: self.open_path(p))

    def recent(self) -> list[str]:
        v = self.services.settings.value("recent_folders", [])
        return [v] if isinstance(v, str) else list(v or [])

    def _add_recent(self, path: str) -> None:
        if Path(path).resolve().is_relative_to(pacs_cache.cache_root().resolve()):  # looked up now (tests move it)
            return  # a series retrieved from a PACS: the cache may evict it; Open from PACS finds it again
        items = [path] + [p for p in self.recent() if p != path]
        self.services.settings.setValue("recent_folders", items[:MAX_RECENT])
        if self.recent_menu is not None:
            self._fill_recent()


# -- the series chooser (also the earlier study's, File > Compare with earlier study) ----------------

def series_labels(series: Sequence[SeriesInfo]) -> list[str]:
    """One line per volume offered: size, spacing and description, and for a series that holds
    several acquisitions at the same table positions (two contrast phases under one series UID)
    which acquisition it is, so each can be told apart and opened."""
    acquisitions = Counter(s.series_uid for s in series if s.acquisition is not None)
    lines = []
    for s in series:
        text = s.summary()
        if s.acquisition is not None:
            text += (f"   acquisition {s.acquisition}, {s.n_slices} slices (one of {acquisitions[s.series_uid]} "
                     f"acquisitions at the same positions)")
        lines.append(f"{text}   [{s.series_uid[-20:]}]")
    return lines


def ask_series(parent, series: Sequence[SeriesInfo]) -> int | None:
    """The chooser dialog: the row picked, or None."""
    return ListChooser("Choose a series", series_labels(series), parent).choose()


def scan_and_choose(services: WindowServices, path: str, then: Callable[[SeriesInfo], object],
                    choose: Callable[[list[SeriesInfo]], int | None] | None = None) -> Job:
    """Scan the folder ``path`` in a worker, then ``then(info)`` with the CT volume to load: with
    several (series, or acquisitions of one series) the user picks one (``choose(volumes)`` picks
    in tests); the stack a localizer shares a UID with is not offered separately."""
    def scanned(result) -> None:
        cts = [s for s in result if s.is_ct and not (s.split and s.key != s.series_uid)] or list(result)
        if len(cts) > 1:
            idx = choose(cts) if choose else ask_series(services.parent, cts)
            if idx is None:
                return
            info = cts[idx]
        else:
            try:
                info = select_series(result, None, path)
            except Exception as exc:
                services.show_error(str(exc), "")
                return
        then(info)
    return services.start_job(Job("Open DICOM folder", background.scan_folder, path), scanned)
