"""The functions the GUI runs in worker threads (plain functions over ``core``; no widgets here).

Each takes ``progress`` and ``cancel`` keyword arguments, like every long ``core`` job.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from core.study import Study


def scan_folder(path: str, progress=None, cancel=None):
    from core.dicom import scan
    return scan(path, progress=progress, cancel=cancel)


def load_series_info(info, where: str, progress=None, cancel=None) -> Study:
    from core.dicom import load_info
    return Study.from_volume(load_info(info, progress=progress, cancel=cancel, where=where), where)


def load_volume_file(path: str, progress=None, cancel=None) -> Study:
    from core.volume_file import read_volume_file
    return Study.from_volume(read_volume_file(path, progress=progress, cancel=cancel), path)


def read_label(path: str, study: Study, progress=None, cancel=None):
    from core.label_file import read_label as read
    return read(path, study)


def load_demo(progress=None, cancel=None) -> Study:
    from core.demo import demo_case
    c = demo_case(progress=progress, cancel=cancel)
    return Study.from_case(c, "Demo study (synthetic phantom; reference masks shown)")


def load_case_study(folder: str, case_id: str, progress=None, cancel=None) -> Study:
    from core.dataset import load_case
    return Study.from_case(load_case(folder, case_id), f"{case_id} ({folder})")


_MODEL_CACHE: dict = {}


def _model(path: str, stage: str):
    from core.model.io import load_seg_model
    key = (path, stage)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = load_seg_model(path, stage)
    return _MODEL_CACHE[key]


def segment_study(study: Study, liver_path: str, tumor_path: Optional[str], engine: str = "auto",
                  progress=None, cancel=None):
    """Run the cascade with the chosen engine (see core.engines); returns (label, info, snapshot).

    ``snapshot`` is a copy of the label for the measuring job, taken here: nobody can edit the
    label before the GUI receives it, and a 500-slice copy (~35 ms) must not run in the GUI thread.
    """
    from core.inference import segment
    t = time.perf_counter()
    liver = _model(liver_path, "liver")
    tumor = _model(tumor_path, "tumor") if tumor_path else None
    seg = segment(study, liver, tumor, progress=progress, cancel=cancel, engine=engine)
    info = dict(seg.info, warnings=seg.warnings, seconds=time.perf_counter() - t)
    return seg.label, info, seg.label.copy()


def measure(label: np.ndarray, spacing, hu, reference=None, progress=None, cancel=None):
    """(study summary, case report against the reference or None)."""
    from core.evaluate import case_report, study_summary
    summary = study_summary(label, spacing, hu)
    report = case_report(label, reference, spacing) if reference is not None else None
    return summary, report


def import_dataset(src: str, out: str, progress=None, cancel=None):
    from core.nifti_import import import_dataset
    return import_dataset(src, out, progress=progress, cancel=cancel)


def train_model(cfg, resume: bool, progress=None, cancel=None):
    from core.training import train
    return train(cfg, progress=progress, cancel=cancel, resume=resume)


def export_study(kind: str, path: str, study: Study, label: np.ndarray, summary, force: bool,
                 progress=None, cancel=None) -> str:
    from core import export
    if kind == "nifti":
        return str(export.write_nifti(path, label, study, force=force))
    if kind == "seg":
        if study.volume is None:
            raise export.ExportError(f"{path}: DICOM SEG needs a study opened from a DICOM folder")
        return str(export.write_dicom_seg(path, label, study.volume, force=force))
    if kind == "csv":
        from core.evaluate import study_summary
        summary = summary or study_summary(label, study.spacing, study.hu)
        return str(export.write_lesions_csv(path, summary["lesions"], force=force, source_dirs=[study.source_dir]))
    raise ValueError(kind)


def export_file(writer, path, data, force, source_dirs, progress=None, cancel=None) -> str:
    return str(writer(path, data, force=force, source_dirs=source_dirs))


def warm_up(progress=None, cancel=None) -> str:
    """Import Keras and its backend (TensorFlow by default) and build the inference device choice."""
    import keras

    from core.inference import default_device
    default_device()
    return keras.backend.backend()


def engine_description() -> str:
    """Which Keras backend and device, and which ONNX Runtime providers, inference can use (About)."""
    import os

    from core.model.onnx_export import available_providers
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    try:
        from core.inference import default_device
        _, desc = default_device()
        text = f"Keras backend: {backend}; device: {desc}"
    except Exception as exc:  # no backend installed
        text = f"Keras backend: {backend} (unavailable: {exc})"
    providers = available_providers()
    return text + ("\nONNX Runtime: " + ", ".join(p.replace("ExecutionProvider", "") for p in providers)
                   if providers else "\nONNX Runtime: not installed")
