"""The installer builds of tests/test_installer.py, started in the background.

Building the two Linux packages takes about nine minutes of one core, mostly PyInstaller's
single-threaded module analysis and gzip. When a session collects the installer tests, the builds
start right away (``tests/conftest.py``), one after the other, at a lower CPU priority, and fill
the time the other tests leave a core idle; the installer tests wait for their package.

Tests marked ``quiet`` measure the GUI's responsiveness, which a busy neighbour process disturbs:
they run at the end of the session and wait until the builds are finished.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("full", "lite")
TIMEOUT_S = 2400
NICE = 10


@dataclass
class Build:
    variant: str
    work: Path
    rc: int | None = None
    output: str = ""
    seconds: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def dist(self) -> Path:
        return self.work / "dist"


_builds: dict[str, Build] = {}
_procs: list[subprocess.Popen] = []
_lock = threading.Lock()
_top: Path | None = None
_stopping = threading.Event()


def wanted() -> bool:
    """Linux with PyInstaller installed: the only place the installer tests build anything."""
    if not sys.platform.startswith("linux"):
        return False
    import importlib.util
    return importlib.util.find_spec("PyInstaller") is not None


def _lower_priority() -> None:
    os.nice(NICE)


def _run(build: Build) -> None:
    t0 = time.perf_counter()
    cmd = [sys.executable, str(ROOT / "build_installer.py"), "--variant", build.variant,
           "--dist", str(build.dist), "--work", str(build.work / "build")]
    log = build.work / "build.log"
    try:
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_lower_priority)
            _procs.append(proc)
            try:
                build.rc = proc.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                build.rc = proc.wait()
                out.write(f"\nbuild_installer timed out after {TIMEOUT_S} s\n")
        build.output = log.read_text(errors="replace")
        if build.rc == 0:  # only the package is tested (and disk is finite)
            from build_installer import bundle_name
            shutil.rmtree(build.dist / bundle_name(build.variant), ignore_errors=True)
            shutil.rmtree(build.work / "build", ignore_errors=True)
    except Exception as e:  # noqa: BLE001 - reported by the test that waits for this build
        build.rc = -1 if build.rc is None else build.rc
        build.output += f"\n{type(e).__name__}: {e}"
    finally:
        build.seconds = time.perf_counter() - t0
        build.done.set()


def _run_all(builds: list[Build]) -> None:
    for build in builds:
        if _stopping.is_set():
            build.rc, build.output = -1, "the session ended before this build started"
            build.done.set()
            continue
        _run(build)


def start(variants=VARIANTS) -> None:
    """Start the builds not started yet, in one background thread, in the order given."""
    global _top
    with _lock:
        todo = [v for v in variants if v not in _builds]
        if not todo:
            return
        if _top is None:
            _top = Path(tempfile.mkdtemp(prefix="liverseg-installer-"))
        builds = []
        for variant in todo:
            work = _top / variant
            work.mkdir()
            builds.append(Build(variant, work))
            _builds[variant] = builds[-1]
    threading.Thread(target=_run_all, args=(builds,), name="installer-builds", daemon=True).start()


def result(variant: str) -> Build:
    """The finished build of ``variant`` (started now if the session did not start it)."""
    start((variant,))
    build = _builds[variant]
    build.done.wait()
    return build


def wait_all() -> None:
    """Return once no build is running (there may be none)."""
    for build in list(_builds.values()):
        build.done.wait()


def stop() -> None:
    """End of session: stop what still runs and remove the build folders."""
    _stopping.set()
    for proc in _procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wait_all()
    if _top is not None:
        shutil.rmtree(_top, ignore_errors=True)
