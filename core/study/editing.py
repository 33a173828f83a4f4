"""Hand correction of a label volume: brush and eraser with undo/redo (no GUI code).

Each stroke records the previous values of the voxels it changed, so undo and
redo cost memory proportional to the edit, not to the volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..runtime.labels import LIVER, TUMOUR


@dataclass
class _Edit:
    index: tuple  # flat voxel indices changed
    before: np.ndarray
    after: np.ndarray


@dataclass
class LabelEditor:
    """Edits ``label`` (uint8 [Z, Y, X]) in place.

    Brushes paint a disc of ``radius`` pixels on one axial slice:
        * "liver" sets 1 (keeping tumour voxels as they are),
        * "tumor" sets 2,
        * "erase" sets 0.
    A stroke (several :meth:`paint` calls between :meth:`begin` and :meth:`end`)
    undoes as one step.
    """

    label: np.ndarray
    max_undo: int = 100
    _undo: list = field(default_factory=list)
    _redo: list = field(default_factory=list)
    _stroke: dict = field(default_factory=dict)
    _open: bool = False

    def begin(self) -> None:
        self._stroke = {}
        self._open = True

    def paint(self, z: int, y: float, x: float, radius: float, tool: str) -> int:
        """Paint one disc; returns how many voxels changed."""
        if tool not in ("liver", "tumor", "erase"):
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
        self._undo.append(_Edit(idx[changed], before[changed], after[changed]))
        del self._undo[:-self.max_undo]
        self._redo.clear()
        return True

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
        dst.append(e)
        return True
