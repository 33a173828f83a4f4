"""Faults during work: kill -9 at random moments, a full disk, an unwritable location.

After each fault nothing half-written is left under a final name, and the next
run succeeds.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.datasets.dataset import Case, list_cases, load_case, write_case
from core.io.export import ExportError, read_nifti_label, write_nifti
from core.runtime.errors import DatasetError
from core.study.study import Study
from core.synthetic.phantom import make_phantom, write_patient

ROOT = Path(__file__).resolve().parents[2]
KILLS = {"import": 6, "predict": 6, "export-onnx": 6, "gui-export": 6}


def _check_outputs(out: Path) -> None:
    """Every output file under its final name in ``out`` is complete: it reads back in full."""
    import pydicom
    from PIL import Image
    for f in sorted(out.glob("*")) if out.is_dir() else []:
        if f.name.startswith("."):
            continue  # a temp file of a killed writer, never a final name
        if f.name.endswith(".nii.gz"):
            read_nifti_label(f)
        elif f.suffix == ".dcm":
            _ = pydicom.dcmread(f).pixel_array  # decodes the pixels: a torn file fails here
        elif f.suffix == ".csv":
            list(csv.DictReader(open(f)))
        elif f.suffix == ".json":
            json.loads(f.read_text())
        elif f.suffix == ".png":
            with Image.open(f) as im:
                im.load()


def _start(*args):
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _kill_at(p: subprocess.Popen, seconds: float) -> None:
    time.sleep(seconds)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait(60)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    for i in (1, 2, 3):
        write_patient(make_phantom(60 + i, 24, 128), root, i)
    return root


def _check_dataset(out: Path) -> int:
    """Every case file under a final name loads; the manifest parses. Returns the number of cases."""
    if not out.exists():
        return 0
    n = 0
    for f in out.glob("*.npz"):
        load_case(out, f.stem)
        n += 1
    if (out / "manifest.json").exists():
        json.loads((out / "manifest.json").read_text())
    return n


def test_kill_9_during_import_then_rerun(source, tmp_path):
    rng = random.Random(7)
    out = tmp_path / "ds"
    for _ in range(KILLS["import"]):
        _kill_at(_start("import", str(source), "--out", str(out)), rng.uniform(0.2, 6.0))
        _check_dataset(out)
    p = _start("import", str(source), "--out", str(out))
    assert p.wait(300) == 0, p.stderr.read()
    assert _check_dataset(out) == 3 and list_cases(out) == ["phantom-s61-1", "phantom-s62-2", "phantom-s63-3"]


def test_kill_9_during_predict_and_export_then_rerun(source, tmp_path):
    from tests.core.models import threshold_model
    with zipfile.ZipFile(source / "phantom-s61-1" / "PATIENT_DICOM.zip") as z:
        z.extractall(tmp_path / "dicom")
    lm = threshold_model(tmp_path / "l", "liver", 60)
    tm = threshold_model(tmp_path / "t", "tumor", 400)
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "dicom"), "--liver-model", str(lm), "--tumor-model", str(tm),
            "--out", str(out / "seg.nii.gz"), "--seg", str(out / "seg.dcm"), "--lesions", str(out / "l.csv"),
            "--report", str(out / "r.json"), "--force"]
    rng = random.Random(11)
    for _ in range(KILLS["predict"]):
        _kill_at(_start(*args), rng.uniform(0.5, 8.0))
        _check_outputs(out)
    p = _start(*args)
    assert p.wait(300) == 0, p.stderr.read()
    assert all((out / n).exists() for n in ("seg.nii.gz", "seg.dcm", "l.csv", "r.json"))


def test_kill_9_during_onnx_export_and_quantisation_then_rerun(tmp_path):
    """ONNX export and int8 quantisation killed at random moments: model.onnx, model.int8.onnx and
    model.json are each either absent or complete, and the rerun validates the int8 model."""
    pytest.importorskip("onnxruntime")
    from core.training.onnx_export import open_session
    from tests.core.models import threshold_model
    ds = tmp_path / "ds"
    for i in range(3):
        c = make_phantom(80 + i, 12, 64)
        write_case(ds, Case(f"q{i}", c.hu, c.label, c.spacing))
    folder = threshold_model(tmp_path / "m", "liver", -50, size=64)
    meta = json.loads((folder / "model.json").read_text())
    meta["data"] = {"dataset": str(ds), "train_patients": ["q0", "q1"], "val_patients": ["q2"]}
    (folder / "model.json").write_text(json.dumps(meta))
    rng = random.Random(13)
    for _ in range(KILLS["export-onnx"]):
        _kill_at(_start("export-onnx", str(folder), "--recalibrate"), rng.uniform(1.0, 9.0))
        m = json.loads((folder / "model.json").read_text())
        for name in ("model.onnx", "model.int8.onnx"):
            if (folder / name).exists():
                open_session(folder / name, 64)
        if "int8" in m:
            assert (folder / "model.int8.onnx").exists() and (folder / "model.onnx").exists()
        if (folder / "calibration.npz").exists():
            with np.load(folder / "calibration.npz") as z:
                assert z["x"].shape[1:] == (64, 64, 3)
    p = _start("export-onnx", str(folder))
    assert p.wait(300) == 0, p.stderr.read()
    m = json.loads((folder / "model.json").read_text())
    assert m["onnx"]["max_abs_diff"] < 1e-4 and m["int8"]["validated"]


GUI_EXPORTS = r"""
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.main_window import MainWindow
dicom, out, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
w = MainWindow(QSettings(os.path.join(out, "..", "s.ini"), QSettings.Format.IniFormat))
w.confirm_close = False
w.show()
names = {"nifti": "seg.nii.gz", "seg": "seg.dcm", "csv": "lesions.csv", "png": "view.png"}
order = list(names) * rounds
w.jobFailed.connect(lambda m: (print("FAILED", m, flush=True), app.exit(3)))

