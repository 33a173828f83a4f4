"""Before and after a fine-tune: the base models and the fine-tuned ones on the lab's held-out cases.

:func:`finetune_and_compare` is what the Train tab's *Fine-tune* runs (and ``liverseg finetune
--compare``): the fine-tune itself (:func:`core.training.finetune.finetune`), then the cascade of the
base models and the cascade of the fine-tuned ones segment each held-out case (the cases the run
chose its best epoch on; no model trained on them) and are scored per case, in 3D. A stage that was
not fine-tuned keeps its base model in the "after" cascade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..evaluation.evaluate import evaluate_dataset
from ..model.card import MODEL
from ..model.io import load_seg_model
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from .finetune import STAGES, FinetuneConfig, base_model, finetune, lab_split


@dataclass(frozen=True)
class CaseScore:
    """One cascade on one case: liver and tumour Dice (3D), lesions found of the expert's, false lesions."""

    liver_dice: float
    tumour_dice: float
    lesions_found: int
    lesions_true: int
    false_lesions: int

    @classmethod
    def from_report(cls, r: dict) -> CaseScore:
        le = r["lesions"]
        return cls(float(r["liver"]["dice"]), float(r["tumor"]["dice"]), int(le["hits"]), int(le["true_lesions"]),
                   int(le["false_positives"]))

    @property
    def lesions(self) -> str:
        return f"{self.lesions_found}/{self.lesions_true} (+{self.false_lesions} false)"


@dataclass(frozen=True)
class CaseComparison:
    case_id: str
    before: CaseScore
    after: CaseScore


@dataclass
class FinetuneOutcome:
    """What a fine-tune produced: each stage's run, the before/after rows, and the model files.

    Attributes:
        results: {stage: :class:`core.training.trainer.RunResult`}.
        cases: one row per held-out case (empty when the run was cancelled).
        base_models, tuned_models: {stage: model.keras path} of each cascade.
    """

    results: dict
    cases: list[CaseComparison] = field(default_factory=list)
    base_models: dict[str, str] = field(default_factory=dict)
    tuned_models: dict[str, str] = field(default_factory=dict)

    @property
    def cancelled(self) -> bool:
        return any(r.status == "cancelled" for r in self.results.values())

    def table(self) -> str:
        """The before/after table as text (the CLI prints it)."""
        def f(x):
            return f"{x:.3f}" if isinstance(x, float) and math.isfinite(x) else "-"
        head = (f"{'case':16s} {'liver Dice before':>17s} {'after':>6s} {'tumour Dice before':>18s} {'after':>6s}"
                "  lesions before -> after")
        rows = [head, "-" * len(head)]
        for c in self.cases:
            rows.append(f"{c.case_id:16s} {f(c.before.liver_dice):>17s} {f(c.after.liver_dice):>6s} "
                        f"{f(c.before.tumour_dice):>18s} {f(c.after.tumour_dice):>6s}  "
                        f"{c.before.lesions} -> {c.after.lesions}")
        return "\n".join(rows)


def _models(paths: dict[str, str]):
    return (load_seg_model(paths["liver"], "liver", lazy=True), load_seg_model(paths["tumor"], "tumor", lazy=True))


def compare(dataset: str, cases, base_models: dict[str, str], tuned_models: dict[str, str], engine: str = "auto",
            progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> list[CaseComparison]:
    """Score both cascades ({stage: model.keras}) on these dataset cases."""
    scores = {}
    for i, (name, paths) in enumerate((("before", base_models), ("after", tuned_models))):
        check(cancel)
        report(progress, "compare", i, 2, f"{name}: {', '.join(cases)}")
        liver, tumour = _models(paths)
        r = evaluate_dataset(dataset, liver, tumour, list(cases), cancel=cancel, engine=engine)
        scores[name] = {cid: CaseScore.from_report(rep) for cid, rep in r["cases"].items()}
    report(progress, "compare", 2, 2)
    return [CaseComparison(cid, scores["before"][cid], scores["after"][cid]) for cid in cases]


def finetune_and_compare(cfg: FinetuneConfig, progress: ProgressFn | None = None,
                         cancel: CancelToken | None = None, resume: bool = False,
                         engine: str = "auto") -> FinetuneOutcome:
    """Fine-tune, then compare the base and the fine-tuned cascades on the held-out cases.

    Raises:
        FinetuneError, TrainingError, DatasetError: as :func:`core.training.finetune.finetune`.
    """
    base: dict[str, str] = {s: str(base_model(cfg.base, s) / MODEL) for s in STAGES}
    results = finetune(cfg, progress=progress, cancel=cancel, resume=resume)
    tuned = dict(base)
    for stage, r in results.items():
        if r.model_path and Path(r.model_path).is_file():
            tuned[stage] = str(r.model_path)
    out = FinetuneOutcome(results, base_models=base, tuned_models=tuned)
    if out.cancelled:
        return out
    _, val = lab_split(cfg.dataset, cfg.seed)
    out.cases = compare(cfg.dataset, val, base, tuned, engine=engine, progress=progress, cancel=cancel)
    return out
