"""Coverage-guided fuzzing (atheris / libFuzzer) of the DICOM reader and the zip reader.

Complements the hypothesis tests: libFuzzer mutates the inputs guided by the code coverage of
``core.io.dicom`` and ``core.io.archive``. Each target runs a fixed number of inputs in a subprocess
with a per-input timeout (20 s) and a memory limit (2 GB peak RSS, checked by the harness); any exception other
than the typed one-line error is a crash and fails the test (the crashing input is kept for the report).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris is only installed on Linux x86-64 (pyproject test extra)")

from tests.core.factory import hu_volume, write_series  # noqa: E402

HARNESS = Path(__file__).with_name("atheris_harness.py")
RUNS = {"dicom": 3000, "zip": 20000}


def _fuzz(target: str, corpus: Path, tmp_path: Path, env_extra: dict) -> str:
    env = dict(os.environ, ATHERIS_WORK=str(tmp_path / "work"), **env_extra)
    (tmp_path / "work").mkdir()
    r = subprocess.run([sys.executable, str(HARNESS), target, str(corpus), f"-runs={RUNS[target]}",
                        "-max_total_time=240", "-timeout=20", "-rss_limit_mb=0", "-max_len=20000", "-seed=1",
                        f"-artifact_prefix={tmp_path}/"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    crashes = sorted(p.name for pat in ("crash-*", "timeout-*", "oom-*") for p in tmp_path.glob(pat))
    assert r.returncode == 0 and not crashes, (crashes, r.stderr[-4000:])
    done = re.search(r"Done (\d+) runs", r.stderr)
    assert done and int(done.group(1)) >= RUNS[target] * 0.9, r.stderr[-2000:]
    return done.group(1)


def test_atheris_dicom_reader(tmp_path):
    valid = tmp_path / "valid"
    files = write_series(valid, hu_volume(3, 24), shuffle_names=False)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in files:
        (corpus / f.name).write_bytes(f.read_bytes())
    (corpus / "empty").write_bytes(b"")
    n = _fuzz("dicom", corpus, tmp_path, {"ATHERIS_VALID_DIR": str(valid)})
    print(f"atheris dicom: {n} inputs")


def test_atheris_zip_reader(tmp_path):
    files = write_series(tmp_path / "dcm", hu_volume(2, 16), shuffle_names=False)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("liver/image_0", files[0].read_bytes())
    with zipfile.ZipFile(corpus / "nested.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("PATIENT_DICOM/image_0", files[0].read_bytes())
        z.writestr("MASKS_DICOM.zip", inner.getvalue())
    with zipfile.ZipFile(corpus / "stored.zip", "w", zipfile.ZIP_STORED) as z:
        z.writestr("a/b", b"x" * 100)
    n = _fuzz("zip", corpus, tmp_path, {})
    print(f"atheris zip: {n} inputs")