def next_export():
    if w.jobs.busy:
        QTimer.singleShot(10, next_export)
        return
    if not order:
        app.quit()
        return
    kind = order.pop(0)
    w.exports.export(kind, os.path.join(out, names[kind]), force=True)
    QTimer.singleShot(10, next_export)

def loaded():
    w.state.study.label = (w.state.study.hu > 100).astype(np.uint8) + (w.state.study.hu > 300)
    QTimer.singleShot(0, next_export)

w.studyLoaded.connect(loaded)
w.files.open_path(dicom)
sys.exit(app.exec())
"""




def test_kill_9_during_the_gui_exports_then_rerun(source, tmp_path):
    """The app's own exports (NIfTI, DICOM SEG, CSV, PNG, run in its worker threads) killed at random
    moments: each file under its final name is complete; the next session exports everything."""
    with zipfile.ZipFile(source / "phantom-s62-2" / "PATIENT_DICOM.zip") as z:
        z.extractall(tmp_path / "dicom")
    out = tmp_path / "out"
    out.mkdir()
    dicom = str(tmp_path / "dicom" / "PATIENT_DICOM")
    rng = random.Random(17)
    for _ in range(KILLS["gui-export"]):
        p = subprocess.Popen([sys.executable, "-c", GUI_EXPORTS, dicom, str(out), "1000"], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _kill_at(p, rng.uniform(2.0, 8.0))
        _check_outputs(out)
    r = subprocess.run([sys.executable, "-c", GUI_EXPORTS, dicom, str(out), "1"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, (r.stdout, r.stderr[-3000:])
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        ["lesions.csv", "seg.dcm", "seg.nii.gz", "view.png"]
    _check_outputs(out)


def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_gives_a_clear_error_and_no_partial_file(tmp_path, monkeypatch):
    case = Case("c1", np.zeros((2, 8, 8), np.int16), np.zeros((2, 8, 8), np.uint8), (1, 1, 1))
    monkeypatch.setattr("core.runtime.atomic.os.fsync", _enospc)
    with pytest.raises(DatasetError, match="No space left"):
        write_case(tmp_path / "ds", case)
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == []
    monkeypatch.setattr("core.io.export.os.fsync", _enospc)
    vol = Study(case.hu, case.spacing)  # a study with no source folder (a dataset case)
    with pytest.raises(ExportError, match="No space left"):
        write_nifti(tmp_path / "out" / "seg.nii.gz", case.label, vol)
    assert list((tmp_path / "out").iterdir()) == []


FULL_DISK = r"""
set -u
mount -t tmpfs -o size=3m tmpfs "$MNT" || exit 97
dd if=/dev/zero of="$MNT/filler" bs=1024 count=3068 status=none 2>/dev/null
"$PY" -m app import "$SRC" --out "$MNT/ds"; echo "import rc=$?"
"$PY" -m app predict "$DICOM" --liver-model "$LM" --out "$MNT/out/seg.nii.gz" --seg "$MNT/out/seg.dcm" \
    --lesions "$MNT/out/l.csv"; echo "predict rc=$?"
