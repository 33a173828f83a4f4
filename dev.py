#!/usr/bin/env python3
"""Set-up and run, on a fresh machine with Python 3.10+:

    python3 dev.py app [ARGS...]    run LiverSeg Studio (the demo study when no data is given)
    python3 dev.py test [ARGS...]   run the test suite (ARGS go to pytest)

Both create the virtual environment ``.venv/`` at the repository root on
first use, install the project into it (again only when pyproject.toml
changes), and reuse it afterwards. ``test`` also installs what the tests
need beyond Python's packages (:func:`ensure_test_system`): the system
packages through apt-get or dnf where it may (as root, or with a sudo that
asks no password), else it prints the one command to run; and PyTorch.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".liverseg-installed"
TORCH = "torch==2.13.0"  # the backend-equivalence test's PyTorch (tests/core/model/test_backends.py)
NO_TORCH = VENV / ".torch-unavailable"  # pip could not install TORCH here: not tried again on every run


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, so it is whole or absent."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def ensure_venv() -> None:
    if not PY.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != want:
        print("installing LiverSeg Studio and its dependencies into .venv ...", flush=True)
        subprocess.check_call([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        subprocess.check_call([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"])
        write_atomic(STAMP, want)


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


def is_rpm_distribution(os_release: str | None = None) -> bool:
    """Whether /etc/os-release (or ``os_release``) names a Fedora/RHEL-like distribution (dnf)."""
    if os_release is None:
        try:
            os_release = Path("/etc/os-release").read_text()
        except OSError:
            os_release = ""
    ids = set()
    for line in os_release.splitlines():
        if line.startswith(("ID=", "ID_LIKE=")):
            ids.update(line.split("=", 1)[1].strip().strip('"').lower().split())
    return bool(ids & {"fedora", "rhel", "centos", "rocky", "almalinux"})


def install_command(missing: list[str], os_release: str | None = None) -> str:
    """The one command that installs ``missing`` on this distribution (apt or dnf)."""
    rpm = is_rpm_distribution(os_release)
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

# -- what the tests need beyond Python's packages ----------------------------------------------------

# (Debian package, Fedora package, what shows it is installed: "lib:SONAME" in the dynamic linker's
# cache, "cmd:NAME" on PATH, or a file glob; any one suffices). Every QT_XCB_LIBS package is wanted too:
# the installer test bundles them from this machine.
TEST_PACKAGES = (
    ("libegl1", "libglvnd-egl", ("lib:libEGL.so.1",)),  # Qt loads these even offscreen
    ("libgl1", "libglvnd-glx", ("lib:libGL.so.1",)),
    ("libxkbcommon0", "libxkbcommon", ("lib:libxkbcommon.so.0",)),
    ("libfontconfig1", "fontconfig", ("lib:libfontconfig.so.1",)),
    ("libdbus-1-3", "dbus-libs", ("lib:libdbus-1.so.3",)),
    ("poppler-utils", "poppler-utils", ("cmd:pdftoppm",)),  # the PDF report's test renders every page
    # Mesa's software OpenGL and a real X server: the 3D view's test, the packaged app's start
    ("libgl1-mesa-dri", "mesa-dri-drivers", ("/usr/lib/*/dri/swrast_dri.so", "/usr/lib64/dri/swrast_dri.so")),
    ("xvfb", "xorg-x11-server-Xvfb", ("cmd:Xvfb",)),
    # the PACS tests run against a private Orthanc on loopback (tests/pacs_server.py)
    ("orthanc", "orthanc", ("cmd:Orthanc", "/usr/sbin/Orthanc")),
    ("orthanc-dicomweb", "orthanc-dicomweb", ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",)),
)
SETUP_ENV = "LIVERSEG_SYSTEM_SETUP"  # the install command dev.py could not run, for the tests' skip reasons


def system_probe():
    """``have(probe)`` for TEST_PACKAGES' probes, reading the linker's cache once (libraries count
    as present when ``ldconfig`` cannot tell)."""
    libs = None
    for cmd in (["ldconfig", "-p"], ["/sbin/ldconfig", "-p"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout:
            libs = {line.split()[0] for line in out.stdout.splitlines()[1:] if line.split()}
            break

    def have(probe: str) -> bool:
        kind, _, name = probe.partition(":")
        if kind == "lib":
            return libs is None or name in libs
        if kind == "cmd":
            return shutil.which(name) is not None
        return bool(glob.glob(probe))
    return have


def missing_test_packages(have, rpm: bool = False) -> list[str]:
    """The system packages (Debian's names, or Fedora's with ``rpm``) whose probes ``have`` denies."""
    wanted = list(TEST_PACKAGES) + [(deb, fed, ("lib:" + so,)) for so, (deb, fed) in QT_XCB_LIBS.items()]
    return sorted({entry[1 if rpm else 0] for entry in wanted if not any(have(p) for p in entry[2])})


def install_plan(packages: list[str], rpm: bool, euid: int, sudo_ok: bool) -> tuple[list[list[list[str]]], str]:
    """How dev.py installs ``packages``: (attempts, line). Each attempt is commands run in turn; the
    first attempt whose commands all succeed ends it (apt-get installs first and updates its lists only
    when that fails). No attempts when dev.py may not install: not root, and sudo would ask a password.
    ``line`` is the one command a person runs instead."""
    manager = ["dnf", "install", "-y"] if rpm else ["apt-get", "install", "-y", "-qq"]
    line = ("" if euid == 0 else "sudo ") + " ".join(manager[:3]) + " " + " ".join(packages)
    if euid != 0 and not sudo_ok:
        return [], line
    prefix = [] if euid == 0 else ["sudo", "-n"]
    install = prefix + manager + packages
    if rpm:
        return [[install]], line
    return [[install], [prefix + ["apt-get", "update", "-qq"], install]], line


def sudo_without_password() -> bool:
    """Whether ``sudo -n`` runs a command here (a password-less sudo; never prompts)."""
    if shutil.which("sudo") is None:
        return False
    try:
        return subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def ensure_system_packages(have=None, euid: int | None = None, sudo_ok=None, run=subprocess.run,
                           rpm: bool | None = None) -> str:
    """Install the tests' missing system packages where dev.py may (Linux, apt-get or dnf).

    Probes only when everything is present (no package manager runs). Returns "" when nothing is
    missing afterwards, else the one line it printed naming the command to run (the tests needing
    those packages skip, or fail under CI). ``have``, ``euid``, ``sudo_ok``, ``run``, ``rpm``: the
    probe, the user id, :func:`sudo_without_password`, ``subprocess.run`` and the distribution,
    replaceable for tests.
    """
    if not sys.platform.startswith("linux"):
        return ""
    rpm = is_rpm_distribution() if rpm is None else rpm
    missing = missing_test_packages(have or system_probe(), rpm)
    if not missing:
        return ""
    euid = os.geteuid() if euid is None else euid
    ok = (sudo_ok if sudo_ok is not None else sudo_without_password)() if euid != 0 else False
    attempts, line = install_plan(missing, rpm, euid, ok)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if attempts:
        print(f"installing the tests' system packages: {' '.join(missing)} ...", flush=True)
    for commands in attempts:
        if all(_ran(run, cmd, env) for cmd in commands):
            still = missing_test_packages(have or system_probe(), rpm)
            if not still:
                return ""
            line = install_plan(still, rpm, euid, ok)[1]
            break
    why = "could not install them" if attempts else "not root, and sudo -n is not allowed"
    line = f"dev.py test: system packages missing ({why}); their tests skip until you run: {line}"
    print(line, flush=True)
    return line


def _ran(run, cmd: list[str], env: dict) -> bool:
    try:
        return run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def torch_installed() -> bool:
    return any(VENV.glob("lib/python3*/site-packages/torch/__init__.py")) or \
        (VENV / "Lib" / "site-packages" / "torch" / "__init__.py").is_file()


def ensure_torch(run=subprocess.run) -> str:
    """Install TORCH into .venv when it is absent; "" when there, else the one line it printed.

    A failed install leaves NO_TORCH behind, so later runs do not try (and wait) again."""
    if torch_installed():
        return ""
    line = (f"dev.py test: {TORCH} is not installable here (pip failed): the TensorFlow/PyTorch equivalence "
            f"test skips; remove {NO_TORCH} to try again")
    if not NO_TORCH.exists():
        print(f"installing {TORCH} into .venv (the backend-equivalence test) ...", flush=True)
        if _ran(run, [str(PY), "-m", "pip", "install", "--quiet", TORCH], dict(os.environ)):
            return ""
        write_atomic(NO_TORCH, TORCH + "\n")
    print(line, flush=True)
    return line


def ensure_test_system() -> dict:
    """Set up what the tests need beyond .venv's packages: the system packages, then PyTorch.

    Returns the environment the tests run with: SETUP_ENV names the install command still to run."""
    env = dict(os.environ)
    line = ensure_system_packages()
    if line:
        env[SETUP_ENV] = line.rsplit("run: ", 1)[-1]
    ensure_torch()
    return env


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "app"
    rest = sys.argv[2:]
    if cmd not in ("app", "test"):
        print(__doc__)
        return 2
    ensure_venv()
    env = dict(os.environ)
    if cmd == "test":
        env = ensure_test_system()
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT, env=env)
    problem = check_qt_platform(env)
    if problem:
        print(problem, file=sys.stderr)
        return 3
    return subprocess.call([str(PY), "-m", "app", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
