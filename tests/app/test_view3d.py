"""The 3D view: surfaces of the working label, a click on a lesion selects its row; without OpenGL
(the offscreen platform of these tests) one line says so and the rest of the app works. The
OpenGL half runs in a child process on Xvfb (Mesa's software OpenGL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import demo_segmented

ROOT = Path(__file__).resolve().parents[2]


def test_without_opengl_the_3d_tab_says_so_and_review_still_works(window, qtbot):
    w = demo_segmented(window, qtbot)
    assert w.view3d is None  # nothing OpenGL at start-up
    w.tabs.setCurrentWidget(w.tab3d)
    assert w.view3d is not None and not w.view3d.available
    assert w.view3d.message.text().startswith("3D view unavailable") and "\n" not in w.view3d.message.text()
    w.tabs.setCurrentWidget(w.results)
    w.results.select(0)
    with qtbot.waitSignal(w.summaryUpdated, timeout=30000):
        w.review("reject")
    assert len(w.results.records) == 1


SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv)
    from app.widgets.view3d import View3D
    from core.study.surfaces import label_meshes
    lab = np.zeros((40, 96, 96), np.uint8)
    zz, yy, xx = np.ogrid[:40, :96, :96]
    lab[((zz - 20) / 15.) ** 2 + ((yy - 48) / 35.) ** 2 + ((xx - 48) / 35.) ** 2 <= 1] = 1
    lab[((zz - 20) / 4.) ** 2 + ((yy - 40) / 8.) ** 2 + ((xx - 30) / 8.) ** 2 <= 1] = 2
    lab[((zz - 22) / 3.) ** 2 + ((yy - 60) / 5.) ** 2 + ((xx - 65) / 5.) ** 2 <= 1] = 2
    v = View3D()
    assert v.available, v.problem
    v.resize(500, 500)
    v.show()
    meshes = label_meshes(lab, (2.0, 1.0, 1.0))
    tumours = [m for m in meshes if m.kind == "tumor"]
    v.set_meshes(meshes, tumours[1].anchor)
    for _ in range(20):
        app.processEvents()
    img = v.gl.grabFramebuffer()
    img = img.convertToFormat(img.Format.Format_RGB888)
    a = np.array(img.constBits(), np.uint8)
    a = a.reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3].reshape(img.height(), img.width(), 3)
    if len(sys.argv) > 1:
        img.save(sys.argv[1])
    red = ((a[..., 0] > 150) & (a[..., 1] < 80)).sum()
    yellow = ((a[..., 0] > 150) & (a[..., 1] > 150) & (a[..., 2] < 80)).sum()
    assert red > 50 and yellow > 20, (red, yellow)
    from PySide6.QtGui import QVector3D
    mvp = v.mvp()
    got = []
    v.lesionPicked.connect(lambda *a: got.append(a))
    for m in tumours:
        c = mvp.map(QVector3D(*[float(x) for x in m.centre]))
        px, py = (c.x() + 1) / 2 * v.gl.width(), (1 - c.y()) / 2 * v.gl.height()
        assert v.pick(px, py) == m.anchor, (m.anchor, v.pick(px, py))
    assert v.pick(2, 2) is None
    print("OK", red, yellow)
''')


@pytest.mark.skipif(shutil.which("Xvfb") is None and not os.environ.get("CI"),
                    reason="Xvfb is not installed here (.ci/run installs it)")
def test_surfaces_render_and_a_click_picks_the_lesion_on_a_real_opengl_display(tmp_path):
    display = f":{90 + os.getpid() % 50}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(ROOT))
        r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=180)
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr[-3000:]


def test_surfaces_of_a_tiny_label():
    from core.study.surfaces import label_meshes
    lab = np.zeros((6, 12, 12), np.uint8)
    lab[1:5, 2:10, 2:10] = 1
    lab[2:4, 4:6, 4:6] = 2
    meshes = label_meshes(lab, (2.0, 1.0, 1.0))
    assert [m.kind for m in meshes] == ["liver", "tumor"]
    liver, tumour = meshes
    lo, hi = liver.vertices.min(0), liver.vertices.max(0)
    # X = column (1.5-9.5 mm), Y = row (1.5-9.5 mm), Z = slice (1-9 mm at 2 mm)
    assert np.allclose(lo, [1.5, 1.5, 1.0], atol=0.6) and np.allclose(hi, [9.5, 9.5, 9.0], atol=0.6)
    assert tumour.anchor == (2, 4, 4) or lab[tumour.anchor] == 2
    assert tumour.radius == pytest.approx((3 * 16 / (4 * np.pi)) ** (1 / 3), rel=1e-6)
    assert label_meshes(np.zeros((3, 4, 4), np.uint8), (1, 1, 1)) == []
