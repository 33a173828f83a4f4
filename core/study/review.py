"""Lesion-by-lesion review of a segmentation (no Qt): accept, reject, reject the small ones.

A lesion is named by its *anchor*, the voxel of it nearest its centroid (``anchor`` of the
:class:`core.runtime.summary.LesionSummary` records): ids change when lesions are edited, merged or
removed, a voxel inside the lesion does not. The states live in the editor
(:attr:`core.study.editing.LabelEditor.review`), so every review action is one undo step with the
voxels it changed; :func:`core.evaluation.evaluate.study_summary` gives each current lesion its
state ("accepted" or "unseen") and lists the rejected ones, which the JSON report and the lesion
CSV carry.

Rejecting a lesion removes its 3D component from the label: its voxels become liver (the cascade
only proposes tumours inside the liver, so a false lesion is liver tissue the model misread).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..runtime.choices import REVIEW_STATES, ReviewState
from ..runtime.labels import LIVER, TUMOUR
from ..runtime.summary import LesionSummary
from .editing import LabelEditor
from .fixes import Fix, FixError, component_at

ACCEPTED: ReviewState = "accepted"
REJECTED: ReviewState = "rejected"
UNSEEN: ReviewState = "unseen"
STATES = REVIEW_STATES


def anchor_index(lesion: LesionSummary, shape) -> int:
    """The flat index of the lesion's anchor voxel."""
    return int(np.ravel_multi_index(tuple(int(c) for c in lesion.anchor), shape))


def _entry(lesion: LesionSummary, state: ReviewState) -> dict:
    """A review entry: the state and the lesion as it was (a copy: the summary's records stay as they are)."""
    return {"state": state, "lesion": lesion.with_review(state)}


def _without(review: dict, comp: np.ndarray) -> dict:
    """``review`` less the entries whose anchor lies in the voxels ``comp`` (one lesion, one state)."""
    inside = set(int(i) for i in np.intersect1d(np.fromiter(review.keys(), np.int64, len(review)), comp))
    return {k: v for k, v in review.items() if k not in inside}


def accept(editor: LabelEditor, lesion: LesionSummary) -> bool:
    """Mark ``lesion`` accepted (one undo step); False when it already was."""
    shape = editor.label.shape
    comp = component_at(editor.label == TUMOUR, tuple(lesion.anchor))
    if not len(comp):
        raise FixError(f"lesion {lesion.id} is no longer in the segmentation")
    review = _without(editor.review, comp)
    review[anchor_index(lesion, shape)] = _entry(lesion, ACCEPTED)
    changed = review != editor.review
    editor.apply(np.zeros(0, np.int64), 0, review)
    return changed


def reject(editor: LabelEditor, lesions: Iterable[LesionSummary]) -> int:
    """Reject ``lesions``: each one's 3D component becomes liver, its state "rejected"; one undo step
    for all. Returns how many voxels changed."""
    label = editor.label
    tumour = label == TUMOUR
    review = dict(editor.review)
    parts = []
    for les in lesions:
        comp = component_at(tumour, tuple(les.anchor))
        if not len(comp):
            continue
        review = _without(review, comp)
        review[anchor_index(les, label.shape)] = _entry(les, REJECTED)
        parts.append(comp)
    if not parts:
        return 0
    return editor.apply(np.concatenate(parts), LIVER, review)


def reject_smaller(editor: LabelEditor, lesions: list[LesionSummary], min_ml: float) -> list[LesionSummary]:
    """Reject every lesion under ``min_ml`` mL not yet accepted (one undo step); returns them."""
    small = [r for r in lesions if r.volume_ml < min_ml and r.review != ACCEPTED]
    reject(editor, small)
    return small


def apply_fix(editor: LabelEditor, fix: Fix) -> int:
    """Apply a click-to-fix result (:mod:`core.study.fixes`) as one undo step; the review entries of
    lesions it removed go with them."""
    review = None
    if fix.value != TUMOUR and editor.review:
        gone = fix.flat[editor.label.reshape(-1)[fix.flat] == TUMOUR]
        review = _without(editor.review, gone) if len(gone) else None
    return editor.apply(fix.flat, fix.value, review)


def lesion_at(lesions: list[LesionSummary], label: np.ndarray, voxel) -> LesionSummary | None:
    """The lesion of ``lesions`` (records of the current label) holding ``voxel``, or None."""
    z, y, x = (int(round(float(c))) for c in voxel)
    if not all(0 <= c < n for c, n in zip((z, y, x), label.shape, strict=True)) or label[z, y, x] != TUMOUR:
        return None
    comp = component_at(label == TUMOUR, (z, y, x))
    for les in lesions:
        if np.isin(anchor_index(les, label.shape), comp):
            return les
    return None


def next_lesion(lesions: list[LesionSummary], current: int | None, step: int = 1,
                unseen_first: bool = False) -> int | None:
    """The row to review after row ``current`` (``step`` -1: before it), wrapping round; with
    ``unseen_first`` the next row not yet reviewed, when there is one. None without lesions."""
    n = len(lesions)
    if not n:
        return None
    start = -1 if current is None and step > 0 else (0 if current is None else current)
    for k in range(1, n + 1):
        i = (start + step * k) % n
        if not unseen_first or lesions[i].review == UNSEEN:
            return i
    return (start + step) % n
