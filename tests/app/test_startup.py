"""Start-up: the window takes input and shows the first slice without importing any ML backend."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gui_start_shows_the_first_slice_before_any_ml_backend_is_imported(tmp_path):
    from core.synthetic.phantom import make_phantom
    from tests.core.factory import write_series
    write_series(tmp_path / "series", make_phantom(3, 24, 128).hu)
    out = tmp_path / "timings.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    env.pop("LIVERSEG_LAUNCH_T", None)
    p = subprocess.run([sys.executable, "-m", "app", "gui", str(tmp_path / "series"), "--quit", "--timings", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    t = json.loads(out.read_text())
    assert 0 < t["window_ready_s"] <= t["first_slice_s"] < 60, t
    assert t["window_ready_heavy_modules"] == [] and t["first_slice_heavy_modules"] == [], t
