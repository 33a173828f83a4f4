"""One open study and what was done to it: open -> segment -> measure -> edit -> export (no Qt).

``liverseg predict`` (:mod:`core.cli.commands`), the batch run (:mod:`core.study.batch`) and the GUI
(``app.controllers``, ``app.main_window``) all work through a :class:`StudySession`: the study
(CT, geometry, working label, reference), its edit history, the summary, the models and engines
of the last segmentation, and the exports with their source-folder guard.

Threads: the GUI runs long steps in worker threads while the user may paint. So the steps that
compute (:meth:`StudySession.run_segmentation`, :meth:`StudySession.measurements`,
:meth:`StudySession.read_label`, :meth:`StudySession.export`) change nothing in the session, and
the steps that store (:meth:`StudySession.adopt`, :meth:`StudySession.set_measurements`,
:meth:`StudySession.set_reference`) are quick and run in the GUI thread. :meth:`StudySession.segment`
and :meth:`StudySession.measure` do both, for the CLI and scripts. Keras is imported only when a
model is loaded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets.dataset import load_case
from ..evaluation.evaluate import case_report, study_summary
from ..inference.cascade import segment
from ..inference.runner_cache import RunnerCache
from ..io import export as ex
from ..io.dicom import load_info
from ..io.export import check_target
from ..io.label_file import read_label
from ..io.report_pdf import write_pdf_report
from ..io.volume_file import open_volume
from ..runtime.choices import EXPORT_KINDS, FIX_TOOLS, Engine, ExportKind, FixScope, FixTool, ReviewAction, Stage
from ..runtime.errors import LiverSegError
from ..runtime.jobs import CancelToken, ProgressFn
from ..runtime.summary import LesionSummary, StudySummary
from ..synthetic.demo import demo_case
from . import fixes, review
from .editing import LabelEditor
from .phase import PhaseEstimate, detect_phase
from .review import apply_fix
from .study import Study

RUNNER_CACHE = RunnerCache()  # the process's models and runners: the GUI segments many studies with the same models


def load_model(model, stage: Stage):
    """A :class:`core.model.io.SegModel`: ``model`` itself when already loaded, else loaded from its
    path once per (path, stage) in this process (:meth:`core.inference.runner_cache.RunnerCache.model`)."""
    return RUNNER_CACHE.model(model, stage)


def cascade_runners(liver, tumour=None, engine: Engine = "auto", device: str | None = None,
                    batch_size: int | None = None):
    """The :class:`core.inference.runners.CascadeRunners` of these models (paths or loaded models),
    engine and device: prepared once and kept for the process (:data:`RUNNER_CACHE`), so every study
    the GUI, ``predict`` or a batch run segments with them reuses their ONNX Runtime sessions or
    compiled forwards. A model whose files changed since (a re-export, a new threshold) gets new
    runners."""
    return RUNNER_CACHE.get(liver, tumour, engine, device, batch_size)


@dataclass
class Segmented:
    """What one segmentation gave: the label and how it was made.

    Attributes:
        label: uint8 [Z, Y, X] (0 background, 1 liver, 2 tumour).
        info: engines, device, engine reasons, batch size, ... (:class:`core.inference.cascade.Segmentation`).
        warnings: e.g. "no liver found".
        timings: seconds per step.
        seconds: wall time of the whole step (model loading included).
        models: the model cards used ({"liver": card, "tumor": card or None}).
        snapshot: a copy of ``label`` taken in the worker for measuring (nobody edits it), or None.
        review: lesion review states that come with ``label`` (a recovered session's), else empty.
    """

    label: np.ndarray
    info: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    seconds: float = 0.0
    models: dict = field(default_factory=dict)
    snapshot: np.ndarray | None = None
    review: dict = field(default_factory=dict)


@dataclass
class StudySession:
    """The open study and its results.

    Attributes:
        study: the :class:`core.study.study.Study` (its ``label`` is the working segmentation).
        source: the path it was opened from (DICOM folder or volume file); "" for a dataset case or
            the demo. Exports never go inside it (nor inside ``study.source_dir``).
        editor: the brush / eraser with undo and redo over ``study.label`` (None without a label).
        summary, case_report: the last measurements (the report only with a reference).
        segmentation: the last :class:`Segmented` adopted (None before any).
        phase: the contrast phase read from the images (:meth:`contrast_phase`), None until known;
            a new segmentation clears it (read again with the liver it finds).
    """

    study: Study
    source: str = ""
    editor: LabelEditor | None = None
    summary: StudySummary | None = None
    case_report: dict | None = None
    segmentation: Segmented | None = None
    phase: PhaseEstimate | None = None

    def __post_init__(self) -> None:
        if self.editor is None and self.study.label is not None:
            self.editor = LabelEditor(self.study.label)

    # -- opening --------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, progress: ProgressFn | None = None,
             cancel: CancelToken | None = None, acquisition: int | None = None) -> StudySession:
        """A volume file (NIfTI, NRRD, MetaImage) or a DICOM folder (its largest CT series; of a series
        holding several acquisitions, ``acquisition``)."""
        volume = open_volume(path, progress=progress, cancel=cancel, acquisition=acquisition)
        return cls(Study.from_volume(volume, str(path)), str(path))

    @classmethod
    def open_series(cls, info, where: str, progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None, name: str = "") -> StudySession:
        """One series found by :func:`core.io.dicom.scan` in the folder ``where``, named ``name``
        (default: the folder)."""
        volume = load_info(info, progress=progress, cancel=cancel, where=where)
        return cls(Study.from_volume(volume, name or where), where)

    @classmethod
    def open_case(cls, folder: str, case_id: str, progress: ProgressFn | None = None,
                  cancel: CancelToken | None = None) -> StudySession:
        """A dataset case, with its labels as the reference."""
        return cls(Study.from_case(load_case(folder, case_id), f"{case_id} ({folder})"))

    @classmethod
    def open_demo(cls, progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> StudySession:
        """The demo phantom, with its reference masks."""
        c = demo_case(progress=progress, cancel=cancel)
        return cls(Study.from_case(c, "Demo study (synthetic phantom; reference masks shown)"))

    # -- state ----------------------------------------------------------------
    @property
    def label(self) -> np.ndarray | None:
        return self.study.label

    @property
    def source_dirs(self) -> list[str]:
        """Where exports must never go: the path opened and the series' own folder."""
        return list(dict.fromkeys(p for p in (self.source, self.study.source_dir) if p)) or [""]

    @property
    def warnings(self) -> list[str]:
        """The loader's warnings, then the last segmentation's."""
        return list(self.study.warnings) + (list(self.segmentation.warnings) if self.segmentation else [])

    @property
    def engines(self) -> dict:
        """Which engine ran each model in the last segmentation ({} before any)."""
        return dict(self.segmentation.info.get("engines") or {}) if self.segmentation else {}

    # -- segmenting -----------------------------------------------------------
    def run_segmentation(self, liver, tumour=None, engine: Engine = "auto", device: str | None = None,
                         batch_size: int | None = None, snapshot: bool = False,
                         progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> Segmented:
        """Run the cascade (``liver``, ``tumour``: model paths or loaded models; tumour optional) and
        return the result without storing it. ``snapshot``: also a copy of the label, made here
        (a 500-slice copy must not run in the GUI thread)."""
        t = time.perf_counter()
        runners = cascade_runners(liver, tumour, engine, device, batch_size)
        liver_m, tumour_m = runners.liver_model, runners.tumour_model
        seg = segment(self.study, liver_m, tumour_m, progress=progress, cancel=cancel, runners=runners)
        return Segmented(seg.label, seg.info, list(seg.warnings), seg.timings, time.perf_counter() - t,
                         {"liver": liver_m.meta, "tumor": tumour_m.meta if tumour_m else None},
                         seg.label.copy() if snapshot else None)

    def adopt(self, result: Segmented) -> None:
        """Make ``result``'s label the working segmentation (a fresh edit history; measure it again)."""
        self.segmentation = result
        self.study.label = result.label
        self.editor = LabelEditor(result.label, review=dict(result.review))
        self.summary = self.case_report = None
        self.phase = None  # read again with this label's liver

    @staticmethod
    def prepare_models(liver, tumour=None, engine: Engine = "auto", device: str | None = None,
                       batch_size: int | None = None, progress=None, cancel=None):
        """Load the models and prepare their runners (:func:`cascade_runners`: ONNX Runtime sessions
        opened, or Keras models loaded), which :meth:`segment` with the same arguments then uses:
        what ``predict`` overlaps with loading the study. Returns the runners."""
        runners = cascade_runners(liver, tumour, engine, device, batch_size)
        for r, m in ((runners.liver, runners.liver_model), (runners.tumour, runners.tumour_model)):
            if r is not None and r.choice.engine == "keras":
                m.model  # noqa: B018 (loads it)
        return runners

    def segment(self, liver, tumour=None, engine: Engine = "auto", device: str | None = None,
                batch_size: int | None = None, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None) -> Segmented:
        """:meth:`run_segmentation`, then :meth:`adopt` its result; returns it."""
        result = self.run_segmentation(liver, tumour, engine, device, batch_size, progress=progress, cancel=cancel)
        self.adopt(result)
        return result

    def read_label(self, path: str | os.PathLike, progress: ProgressFn | None = None,
                   cancel: CancelToken | None = None) -> np.ndarray:
        """A label file (NIfTI, NRRD, MetaImage, DICOM SEG) on this study's grid (not stored)."""
        return read_label(path, self.study)

    def set_reference(self, label: np.ndarray) -> None:
        self.study.reference = label

    # -- measuring ------------------------------------------------------------
    def measurements(self, label: np.ndarray | None = None, compare: bool = True,
                     progress: ProgressFn | None = None, cancel: CancelToken | None = None):
        """(summary, case report against the reference or None) of ``label`` (default: the working
        label, else the reference); nothing stored. ``compare=False``: no case report."""
        label = self._label(label)
        s = self.study
        # the editor's review states name lesions of the working label (of which the GUI measures a copy)
        review = self.editor.review if self.editor is not None and label is not s.reference else None
        summary = study_summary(label, s.spacing, s.hu, review)
        ref = s.reference if compare and label is not s.reference else None
        return summary, (case_report(label, ref, s.spacing) if ref is not None else None)

    def set_measurements(self, summary: StudySummary | None, case_report: dict | None = None) -> None:
        self.summary, self.case_report = summary, case_report

    def measure(self, progress: ProgressFn | None = None, cancel: CancelToken | None = None):
        """Measure the working label (or the reference) and store the result; returns (summary, report)."""
        result = self.measurements(progress=progress, cancel=cancel)
        self.set_measurements(*result)
        return result

    def contrast_phase(self, label: np.ndarray | None = None, progress: ProgressFn | None = None,
                       cancel: CancelToken | None = None) -> PhaseEstimate:
        """The contrast phase read from the images (:func:`core.study.phase.detect_phase`), with the
        liver of ``label`` (default: the working label, else the reference; the image alone without
        either); not stored (the GUI runs it in a worker and keeps it as ``phase``)."""
        s = self.study
        if label is None:
            label = s.label if s.label is not None else s.reference
        return detect_phase(s.hu, s.spacing, label, s.direction)

    # -- editing --------------------------------------------------------------
    def draw_from_scratch(self) -> np.ndarray:
        """An empty working label to paint on, when there is none yet; returns the working label."""
        if self.study.label is None:
            self.study.label = np.zeros(self.study.shape, np.uint8)
            self.editor = LabelEditor(self.study.label)
        return self.study.label

    def compute_fix(self, tool: FixTool, seed, scope: FixScope = "3d", progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None):
        """What a click-to-fix ``tool`` at voxel ``seed`` (z, y, x) would change
        (:class:`core.study.fixes.Fix`; nothing is stored: :meth:`apply_fix` does). Tools:
        "add_lesion", "grow", "shrink", "remove" (``scope`` "slice" or "3d")."""
        s, label = self.study, self.study.label
        if label is None:
            raise fixes.FixError("segment the study first (or paint with the brushes)")
        if tool == "add_lesion":
            return fixes.add_lesion(s.hu, label, seed, s.spacing)
        if tool == "grow":
            return fixes.grow_lesion(s.hu, label, seed, s.spacing)
        if tool == "shrink":
            return fixes.shrink_lesion(label, seed, s.spacing)
        if tool == "remove":
            return fixes.remove_region(label, seed, s.spacing, scope)
        raise ValueError(f"unknown tool {tool!r}: expected one of {', '.join(FIX_TOOLS)}")

    def apply_fix(self, fix) -> int:
        """Apply a :meth:`compute_fix` result as one undo step; returns the voxels changed."""
        if self.editor is None:  # no label to fix
            return 0
        return apply_fix(self.editor, fix)

    def review_lesions(self, action: ReviewAction, lesions: list[LesionSummary], min_ml: float = 0.0) -> int:
        """"accept" or "reject" ``lesions`` (records of the last summary), or "reject_smaller" than
        ``min_ml`` mL among them; one undo step. Returns the lesions acted on."""
        if self.editor is None:
            return 0
        if action == "accept":
            return sum(review.accept(self.editor, les) for les in lesions[:1])
        if action == "reject":
            return len(lesions) if review.reject(self.editor, lesions) else 0
        if action == "reject_smaller":
            return len(review.reject_smaller(self.editor, lesions, min_ml))
        raise ValueError(f"unknown review action {action!r}")

    def undo(self) -> bool:
        return self.editor is not None and self.editor.undo()

    def redo(self) -> bool:
        return self.editor is not None and self.editor.redo()

    # -- exporting ------------------------------------------------------------
    def report(self, summary: StudySummary | None = None) -> dict:
        """The JSON report of ``liverseg predict``: study, geometry, results, contrast phase (the
        ``phase`` key: :meth:`PhaseEstimate.to_json`; read now when not known), warnings, engines, models."""
        s, seg = self.study, self.segmentation or Segmented(np.zeros((0, 0, 0), np.uint8))
        summary = summary if summary is not None else self.summary or self.measurements(compare=False)[0]
        info = seg.info
        phase = self.phase if self.phase is not None else self.contrast_phase()
        return {"study": self.source or s.name, "series_uid": s.volume.meta.series_uid if s.volume else None,
                "shape": list(s.shape), "spacing_mm": list(s.spacing), **summary.to_json(),
                "phase": phase.to_json(), "warnings": self.warnings,
                "timings_s": seg.timings, "engine": {"device": info.get("device"), "engines": info.get("engines"),
                                                    "reasons": info.get("engine_reasons"),
                                                    "batch_size": info.get("batch_size")},
                "models": {"liver": seg.models.get("liver"), "tumor": seg.models.get("tumor")}}

    def study_info(self) -> dict:
        """Patient id, study date and series description (DICOM studies; empty otherwise)."""
        m = self.study.volume.meta if self.study.volume is not None else None
        if m is None or not hasattr(m, "patient_id"):
            return {}
        return {"patient_id": m.patient_id, "study_date": m.study_date, "series": m.description}

    def guard(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Refuse ``path`` before long work: it exists (unless ``force``) or lies in the source."""
        return check_target(path, force, self.source_dirs)

    def export(self, kind: ExportKind, path: str | os.PathLike, force: bool = False, *,
               label: np.ndarray | None = None, summary: StudySummary | None = None, progress: ProgressFn | None = None,
               cancel: CancelToken | None = None) -> Path:
        """Write ``label`` (default: the working label, else the reference) as ``kind``: "nifti" (on
        the study's own grid), "seg" (DICOM SEG; DICOM studies only), "csv" (the lesion table) or
        "report" (JSON) or "pdf" (the report with key images, :mod:`core.io.report_pdf`).
        ``summary``: the measurements of ``label`` when already known."""
        if kind not in EXPORT_KINDS:
            raise ValueError(f"export kind {kind!r}: expected one of {', '.join(EXPORT_KINDS)}")
        s = self.study
        if kind == "seg" and s.volume is None:
            raise ex.ExportError(f"{path}: DICOM SEG needs a study opened from a DICOM folder")
        if summary is None and label is None:
            summary = self.summary
        label = self._label(label)
        self.guard(path, force)
        if kind == "nifti":
            return ex.write_nifti(path, label, s, force=force)
        if kind == "seg":
            return ex.write_dicom_seg(path, label, s.volume, force=force)
        if summary is None:
            summary = self.measurements(label, compare=False)[0]
        if kind == "csv":
            return ex.write_lesions_csv(path, summary.table(), force=force, source_dirs=self.source_dirs)
        if kind == "pdf":
            return write_pdf_report(path, self.report(summary), s.hu, label, s.spacing, self.study_info(),
                                    force=force, source_dirs=self.source_dirs, summary=summary)
        return ex.write_json_report(path, self.report(summary), force=force, source_dirs=self.source_dirs)

    def _label(self, label: np.ndarray | None) -> np.ndarray:
        if label is None:
            label = self.study.label if self.study.label is not None else self.study.reference
        if label is None:
            raise LiverSegError("nothing to measure or export yet: segment the study first")
        return label


def lesion_table(summary: StudySummary) -> list[LesionSummary]:
    """The lesions of ``summary`` with their review state, then the rejected ones (numbered after)."""
    return summary.table()
