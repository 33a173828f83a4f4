"""The closed sets of names the code compares as strings, each defined once as a ``Literal`` type.

Reports, settings files, model cards and the command line carry these names as plain strings, so
they stay strings (a ``Literal`` is a ``str`` at run time, and JSON and argparse see no change): the
types let a checker catch a misspelt name, and each tuple beside its type is the one list that
validation, menus and argument parsers use.
"""

from __future__ import annotations

from typing import Literal, get_args

Stage = Literal["liver", "tumor"]
"""A stage of the cascade (and of training): the liver model, then the tumour model inside it."""
STAGES: tuple[Stage, ...] = get_args(Stage)

Engine = Literal["auto", "keras", "onnx", "onnx-int8"]
"""The inference engine asked for (:func:`core.inference.engines.choose_engine`); "auto" picks one."""
ENGINES: tuple[Engine, ...] = get_args(Engine)

RunEngine = Literal["keras", "onnx", "onnx-int8"]
"""The engine that runs a model once chosen (:class:`core.inference.engines.EngineChoice`)."""

ExportKind = Literal["nifti", "seg", "csv", "report", "pdf"]
"""What :meth:`core.study.session.StudySession.export` writes: label volume, DICOM SEG, lesion CSV,
JSON report, PDF report."""
EXPORT_KINDS: tuple[ExportKind, ...] = get_args(ExportKind)

FixTool = Literal["add_lesion", "grow", "shrink", "remove"]
"""A click-to-fix tool (:mod:`core.study.fixes`)."""
FIX_TOOLS: tuple[FixTool, ...] = get_args(FixTool)

FixScope = Literal["slice", "3d"]
"""Where "remove" acts: the clicked slice's component or the 3D one."""
SCOPES: tuple[FixScope, ...] = get_args(FixScope)

PaintTool = Literal["liver", "tumor", "erase"]
"""A brush of the label editor (:meth:`core.study.editing.LabelEditor.paint`)."""
PAINT_TOOLS: tuple[PaintTool, ...] = get_args(PaintTool)

ReviewState = Literal["unseen", "accepted", "rejected"]
"""A lesion's review state (:mod:`core.study.review`)."""
REVIEW_STATES: tuple[ReviewState, ...] = get_args(ReviewState)

ReviewAction = Literal["accept", "reject", "reject_smaller"]
"""What :meth:`core.study.session.StudySession.review_lesions` does to the lesions given."""
REVIEW_ACTIONS: tuple[ReviewAction, ...] = get_args(ReviewAction)
