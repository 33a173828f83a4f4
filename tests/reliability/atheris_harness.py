"""Coverage-guided fuzzing with atheris (libFuzzer) of the DICOM reader and the zip reader.

Run by tests/reliability/test_atheris.py in a subprocess:

    python tests/reliability/atheris_harness.py dicom|zip CORPUS_DIR -runs=N -max_total_time=S ...

dicom: each input is written as one slice of a folder that also holds two valid slices of the
       same series, then ``scan`` and ``load_series`` run; the only allowed exception is DicomError
       (one line), and a loaded volume must be int16 [Z, Y, X] of bounded size.
zip:   each input is opened with ``SafeZip`` and every member read with a size limit (nested
       archives opened too); the only allowed exception is ArchiveError (one line).
Anything else is a crash: libFuzzer writes the input to ``crash-*`` and exits non-zero.

Memory: libFuzzer's ``-rss_limit_mb`` reads ``ru_maxrss``, which a child inherits from the process
that forked it (pytest, gigabytes by then); the harness therefore checks its own peak (VmHWM in
/proc/self/status) after every input and fails above ``ATHERIS_MAX_MB`` (default 2048).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# Coverage of our readers and of pydicom guides the fuzzer; numpy, PIL, requests... would only slow
# the start (instrumenting them took about 25 s of each run) without adding paths worth mutating.
with atheris.instrument_imports(include=["core", "pydicom"]):
    from core.io.archive import SafeZip
    from core.io.dicom import DicomError, load_series, scan
    from core.runtime.errors import ArchiveError

import numpy as np  # noqa: E402

TARGET = sys.argv[1]
WORK = Path(os.environ.get("ATHERIS_WORK") or tempfile.mkdtemp(prefix="atheris-"))
VALID = sorted(Path(os.environ["ATHERIS_VALID_DIR"]).iterdir()) if "ATHERIS_VALID_DIR" in os.environ else []


MAX_MB = float(os.environ.get("ATHERIS_MAX_MB", "2048"))


def check_memory() -> None:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                mb = int(line.split()[1]) / 1024
                if mb > MAX_MB:
                    raise MemoryError(f"peak RSS {mb:.0f} MB > {MAX_MB:.0f} MB after this input")
                return


def _case_folder() -> Path:
    """The folder each input is read in: the two valid slices, copied once (the reader never writes)."""
    folder = WORK / "case"
    if not folder.is_dir():
        folder.mkdir()
        for i, f in enumerate(VALID[:2]):
            shutil.copyfile(f, folder / f"valid{i}.dcm")
    return folder


def one_dicom(data: bytes) -> None:
    folder = _case_folder()
    (folder / "fuzzed.dcm").write_bytes(data)
    try:
        scan(folder)
        v = load_series(folder)
    except DicomError as exc:
        if "\n" in str(exc):
            raise AssertionError(f"multi-line error: {exc!r}") from exc
        check_memory()
        return
    if v.hu.dtype != np.int16 or v.hu.ndim != 3 or v.hu.size > 8 * 1024 * 1024:
        raise AssertionError(f"unexpected volume {v.hu.dtype} {v.hu.shape}")
    check_memory()


def one_zip(data: bytes) -> None:
    try:
        z = SafeZip(data, "fuzzed.zip")
        for info in z.zf.infolist():
            body = z.read(info, limit=16 * 1024 * 1024)
            if info.filename.lower().endswith(".zip"):
                inner = z.open_inner(info)
                for i2 in inner.zf.infolist():
                    inner.read(i2, limit=16 * 1024 * 1024)
            del body
        z.close()
    except ArchiveError as exc:
        if "\n" in str(exc):
            raise AssertionError(f"multi-line error: {exc!r}") from exc
    check_memory()


if __name__ == "__main__":
    atheris.Setup(sys.argv[:1] + sys.argv[2:], one_dicom if TARGET == "dicom" else one_zip)
    atheris.Fuzz()  # libFuzzer exits the process: 0 when the runs are done, non-zero on a crash
