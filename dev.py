#!/usr/bin/env python3
"""Set-up and run, on a fresh machine with Python 3.10+:

    python3 dev.py app [ARGS...]    run LiverSeg Studio (the demo study when no data is given)
    python3 dev.py test [ARGS...]   run the test suite (ARGS go to pytest)

Both create the virtual environment ``.venv/`` at the repository root on
first use, install the project into it (again only when pyproject.toml
changes), and reuse it afterwards.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".liverseg-installed"


def ensure_venv() -> None:
    if not PY.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != want:
        print("installing LiverSeg Studio and its dependencies into .venv ...", flush=True)
        subprocess.check_call([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        subprocess.check_call([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"])
        STAMP.write_text(want)


# Qt 6.5+'s xcb platform plugin (the X11 window system) needs these; many desktop installs lack
# some (libxcb-cursor0 most often), and Qt then stops with "Could not load the Qt platform plugin
# xcb". soname -> (Debian/Ubuntu package, Fedora/RHEL package).
QT_XCB_LIBS = {
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
}


def missing_from_ldd(ldd_output: str) -> list[str]:
    """Sonames ``ldd`` reports as "not found"."""
    return sorted({line.split()[0] for line in ldd_output.splitlines() if "not found" in line and line.split()})


def missing_from_ldconfig(ldconfig_output: str) -> list[str]:
    """The sonames of QT_XCB_LIBS absent from ``ldconfig -p``'s list."""
    have = {line.split()[0] for line in ldconfig_output.splitlines()[1:] if line.split()}
    return [lib for lib in QT_XCB_LIBS if lib not in have]


def missing_qt_libs() -> list[str]:
    """Libraries Qt's xcb platform plugin needs and the dynamic linker cannot find (Linux only).

    Asks ``ldd`` about the plugin PySide6 installed in .venv (the truth, transitive libraries
    included); without it, checks QT_XCB_LIBS against ``ldconfig -p``; [] when neither can tell.
    """
    if not sys.platform.startswith("linux"):
        return []
    plugin = sorted(VENV.glob("lib/python3*/site-packages/PySide6/Qt/plugins/platforms/libqxcb.so"))
    for cmd, parse in ((["ldd", str(plugin[-1])] if plugin else None, missing_from_ldd),
                       (["ldconfig", "-p"], missing_from_ldconfig), (["/sbin/ldconfig", "-p"], missing_from_ldconfig)):
        if cmd is None:
            continue
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout:
            return parse(out.stdout)
    return []


def install_command(missing: list[str], os_release: str | None = None) -> str:
    """The one command that installs ``missing`` on this distribution (apt or dnf)."""
    if os_release is None:
        try:
            os_release = Path("/etc/os-release").read_text()
        except OSError:
            os_release = ""
    ids = set()
    for line in os_release.splitlines():
        if line.startswith(("ID=", "ID_LIKE=")):
            ids.update(line.split("=", 1)[1].strip().strip('"').lower().split())
    rpm = bool(ids & {"fedora", "rhel", "centos", "rocky", "almalinux"})
    pkgs = sorted({QT_XCB_LIBS[lib][1 if rpm else 0] if lib in QT_XCB_LIBS else lib for lib in missing})
    sudo = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
    return sudo + ("dnf install -y " if rpm else "apt-get install -y ") + " ".join(pkgs)


def check_qt_platform(env: dict) -> str:
    """A message naming the missing X11 libraries and the command to install them, or ""."""
    if not sys.platform.startswith("linux") or env.get("QT_QPA_PLATFORM", "xcb") not in ("xcb", ""):
        return ""
    missing = missing_qt_libs()
    if not missing:
        return ""
    return ("LiverSeg Studio's window needs system libraries this machine lacks (Qt's X11 platform "
            f"plugin): {', '.join(missing)}.\nInstall them with:\n\n    {install_command(missing)}\n\n"
            "then run `python3 dev.py app` again (QT_QPA_PLATFORM=offscreen runs without a window).")


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "app"
    rest = sys.argv[2:]
    if cmd not in ("app", "test"):
        print(__doc__)
        return 2
    ensure_venv()
    env = dict(os.environ)
    if cmd == "test":
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT, env=env)
    problem = check_qt_platform(env)
    if problem:
        print(problem, file=sys.stderr)
        return 3
    return subprocess.call([str(PY), "-m", "app", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
