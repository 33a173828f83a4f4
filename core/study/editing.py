"""Hand correction of a label volume: brush and eraser with undo/redo (no GUI code).

Each stroke records the previous values of the voxels it changed, so undo and
redo cost memory proportional to the edit, not to the volume. The one-click tools of
:mod:`core.study.fixes` and the lesion review (:mod:`core.study.review`) go through
:meth:`LabelEditor.apply`: a change of voxels and / or of the review states, one undo step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..runtime.choices import PAINT_TOOLS, PaintTool
from ..runtime.labels import LIVER, TUMOUR


@dataclass
class _Edit:
    index: np.ndarray  # flat voxel indices changed
    before: np.ndarray
    after: np.ndarray
    review_before: dict | None = None  # the review states around the step, when it changed them
    review_after: dict | None = None


@dataclass
class LabelEditor:
    """Edits ``label`` (uint8 [Z, Y, X]) in place.

    Brushes paint a disc of ``radius`` pixels on one axial slice:
        * "liver" sets 1 (keeping tumour voxels as they are),
        * "tumor" sets 2,
        * "erase" sets 0.
    A stroke (several :meth:`paint` calls between :meth:`begin` and :meth:`end`)
    undoes as one step.

    ``review``: the lesion review states, {flat index of a voxel inside the lesion (its anchor):
    {"state": "accepted" | "rejected", "lesion": the lesion's record when it was reviewed}}; undo and
    redo restore it with the voxels (:mod:`core.study.review`).
    """

    label: np.ndarray
    max_undo: int = 100
    review: dict = field(default_factory=dict)
    _undo: list = field(default_factory=list)
    _redo: list = field(default_factory=list)
    _stroke: dict = field(default_factory=dict)
    _open: bool = False

    def begin(self) -> None:
        self._stroke = {}
        self._open = True

    def paint(self, z: int, y: float, x: float, radius: float, tool: PaintTool) -> int:
        """Paint one disc; returns how many voxels changed."""
        if tool not in PAINT_TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        nz, ny, nx = self.label.shape
        if not 0 <= z < nz:
            return 0
        r = max(0.5, float(radius))
        y0, y1 = max(0, int(np.floor(y - r))), min(ny, int(np.ceil(y + r)) + 1)
        x0, x1 = max(0, int(np.floor(x - r))), min(nx, int(np.ceil(x + r)) + 1)
        if y0 >= y1 or x0 >= x1:
            return 0
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disc = (yy - y) ** 2 + (xx - x) ** 2 <= r * r
        sub = self.label[z, y0:y1, x0:x1]
        if tool == "liver":
            target = disc & (sub == 0)
            value = LIVER
        elif tool == "tumor":
            target = disc & (sub != TUMOUR)
            value = TUMOUR
        else:
            target = disc & (sub != 0)
            value = 0
        if not target.any():
            return 0
        ys, xs = np.nonzero(target)
        flat = np.ravel_multi_index((np.full(len(ys), z), ys + y0, xs + x0), self.label.shape)
        single = not self._open
        if single:
            self.begin()
        flat_label = self.label.reshape(-1)
        for f in flat:
            self._stroke.setdefault(int(f), int(flat_label[f]))
        flat_label[flat] = value
        if single:
            self.end()
        return len(flat)

    def end(self) -> bool:
        """Close the stroke; returns True when it changed something."""
        self._open = False
        if not self._stroke:
            return False
        idx = np.fromiter(self._stroke.keys(), dtype=np.int64)
        before = np.fromiter(self._stroke.values(), dtype=np.uint8)
        after = self.label.reshape(-1)[idx].copy()
        self._stroke = {}
        changed = before != after
        if not changed.any():
            return False
        self._push(_Edit(idx[changed], before[changed], after[changed]))
        return True

    def apply(self, flat: np.ndarray, value: int, review: dict | None = None) -> int:
        """Set the voxels at flat indices ``flat`` to ``value`` and / or make ``review`` the review
        states, as one undo step; returns how many voxels changed (0 and no step when nothing did)."""
        if self._open:
            raise RuntimeError("a brush stroke is open: end it first")
        flat = np.unique(np.asarray(flat, np.int64))
        lab = self.label.reshape(-1)
        before = lab[flat]
        changed = before != value
        idx, before = flat[changed], before[changed]
        new_review = review is not None and review != self.review
        if not len(idx) and not new_review:
            return 0
        lab[idx] = value
        edit = _Edit(idx, before, np.full(len(idx), value, np.uint8))
        if new_review and review is not None:
            edit.review_before, edit.review_after = dict(self.review), dict(review)
            self.review = dict(review)
        self._push(edit)
        return int(len(idx))

    def _push(self, edit: _Edit) -> None:
        self._undo.append(edit)
        del self._undo[:-self.max_undo]
        self._redo.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        return self._step(self._undo, self._redo, "before")

    def redo(self) -> bool:
        return self._step(self._redo, self._undo, "after")

    def _step(self, src: list, dst: list, values: str) -> bool:
        """Move the last edit from ``src`` to ``dst``, writing its ``before`` or ``after`` values."""
        if not src:
            return False
        e = src.pop()
        self.label.reshape(-1)[e.index] = getattr(e, values)
        if e.review_before is not None:
            self.review = dict(getattr(e, "review_" + values))
        dst.append(e)
        return True
