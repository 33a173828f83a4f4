"""The functions the GUI runs in worker threads (plain functions over ``core``; no widgets here).

Opening, measuring and exporting a study are :class:`core.study.session.StudySession`'s methods, which the
window runs directly. Each takes ``progress`` and ``cancel`` keyword arguments, like every long
``core`` job.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from core.datasets import nifti_import
from core.followup.compare import compare_studies
from core.followup.timepoint import TimePoint
from core.inference.devices import backend_name, default_device
from core.inference.engines import available_providers
from core.io.dicom import scan
from core.pacs.operations import send_files
from core.runtime.choices import Engine
from core.runtime.jobs import check, report
from core.runtime.ml_backend import load_keras
from core.study.session import Segmented, StudySession
from core.training.finetune_compare import finetune_and_compare


def scan_folder(path: str, progress=None, cancel=None):
    return scan(path, progress=progress, cancel=cancel)


def segment_study(session: StudySession, liver_path: str, tumour_path: str | None, engine: Engine = "auto",
                  progress=None, cancel=None) -> Segmented:
    """Run the cascade with the chosen engine (see core.inference.engines); the result is not stored yet.

    Its ``snapshot`` is a copy of the label for the measuring job, taken here: nobody can edit the
    label before the GUI receives it, and a 500-slice copy (~35 ms) must not run in the GUI thread.
    """
    return session.run_segmentation(liver_path, tumour_path, engine, snapshot=True, progress=progress, cancel=cancel)


def compare_followup(baseline: StudySession, followup: StudySession, followup_label, allow_different: bool = False,
                     progress=None, cancel=None):
    """(comparison, baseline time point, follow-up time point): ``followup`` (the open study, with
    a copy of its working label, taken here) against ``baseline`` (with its label), by
    :func:`core.followup.compare.compare_studies`."""
    base = TimePoint.from_session(baseline)
    follow = TimePoint.from_session(followup, followup_label.copy())
    c = compare_studies(base, follow, allow_different_patients=allow_different, progress=progress, cancel=cancel)
    return c, base, follow


def import_dataset(src: str, out: str, progress=None, cancel=None):
    return nifti_import.import_dataset(src, out, progress=progress, cancel=cancel)


def train_model(cfg, resume: bool, progress=None, cancel=None):
    from core.training.trainer import train  # lite edition: training is not bundled
    return train(cfg, progress=progress, cancel=cancel, resume=resume)


def finetune_models(cfg, progress=None, cancel=None):
    """Fine-tune, then score base and fine-tuned models on the held-out cases (the Train tab)."""
    return finetune_and_compare(cfg, progress=progress, cancel=cancel)


def export_file(writer, path, data, force, source_dirs, progress=None, cancel=None) -> str:
    return str(writer(path, data, force=force, source_dirs=source_dirs))


def call(fn, *args, progress=None, cancel=None):
    """Run a short ``core`` function that takes no progress or cancel (a PACS query, say) as a job."""
    return fn(*args)


def send_segmentation(session: StudySession, label, conn, progress=None, cancel=None):
    """Write ``label`` as a DICOM SEG (the session's "seg" export) into a temporary folder, send it
    to the PACS ``conn`` and remove the folder; returns the :class:`core.pacs.types.StoreResult`."""
    with tempfile.TemporaryDirectory(prefix="liverseg-seg-") as tmp:
        report(progress, "export", 0, 1, "writing the DICOM SEG")
        path = session.export("seg", Path(tmp) / "segmentation.dcm", label=label, progress=progress, cancel=cancel)
        check(cancel)
        return send_files(conn, [path], progress=progress, cancel=cancel)


def warm_up(progress=None, cancel=None) -> str:
    """Import Keras and its backend (TensorFlow by default) and build the inference device choice."""
    keras = load_keras()

    default_device()
    return keras.backend.backend()


def engine_description() -> str:
    """Which Keras backend and device, and which ONNX Runtime providers, inference can use (About)."""
    backend = backend_name()
    try:
        text = f"Keras backend: {backend}; device: {default_device().text}"
    except Exception as exc:  # no backend installed
        text = f"Keras backend: {backend} (unavailable: {exc})"
    providers = available_providers()
    return text + ("\nONNX Runtime: " + ", ".join(p.replace("ExecutionProvider", "") for p in providers)
                   if providers else "\nONNX Runtime: not installed")
