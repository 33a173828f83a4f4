"""The viewer's state without Qt: cursor, slice indices, window/level, display mode and overlays.

The widgets in ``app/widgets/slice_view.py`` render a :class:`ViewerState` and write the user's
changes (slider, wheel, keys, right-drag, the display panel's controls) into it; the state tells
its listeners what changed through plain callbacks, as napari's ``components/`` do. So the rules
(clamping to the volume, cursor <-> per-axis indices, the window's minimum width, which display
modes exist) are testable without a display.

Listeners are called with one :class:`Change` per change and never when a value stays the same::

    state = ViewerState((119, 512, 512))
    state.events.connect(lambda ch: print(ch.name, ch.value, ch.old))
    state.set_index(0, 200)     # -> cursor (118, 256, 256) (59, 256, 256): clamped to the volume
    state.set_index(0, 500)     # nothing: still the last slice
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from core.runtime.labels import LIVER

#: Event names: a new volume (the cursor goes to its centre), the cursor (and so one or more
#: slice indices), the window (center, width), the display mode, an overlay's visibility/opacity.
EVENTS = ("volume", "cursor", "window", "mode", "overlay")
#: What the overlay shows: the segmentation, the reference, or the segmentation with the
#: reference's outlines.
MODES = ("prediction", "reference", "outlines")
#: Window presets, (center, width) in HU.
PRESETS = MappingProxyType({
    "Abdomen 400/40": (40.0, 400.0),
    "Liver 150/90": (90.0, 150.0),
    "Bone 2500/480": (480.0, 2500.0),
    "Notebooks [-100, 400]": (150.0, 500.0),
})
DEFAULT_PRESET = "Abdomen 400/40"
MIN_WIDTH = 1.0
#: The overlay's label classes and their default opacity (0..255).
DEFAULT_ALPHAS = MappingProxyType({"liver": 110, "tumour": 150})
#: Right-drag: HU of width per pixel to the right, HU of center per pixel up.
DRAG_WIDTH_PER_PX, DRAG_CENTER_PER_PX = 2.0, 1.0
#: The most voxels :func:`liver_centre` reads (an evenly strided sample of a bigger label): a few ms.
CENTRE_SAMPLE = 1 << 20


def liver_centre(label: np.ndarray) -> tuple[int, int, int] | None:
    """Where the views go to show a new segmentation: the liver's centre of mass (lesions are liver
    too), or, when that voxel is outside the liver (a crescent-shaped one), the liver voxel nearest
    to it; None without liver. Read on a strided sample of at most :data:`CENTRE_SAMPLE` voxels (every
    4th voxel of a 512 x 512 x 207 CT) so the GUI thread spends milliseconds on it, not a frame."""
    step = max(1, int(np.ceil((label.size / CENTRE_SAMPLE) ** (1 / 3))))
    m = label[::step, ::step, ::step] >= LIVER
    plane = m.sum(0, dtype=np.int64)  # the profiles along each axis give the centre of mass
    n = int(plane.sum())
    if not n:
        return None
    profiles = (m.sum((1, 2), dtype=np.int64), plane.sum(1), plane.sum(0))
    com = np.array([(p * np.arange(len(p))).sum() / n for p in profiles]) * step
    z, y, x = (int(v) for v in np.rint(com))
    if label[z, y, x] < LIVER:  # rare: only then the voxels themselves
        pts = np.argwhere(m) * step
        z, y, x = (int(v) for v in pts[np.argmin(((pts - com) ** 2).sum(1))])
    return z, y, x


@dataclass(frozen=True)
class Change:
    """One change: its event ``name`` (one of :data:`EVENTS`), the new ``value`` and the ``old`` one."""

    name: str
    value: Any
    old: Any = None


class Events:
    """Plain-callback notification: ``connect(fn)``, then ``fn(change)`` on every change.

    Bound methods are held weakly (a widget that renders the state does not stay alive for it);
    other callables strongly. A listener connected twice is called once.
    """

    def __init__(self) -> None:
        self._refs: list = []

    @staticmethod
    def _ref(fn: Callable) -> Callable[[], Callable | None]:
        if hasattr(fn, "__self__") and hasattr(fn, "__func__"):
            return weakref.WeakMethod(fn)
        return lambda: fn

    def connect(self, fn: Callable[[Change], Any]) -> Callable[[Change], Any]:
        if fn not in self.listeners():
            self._refs.append(self._ref(fn))
        return fn

    def disconnect(self, fn: Callable[[Change], Any]) -> None:
        self._refs = [r for r in self._refs if r() is not None and r() != fn]

    def listeners(self) -> list[Callable[[Change], Any]]:
        self._refs = [r for r in self._refs if r() is not None]
        return [r() for r in self._refs]

    def emit(self, name: str, value: Any, old: Any = None) -> None:
        if name not in EVENTS:
            raise ValueError(f"unknown viewer event {name!r}; expected one of {EVENTS}")
        change = Change(name, value, old)
        for fn in self.listeners():
            fn(change)


class ViewerState:
    """Cursor (z, y, x) in voxels of a volume of ``shape``; window; display mode; overlays.

    The slice shown along axis ``a`` (0 axial, 1 coronal, 2 sagittal) is ``cursor[a]``, so the
    three views' indices and the crosshair are one value. Every setter returns whether anything
    changed (and only then notifies).
    """

    def __init__(self, shape: tuple[int, int, int] | None = None, window: tuple[float, float] | None = None,
                 mode: str = "prediction") -> None:
        self.events = Events()
        self._shape: tuple[int, int, int] | None = None
        self._cursor = (0, 0, 0)
        c, w = PRESETS[DEFAULT_PRESET] if window is None else window
        self._window = (float(c), max(MIN_WIDTH, float(w)))
        self._mode = self._valid_mode(mode)
        self._alphas = dict(DEFAULT_ALPHAS)
        self._visible = {k: True for k in DEFAULT_ALPHAS}
        if shape is not None:
            self.set_shape(shape)

    # -- read -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int] | None:
        return self._shape

    @property
    def cursor(self) -> tuple[int, int, int]:
        return self._cursor

    def index(self, axis: int) -> int:
        """The slice shown along ``axis``; -1 before a volume is set."""
        return -1 if self._shape is None else self._cursor[axis]

    @property
    def indices(self) -> tuple[int, int, int]:
        return self.index(0), self.index(1), self.index(2)

    @property
    def window(self) -> tuple[float, float]:
        """(center, width) in HU."""
        return self._window

    @property
    def levels(self) -> tuple[float, float]:
        """(lowest, highest) HU of the grey ramp."""
        c, w = self._window
        return (c - w / 2, c + w / 2)

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def alphas(self):
        """Opacity (0..255) per overlay class, as set (see :meth:`alpha` for what is drawn)."""
        return MappingProxyType(self._alphas)

    @property
    def visible(self):
        return MappingProxyType(self._visible)

    def alpha(self, which: str) -> int:
        """The opacity drawn for ``which``: 0 while it is hidden."""
        return self._alphas[which] if self._visible[which] else 0

    # -- write ----------------------------------------------------------------
    def set_shape(self, shape) -> None:
        """A new volume: the cursor goes to its centre. Always notifies (the data are new)."""
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"a volume has three positive dimensions, not {shape}")
        old = self._shape
        self._shape = shape
        self._cursor = tuple(s // 2 for s in shape)
        self.events.emit("volume", shape, old)

    def clamp(self, axis: int, k) -> int:
        assert self._shape is not None, "no volume"
        assert self._shape is not None, "no volume"
        return max(0, min(int(k), self._shape[axis] - 1))

    def set_cursor(self, z, y, x) -> bool:
        """Move the cursor (clamped to the volume); nothing happens before a volume is set."""
        if self._shape is None:
            return False
        new = self.clamp(0, z), self.clamp(1, y), self.clamp(2, x)
        if new == self._cursor:
            return False
        old, self._cursor = self._cursor, new
        self.events.emit("cursor", new, old)
        return True

    def focus_liver(self, label: np.ndarray) -> bool:
        """Move the cursor (so the three views) to the liver of ``label`` (:func:`liver_centre`)."""
        centre = liver_centre(label) if self._shape is not None and label.shape == self._shape else None
        return centre is not None and self.set_cursor(*centre)

    def set_index(self, axis: int, k) -> bool:
        """Show slice ``k`` along ``axis`` (moves the cursor on that axis only)."""
        if self._shape is None:
            return False
        c = list(self._cursor)
        c[axis] = k
        return self.set_cursor(*c)

    def step(self, axis: int, n: int) -> bool:
        """Scroll ``n`` slices along ``axis``."""
        return self._shape is not None and self.set_index(axis, self._cursor[axis] + int(n))

    def set_window(self, center, width) -> bool:
        new = (float(center), max(MIN_WIDTH, float(width)))
        if new == self._window:
            return False
        old, self._window = self._window, new
        self.events.emit("window", new, old)
        return True

    def apply_preset(self, name: str) -> bool:
        if name not in PRESETS:
            raise ValueError(f"unknown window preset {name!r}; expected one of {list(PRESETS)}")
        return self.set_window(*PRESETS[name])

    def drag_window(self, dx: float, dy: float) -> bool:
        """Right-drag by (dx, dy) pixels: right widens, up raises the center."""
        c, w = self._window
        return self.set_window(c - dy * DRAG_CENTER_PER_PX, w + dx * DRAG_WIDTH_PER_PX)

    @staticmethod
    def _valid_mode(mode: str) -> str:
        if mode not in MODES:
            raise ValueError(f"unknown display mode {mode!r}; expected one of {MODES}")
        return mode

    def set_mode(self, mode: str) -> bool:
        mode = self._valid_mode(mode)
        if mode == self._mode:
            return False
        old, self._mode = self._mode, mode
        self.events.emit("mode", mode, old)
        return True

    def set_overlay(self, which: str, visible: bool | None = None, alpha: int | None = None) -> bool:
        """Show/hide an overlay class and/or set its opacity (clamped to 0..255)."""
        if which not in self._alphas:
            raise ValueError(f"unknown overlay {which!r}; expected one of {tuple(self._alphas)}")
        old = (self._visible[which], self._alphas[which])
        new = (old[0] if visible is None else bool(visible),
               old[1] if alpha is None else max(0, min(255, int(alpha))))
        if new == old:
            return False
        self._visible[which], self._alphas[which] = new
        self.events.emit("overlay", (which, *new), (which, *old))
        return True
