"""The Train tab's jobs: importing a dataset, training a model (new or resumed) and fine-tuning
the shipped models on the user's cases, each in a worker with live curves. When one ends, the
Segment tab's model lists are refreshed (a new model may be there)."""

from __future__ import annotations

import os

from .. import background
from ..workers import Job
from .services import WindowServices


class TrainingController:
    """Runs the Train tab's import, training and fine-tuning jobs.

    Receives the window's services, the Train panel (with its curves and fine-tune box) and the
    Segment panel (its model lists are refreshed after a run).
    """

    def __init__(self, services: WindowServices, train_panel, segment_panel):
        self.services = services
        self.train_panel, self.segment_panel = train_panel, segment_panel
        self._train_job: Job | None = None
        tp = train_panel
        tp.startRequested.connect(self.start_training)
        tp.stopRequested.connect(self.stop_training)
        tp.importRequested.connect(self.import_dataset)
        tp.monitorRequested.connect(lambda d: tp.curves.follow(d))
        if tp.finetune is not None:
            tp.finetune.finetuneRequested.connect(self.start_finetune)
            tp.finetune.defaultsChanged.connect(lambda: segment_panel.refresh(select_defaults=True))

    def import_dataset(self, src: str, out: str) -> Job:
        tp = self.train_panel
        tp.import_progress.setVisible(True)
        job = Job("Import", background.import_dataset, src, out)
        def show(ev) -> None:  # slots connected to signals must return None (PySide6 refcounts returns)
            tp.import_progress.setRange(0, max(ev.total, 0))
            tp.import_progress.setValue(ev.done)
        job.progress.connect(show)
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(lambda *_: tp.import_progress.setVisible(False))
        return self.services.start_job(job, lambda ids: self.services.status(f"Imported {len(ids)} case(s)"))

    def start_training(self, panel, resume: bool) -> Job | None:
        try:
            cfg = panel.config(resume)
        except Exception as exc:
            self.services.show_error(str(exc), "")
            return None
        job = Job("Training", background.train_model, cfg, resume)
        self._train_job = job
        panel.set_running(True)
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(lambda *_: panel.set_running(False))
        job.finished.connect(lambda *_: self.segment_panel.refresh())
        job.finished.connect(lambda *_: panel.curves.refresh(force=True))
        self.services.start_job(job, lambda r: self.services.status(
            f"Training {r.status}: best val Dice {r.best_val_dice:.3f} (epoch {r.best_epoch})"))
        panel.curves.follow(cfg.out, cfg.epochs)
        return job

    def stop_training(self) -> None:
        if self._train_job is not None:
            self._train_job.token.cancel()

    def start_finetune(self, box) -> Job | None:
        """Fine-tune from the Train tab: live curves of the stage in progress, then the before/after table."""
        try:
            cfg = box.config()
        except Exception as exc:
            self.services.show_error(str(exc), "")
            return None
        tp = self.train_panel
        job = Job("Fine-tuning", background.finetune_models, cfg)
        self._train_job = job
        box.set_running(True)
        tp.set_running(True)
        following = {"stage": None}

        def follow(ev) -> None:  # each stage is a run folder: follow the one that is training
            if (getattr(ev, "stage", None) == "recipe" and ev.done < len(cfg.stages)
                    and following["stage"] != cfg.stages[ev.done]):
                following["stage"] = cfg.stages[ev.done]
                tp.curves.follow(os.path.join(cfg.out, following["stage"]))
        job.progress.connect(follow)
        def ended(*_) -> None:
            box.set_running(False)
            tp.set_running(False)
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(ended)
        job.finished.connect(box.show_outcome)
        job.finished.connect(lambda *_: tp.curves.refresh(force=True))
        job.finished.connect(lambda *_: self.segment_panel.refresh())
        self.services.start_job(job, lambda r: self.services.status(
            "Fine-tuning " + ("cancelled" if r.cancelled else f"done: {cfg.out}")))
        return job