echo "LEFT:"; cd "$MNT" && find . -type f | sort
[ -d "$MNT/out" ] && cp -r "$MNT/out" "$KEEP/"
exit 0
"""


def test_a_real_full_filesystem(source, tmp_path):
    """A 3 MB filesystem with 4 kB free (a private tmpfs in a user namespace): import and predict fail
    with one line naming the problem and exit 2; whatever output is left under a final name is complete
    (nothing half-written, no temp files)."""
    import shutil
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("no user namespaces here (unshare -rm): cannot mount a small private filesystem")
    from tests.core.models import threshold_model
    with zipfile.ZipFile(source / "phantom-s63-3" / "PATIENT_DICOM.zip") as z:
        z.extractall(tmp_path / "dicom")
    lm = threshold_model(tmp_path / "l", "liver", 60)
    (tmp_path / "mnt").mkdir()
    (tmp_path / "keep").mkdir()
    env = dict(os.environ, MNT=str(tmp_path / "mnt"), KEEP=str(tmp_path / "keep"), PY=sys.executable,
               SRC=str(source / "phantom-s63-3"),
               DICOM=str(tmp_path / "dicom" / "PATIENT_DICOM"), LM=str(lm))
    r = subprocess.run(["unshare", "-rm", "sh", "-c", FULL_DISK], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    if r.returncode == 97:
        pytest.skip("mounting a tmpfs in a user namespace is not allowed here")
    out = r.stdout
    assert "import rc=2" in out and "predict rc=2" in out, (out, r.stderr[-3000:])
    left = out.split("LEFT:")[1].split()
    assert left[0] == "./filler" and set(left[1:]) <= {"./out/seg.nii.gz", "./out/seg.dcm", "./out/l.csv"}, out
    _check_outputs(tmp_path / "keep" / "out")  # what was written before the disk filled up is complete
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("No space left on device" in e for e in errors), r.stderr[-3000:]
    print("left on the full filesystem:", left, errors)
    assert "Traceback" not in r.stderr


def test_unwritable_location(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    case = Case("c1", np.zeros((2, 8, 8), np.int16), np.zeros((2, 8, 8), np.uint8), (1, 1, 1))
    with pytest.raises(DatasetError, match="cannot create the dataset folder"):
        write_case(blocker / "ds", case)
    vol = Study(case.hu, case.spacing)  # a study with no source folder (a dataset case)
    with pytest.raises(ExportError, match="cannot create folder"):
        write_nifti(blocker / "x" / "seg.nii.gz", case.label, vol)
    r = subprocess.run([sys.executable, "-m", "app", "import", str(tmp_path / "nothing"), "--out", str(blocker)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
