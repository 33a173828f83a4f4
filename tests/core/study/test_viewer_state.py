"""The viewer's state without a display: clamping, cursor <-> indices, window, modes, listeners."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.study.viewer_state import MODES, PRESETS, Change, ViewerState

ROOT = Path(__file__).resolve().parents[3]


def recorded(state: ViewerState) -> list[Change]:
    seen: list[Change] = []
    state.events.connect(seen.append)
    return seen


def test_no_volume_no_indices_and_nothing_moves():
    s = ViewerState()
    seen = recorded(s)
    assert s.shape is None and s.indices == (-1, -1, -1) and s.index(0) == -1
    assert not s.set_cursor(3, 4, 5) and not s.set_index(0, 2) and not s.step(1, 1)
    assert s.cursor == (0, 0, 0) and seen == []


def test_volume_puts_the_cursor_at_its_centre_and_always_notifies():
    s = ViewerState()
    seen = recorded(s)
    s.set_shape((119, 512, 256))
    assert s.cursor == (59, 256, 128) and s.indices == s.cursor
    s.set_cursor(0, 0, 0)
    s.set_shape((119, 512, 256))  # same shape, new data: drawn again, centred again
    assert [c.name for c in seen] == ["volume", "cursor", "volume"]
    assert seen[0] == Change("volume", (119, 512, 256), None) and seen[2].old == (119, 512, 256)
    assert s.cursor == (59, 256, 128)
    for bad in ((10, 10), (0, 5, 5), (4, -1, 4)):
        with pytest.raises(ValueError):
            s.set_shape(bad)


def test_indices_are_clamped_to_the_volume():
    s = ViewerState((10, 20, 30))
    assert s.set_index(0, 99) and s.index(0) == 9
    assert not s.set_index(0, 12)  # still the last slice
    assert s.set_index(2, -4) and s.index(2) == 0
    assert s.set_cursor(-1, 100, 29.7) and s.cursor == (0, 19, 29)
    assert s.step(0, 3) and s.index(0) == 3
    assert s.step(0, -10) and s.index(0) == 0
    assert not s.step(0, -1)


def test_cursor_and_indices_are_one_value():
    s = ViewerState((10, 20, 30))
    seen = recorded(s)
    s.set_index(1, 4)  # one axis moves, the others stay
    assert s.cursor == (5, 4, 15) and s.indices == (5, 4, 15)
    assert seen == [Change("cursor", (5, 4, 15), (5, 10, 15))]
    s.set_cursor(2, 3, 4)  # three axes move in one change
    assert s.indices == (2, 3, 4) and len(seen) == 2 and seen[1].old == (5, 4, 15)
    assert all(isinstance(k, int) for k in s.cursor)


def test_window_presets_levels_and_drag():
    s = ViewerState()
    assert s.window == PRESETS["Abdomen 400/40"] and s.levels == (-160.0, 240.0)
    assert set(PRESETS) >= {"Abdomen 400/40", "Liver 150/90", "Bone 2500/480"}
    seen = recorded(s)
    assert s.apply_preset("Liver 150/90") and s.window == (90.0, 150.0)
    assert s.levels == pytest.approx((15, 165))
    assert not s.apply_preset("Liver 150/90") and len(seen) == 1
    assert s.drag_window(10.0, -5.0)  # right and up: wider and higher, as a right-drag in a view
    assert s.window == pytest.approx((95.0, 170.0))
    assert s.set_window(40, -3) and s.window == (40.0, 1.0)  # never narrower than 1 HU
    assert not s.set_window(40.0, 0.5)
    assert [c.name for c in seen] == ["window"] * 3
    with pytest.raises(ValueError):
        s.apply_preset("Lung")
    assert ViewerState(window=(10, 0)).window == (10.0, 1.0)


def test_modes_are_validated():
    s = ViewerState()
    seen = recorded(s)
    assert s.mode == "prediction" and MODES == ("prediction", "reference", "outlines")
    assert s.set_mode("outlines") and s.mode == "outlines"
    assert not s.set_mode("outlines")
    with pytest.raises(ValueError, match="display mode"):
        s.set_mode("contours")
    assert s.mode == "outlines" and seen == [Change("mode", "outlines", "prediction")]
    with pytest.raises(ValueError):
        ViewerState(mode="nope")


def test_overlays_visibility_and_opacity():
    s = ViewerState()
    seen = recorded(s)
    assert dict(s.alphas) == {"liver": 110, "tumour": 150} and all(s.visible.values())
    assert s.set_overlay("tumour", visible=False) and s.alpha("tumour") == 0 and s.alphas["tumour"] == 150
    assert not s.set_overlay("tumour", visible=False)
    assert s.set_overlay("liver", alpha=300) and s.alpha("liver") == 255
    assert not s.set_overlay("liver")
    assert seen == [Change("overlay", ("tumour", False, 150), ("tumour", True, 150)),
                    Change("overlay", ("liver", True, 255), ("liver", True, 110))]
    with pytest.raises(ValueError):
        s.set_overlay("spleen", visible=False)
    with pytest.raises(TypeError):
        s.alphas["liver"] = 3  # read-only: changes go through set_overlay


def test_listeners_once_per_change_disconnect_and_weak_methods():
    s = ViewerState((8, 8, 8))
    calls = []

    def fn(ch):
        calls.append(ch.name)
    s.events.connect(fn)
    s.events.connect(fn)  # twice: still called once
    s.set_index(0, 1)
    s.set_index(0, 1)
    assert calls == ["cursor"]
    s.events.disconnect(fn)
    s.set_index(0, 2)
    assert calls == ["cursor"]

    class View:
        def __init__(self):
            self.seen = 0

        def changed(self, ch):
            self.seen += 1
    v = View()
    s.events.connect(v.changed)
    s.set_mode("reference")
    assert v.seen == 1 and len(s.events.listeners()) == 1
    del v
    gc.collect()
    assert s.events.listeners() == []  # a bound method does not keep its object alive
    s.set_mode("prediction")
    with pytest.raises(ValueError):
        s.events.emit("zoom", 2)


def test_viewer_state_loads_no_qt():
    code = "import core.study.viewer_state, sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60, check=True).stdout
    mods = json.loads(out.splitlines()[-1])
    assert not [m for m in mods if m.split(".")[0] in ("PySide6", "pyqtgraph", "shiboken6", "PyQt5", "PyQt6")]


def test_liver_centre_is_the_centre_of_mass_of_the_liver_lesions_included():
    from core.study.viewer_state import liver_centre
    lab = np.zeros((40, 60, 80), np.uint8)
    lab[10:20, 20:40, 30:50] = 1
    lab[10:20, 20:40, 50:70] = 2  # a lesion is liver too: x 30-69, not 30-49
    assert np.abs(np.subtract(liver_centre(lab), (14.5, 29.5, 49.5))).max() <= 0.5
    assert liver_centre(np.zeros((4, 5, 6), np.uint8)) is None


def test_liver_centre_of_a_crescent_lies_in_the_liver():
    from core.study.viewer_state import liver_centre
    lab = np.zeros((30, 64, 64), np.uint8)
    zz, yy, xx = np.ogrid[:30, :64, :64]
    outer = ((yy - 32) ** 2 + (xx - 32) ** 2 <= 28 ** 2) & (zz >= 5) & (zz < 25)
    inner = (yy - 32) ** 2 + (xx - 40) ** 2 <= 24 ** 2
    lab[outer & ~inner] = 1  # the centre of mass falls in the hollow
    c = liver_centre(lab)
    assert lab[c] == 1
    com = np.argwhere(lab > 0).mean(0)
    assert np.hypot(c[1] - com[1], c[2] - com[2]) < 6 and abs(c[0] - com[0]) <= 1


def test_liver_centre_of_a_big_ct_reads_a_sample_and_is_still_close():
    from core.study.viewer_state import CENTRE_SAMPLE, liver_centre
    lab = np.zeros((207, 256, 256), np.uint8)
    assert lab.size > CENTRE_SAMPLE
    lab[120:180, 60:160, 30:140] = 1
    c = liver_centre(lab)
    assert lab[c] == 1 and np.allclose(c, (149.5, 109.5, 84.5), atol=2)


def test_focus_liver_moves_the_cursor_and_notifies_once():
    lab = np.zeros((207, 64, 64), np.uint8)
    lab[150:190, 10:30, 40:60] = 1
    state = ViewerState(lab.shape)
    assert state.cursor == (103, 32, 32)  # the volume's centre: below this liver
    seen = []
    state.events.connect(lambda ch: seen.append(ch.name))
    assert state.focus_liver(lab) and seen == ["cursor"]
    assert lab[state.cursor] == 1 and state.index(0) == state.cursor[0]
    assert not state.focus_liver(lab)  # already there
    assert not state.focus_liver(np.zeros(lab.shape, np.uint8))  # no liver: the views stay
    assert not state.focus_liver(np.ones((3, 3, 3), np.uint8))  # another volume's label: ignored
