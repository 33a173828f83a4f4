"""Per-case evaluation of the cascade and the summary of a segmented study."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..datasets.dataset import list_cases, load_case
from ..inference.cascade import segment
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..runtime.labels import LIVER, TUMOUR
from ..runtime.summary import LesionSummary, StudySummary
from . import metrics


def study_summary(label: np.ndarray, spacing, hu: np.ndarray | None = None,
                  review: dict | None = None) -> StudySummary:
    """Liver and tumour volumes (mL), tumour burden (%) and the lesion table of a label volume.

    Each lesion gets its review state ``review`` ("accepted" when an accepted anchor of ``review``,
    :mod:`core.study.review`, lies inside it, else "unseen"); ``rejected_lesions`` lists the
    lesions rejected (their records when rejected), which are no longer in ``label``.
    """
    liver_ml = metrics.volume_ml(label >= LIVER, spacing)
    tumour_ml = metrics.volume_ml(label == TUMOUR, spacing)
    recs, comps = metrics.lesion_components(label == TUMOUR, spacing, hu)
    review = review or {}
    accepted = {int(comps.reshape(-1)[k]) for k, e in review.items()
                if e.get("state") == "accepted" and 0 <= k < comps.size}
    lesions = [LesionSummary(id=r["id"], voxels=r["voxels"], volume_ml=r["volume_ml"], slices=tuple(r["slices"]),
                             centroid=tuple(r["centroid"]), anchor=tuple(r["anchor"]),
                             longest_axial_diameter_mm=r["longest_axial_diameter_mm"], mean_hu=r.get("mean_hu"),
                             review="accepted" if r["_label"] in accepted else "unseen") for r in recs]
    rejected = [e["lesion"].with_review("rejected") for e in review.values() if e.get("state") == "rejected"]
    return StudySummary(liver_ml=liver_ml, tumour_ml=tumour_ml,
                        tumour_burden_pct=100.0 * tumour_ml / liver_ml if liver_ml else 0.0,
                        lesions=lesions, rejected_lesions=rejected)


def case_report(pred: np.ndarray, truth: np.ndarray, spacing) -> dict:
    """Liver and tumour metrics of one case, plus lesion detection."""
    liver = metrics.case_metrics(pred > 0, truth > 0, spacing)
    tumour = metrics.case_metrics(pred == TUMOUR, truth == TUMOUR, spacing)
    if not (truth == TUMOUR).any() and not (pred == TUMOUR).any():
        tumour["dice"] = tumour["jaccard"] = 1.0  # nothing to find, nothing found
    return {"liver": liver, "tumor": tumour,
            "lesions": metrics.lesion_detection(pred == TUMOUR, truth == TUMOUR, spacing),
            "liver_notebook": metrics.notebook_metrics(pred >= LIVER, truth >= LIVER)}


def _mean(vals) -> float:
    v = [x for x in vals if isinstance(x, (int, float)) and math.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def evaluate_dataset(dataset, liver_model, tumour_model, cases: Sequence[str] | None = None,
                     progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                     **segment_kwargs) -> dict:
    """Segment every case of a dataset and compare with its ground truth.

    Returns:
        {"cases": {case_id: case_report}, "mean": {...}, "models": {...}}.
    """
    ids = list(cases) if cases else list_cases(dataset)
    out = {}
    for i, cid in enumerate(ids):
        check(cancel)
        report(progress, "evaluate", i, len(ids), cid)
        case = load_case(dataset, cid)
        seg = segment(case, liver_model, tumour_model, cancel=cancel, **segment_kwargs)
        r = case_report(seg.label, case.label, case.spacing)
        r["warnings"] = seg.warnings
        r["seconds"] = seg.timings.get("total", 0.0)
        out[cid] = r
    report(progress, "evaluate", len(ids), len(ids))
    keys = ("dice", "jaccard", "voe", "rvd", "assd_mm", "mssd_mm", "precision", "recall")
    mean: dict[str, Any] = {s: {k: _mean(r[s][k] for r in out.values()) for k in keys} for s in ("liver", "tumor")}
    mean["tumor_cases_with_tumour"] = {
        k: _mean(r["tumor"][k] for r in out.values() if r["lesions"]["true_lesions"]) for k in keys}
    mean["lesion_recall"] = _mean(r["lesions"]["recall"] for r in out.values())
    mean["lesion_false_positives"] = _mean(r["lesions"]["false_positives"] for r in out.values())
    return {"cases": out, "mean": mean,
            "models": {"liver": liver_model.meta, "tumor": tumour_model.meta if tumour_model else None}}


def format_table(result: dict) -> str:
    """The per-case table printed by ``liverseg evaluate``."""
    head = (f"{'case':16s} {'liver Dice':>10s} {'ASSD mm':>8s} {'RVD':>7s} {'tumour Dice':>11s} "
            f"{'ASSD mm':>8s} {'RVD':>7s} {'lesion recall':>13s}")
    lines = [head, "-" * len(head)]

    def f(x, w, p=3):
        return f"{x:{w}.{p}f}" if isinstance(x, (int, float)) and math.isfinite(x) else f"{'-':>{w}s}"
    for cid, r in result["cases"].items():
        lv, tu, le = r["liver"], r["tumor"], r["lesions"]
        lines.append(f"{cid:16s} {f(lv['dice'], 10)} {f(lv['assd_mm'], 8, 2)} {f(lv['rvd'], 7)} "
                     f"{f(tu['dice'], 11)} {f(tu['assd_mm'], 8, 2)} {f(tu['rvd'], 7)} {f(le['recall'], 13)}")
    m = result["mean"]
    lines.append("-" * len(head))
    lines.append(f"{'mean':16s} {f(m['liver']['dice'], 10)} {f(m['liver']['assd_mm'], 8, 2)} {f(m['liver']['rvd'], 7)} "
                 f"{f(m['tumor']['dice'], 11)} {f(m['tumor']['assd_mm'], 8, 2)} {f(m['tumor']['rvd'], 7)} "
                 f"{f(m['lesion_recall'], 13)}")
    return "\n".join(lines)
