"""What the int8 check and race decided for a model on this computer, kept across processes.

:class:`core.inference.engines.ort.OrtRunner` checks an int8 model against its fp32 model on the
first study it runs and times the two on its first batches (int8 disagrees on x86 CPUs without
VNNI and is not faster on some). Both need the fp32 session opened beside the int8 one and the
check's batch run twice: about 0.6 s of a 3-3.6 s ``liverseg predict`` of patient 17 on a 2-core CPU,
paid by every process. The verdict depends only on the two model files, this CPU and the ONNX
Runtime version, so it is kept in the user's cache folder (``engines.json``) under a key made of
those, and later processes open only the model that won. A changed model file, another CPU or
another ONNX Runtime makes another key (checked afresh); a race verdict is re-measured after
:data:`RACE_DAYS` days (a busy machine can mislead one race). Nothing here is needed for a
correct result: an unreadable or unwritable cache is the same as an empty one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path

import platformdirs

from ...runtime.atomic import cached_sha256, write_json

log = logging.getLogger(__name__)

VERDICTS_FILE = "engines.json"
INT8, DISAGREES, SLOWER = "int8", "int8 disagreed", "int8 not faster"  # what a verdict says
RACE_DAYS = 30
MAX_ENTRIES = 64  # oldest verdicts dropped beyond this (model versions come and go)


def verdicts_path() -> Path:
    """``engines.json`` in the user's cache folder."""
    return Path(platformdirs.user_cache_dir("LiverSegStudio", appauthor=False)) / VERDICTS_FILE


@functools.lru_cache(maxsize=1)
def machine_id() -> str:
    """This CPU and ONNX Runtime: what an int8 verdict depends on besides the files."""
    cpu = platform.processor() or ""
    try:  # Linux: platform.processor() is often only "x86_64"; the model name says the chip
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import onnxruntime
        ort = onnxruntime.__version__
    except ImportError:
        ort = "none"
    return f"{platform.system()} {platform.machine()} | {cpu} | {os.cpu_count()} cpus | onnxruntime {ort}"


def verdict_key(int8: str | os.PathLike, fp32: str | os.PathLike) -> str:
    """The key of a verdict: both files' contents and :func:`machine_id`.

    Raises:
        OSError: a file cannot be read.
    """
    parts = [machine_id()]
    parts += [cached_sha256(p) for p in (int8, fp32)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.info("%s unreadable (%s): int8 verdicts measured afresh", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def load_verdict(key: str, now: float | None = None) -> dict | None:
    """The stored verdict ({"verdict": one of INT8, DISAGREES, SLOWER, "seconds": [int8, fp32] or
    None, "disagreement": share or None, "time": epoch s}), or None (none, or a race verdict
    older than :data:`RACE_DAYS`)."""
    rec = _read(verdicts_path()).get(key)
    if not isinstance(rec, dict) or rec.get("verdict") not in (INT8, DISAGREES, SLOWER):
        return None
    age = (time.time() if now is None else now) - float(rec.get("time", 0))
    if rec["verdict"] != DISAGREES and age > RACE_DAYS * 86400:
        return None
    return rec


def save_verdict(key: str, verdict: str, *, seconds: tuple[float, float] | None = None,
                 disagreement: float | None = None, model: str = "") -> None:
    """Store a verdict (atomically; a failure is logged, never raised)."""
    path = verdicts_path()
    data = _read(path)
    data.pop(key, None)
    data[key] = {"verdict": verdict, "seconds": list(seconds) if seconds else None,
                 "disagreement": disagreement, "time": time.time(), "model": str(model),
                 "machine": machine_id()}
    while len(data) > MAX_ENTRIES:  # insertion order: the oldest first
        data.pop(next(iter(data)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, data)
    except OSError as exc:
        log.info("int8 verdict not kept (%s): %s", path, exc)
