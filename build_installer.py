"""Build the LiverSeg Studio download for the platform this runs on.

    python build_installer.py [--variant full|lite|cuda|torch|directml] [--dist DIR] [--work DIR] [--no-package]

1. PyInstaller makes a one-folder bundle ``dist/LiverSegStudio/`` (spec generated below): the
   ``liverseg`` executable (``liverseg.exe``; the same subcommands as the installed command,
   including ``liverseg selftest``), Qt's platform plugins, TensorFlow, ONNX Runtime, pydicom's
   decoder plugins (with the package metadata their entry points need) and ``resources/`` with
   the default (real-CT) and demo models. On Windows a second, windowed ``LiverSegStudio.exe`` opens the GUI without a
   console; on macOS the windowed app is ``LiverSeg Studio.app``.
2. The package for this platform:
   - Linux: ``dist/LiverSegStudio-<version>-linux-x86_64.tar.gz`` with the icon and, from
     ``installer/``, a ``.desktop`` file and ``install-desktop-entry.sh`` (adds the app to the desktop
     menu of this user);
   - Windows: an Inno Setup installer from ``installer/liverseg.iss`` when ``iscc`` is on the
     PATH, else ``LiverSegStudio-<version>-windows-x86_64.zip``;
   - macOS: ``LiverSegStudio-<version>-macos-<arch>.dmg`` (``hdiutil``).

Variants (``--variant``; install the packages into the build environment first, see
docs/INSTALLERS.md): ``full`` (default, also called ``cpu``: TensorFlow CPU + ONNX Runtime); ``lite``
(ONNX Runtime only: no TensorFlow, Keras, JAX, ONNX export or training; segments with the bundled
models' ONNX files; ``-lite`` in the package and folder names); ``cuda`` (Linux, built in an
environment with ``tensorflow[and-cuda]``: NVIDIA's CUDA wheels are bundled); ``torch`` (Windows GPU:
PyTorch with CUDA is bundled and made the default Keras backend); ``directml`` (Windows, any DirectX
12 GPU: ``onnxruntime-directml`` instead of ``onnxruntime``).

Kept lean: tests, JAX, PyTorch (except the torch variant), matplotlib, Tk, IPython, unused Qt modules
and TensorFlow's C++ headers are left out. The bundle size is printed at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import build_lite as lite  # the lite variant: its lists and slimming

ROOT = Path(__file__).resolve().parent
NAME = "LiverSegStudio"
EXE = "liverseg"
VARIANTS = ("cpu", "full", "lite", "cuda", "torch", "directml")  # full: another name for cpu

EXCLUDES = [
    "tests", "pytest", "_pytest", "pytestqt", "hypothesis", "IPython", "jupyter", "notebook",
    "matplotlib", "tkinter", "_tkinter", "PyQt5", "PyQt6", "PySide2", "sphinx", "jax", "jaxlib",
    "torch", "torchvision", "torchaudio", "pandas", "setuptools", "pip",
    # Qt modules the app does not use (PySide6's hooks would otherwise bring their plugins and QML)
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuick3D", "PySide6.QtPdf",
    "PySide6.QtPdfWidgets", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtDesigner", "PySide6.QtHelp",
    "PySide6.QtMultimedia", "PySide6.QtMultimediaWidgets", "PySide6.QtWebEngineCore",
    "PySide6.QtWebEngineWidgets", "PySide6.QtWebChannel", "PySide6.QtWebSockets", "PySide6.QtNetworkAuth",
    "PySide6.Qt3DCore", "PySide6.Qt3DRender", "PySide6.QtCharts", "PySide6.QtDataVisualization",
    "PySide6.QtBluetooth", "PySide6.QtPositioning", "PySide6.QtSerialPort", "PySide6.QtSensors",
    "PySide6.QtRemoteObjects", "PySide6.QtScxml", "PySide6.QtTextToSpeech", "PySide6.QtHttpServer",
    "PySide6.QtUiTools", "PySide6.QtConcurrent", "PySide6.QtDBus",
]
# Packages found through entry points or by name at run time: their submodules and metadata.
COLLECT_SUBMODULES = ["pydicom.pixels", "libjpeg", "openjpeg", "jpeg_ls", "pylibjpeg", "tf2onnx", "highdicom",
                      "keras.src.backend.tensorflow", "keras.src.export", "platformdirs"]
COLLECT_DATA = ["highdicom", "pydicom", "tf2onnx", "onnxruntime"]
COPY_METADATA = ["pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pyjpegls", "pydicom", "highdicom",
                 "keras", "tensorflow", "onnxruntime", "tf2onnx", "onnx", "numpy", "nibabel", "scikit-image"]
# Files not needed at run time, removed from the bundle (paths relative to its _internal folder);
# resources/training-labels is training material of the recipe (silver labels and their montages, 7 MB).
PRUNE = ["tensorflow/include", "tensorflow/lite/testing", "onnx/backend/test/data", "resources/training-labels"]

def variant_lists(variant: str) -> dict:
    """excludes, collect_submodules, collect_data and copy_metadata for a variant (pure: no checks)."""
    excludes = list(EXCLUDES)
    if variant == "torch":
        excludes.remove("torch")
    lists = {"excludes": excludes, "collect_submodules": list(COLLECT_SUBMODULES),
             "collect_data": list(COLLECT_DATA), "copy_metadata": list(COPY_METADATA)}
    if variant == "lite":
        lists = {k: [n for n in v if lite.keep(n)] for k, v in lists.items() if k != "excludes"}
        lists["excludes"] = excludes + [e for e in lite.EXCLUDES if e not in excludes]
    return lists


def suffix(variant: str) -> str:
    """The package name's suffix: none for the full (cpu) variant, else ``-<variant>``."""
    return "" if variant in ("cpu", "full") else f"-{variant}"


def bundle_name(variant: str) -> str:
    """The one-folder bundle (and the package's top folder, with the version): the lite one apart,
    so that it never lands in, or is unpacked over, a full installation."""
    return NAME + ("-lite" if variant == "lite" else "")


def version() -> str:
    text = (ROOT / "core" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def platform_tag() -> str:
    system = {"Linux": "linux", "Windows": "windows", "Darwin": "macos"}.get(platform.system(), platform.system())
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{machine}"


def check_variant(variant: str) -> dict:
    """:func:`variant_lists`; exits with a message when the variant's packages are missing."""
    need = {"cuda": ["nvidia"], "torch": ["torch"], "directml": ["onnxruntime"]}.get(variant, [])
    missing = [m for m in need if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"build_installer: variant {variant!r} needs {missing} installed in this environment "
                 "(see docs/INSTALLERS.md)")
    if variant == "directml":
        import onnxruntime
        if "DmlExecutionProvider" not in onnxruntime.get_available_providers():
            sys.exit("build_installer: variant 'directml' needs onnxruntime-directml (not onnxruntime)")
    return variant_lists(variant)


def make_icons(work: Path) -> dict:
    """The icon in the formats each platform wants, made from resources/icon.png."""
    from PIL import Image
    src = Image.open(ROOT / "resources" / "icon.png")
    out = {"png": ROOT / "resources" / "icon.png"}
    if sys.platform == "win32":
        out["exe"] = work / "liverseg.ico"
        src.save(out["exe"], sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    elif sys.platform == "darwin":
        out["exe"] = work / "liverseg.icns"
        src.save(out["exe"])
    return out


SPEC = """# Generated by build_installer.py; do not edit (edit build_installer.py instead).
from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

hidden, datas = [], [({resources!r}, "resources")]
for pkg in {collect_submodules!r}:
    try:
        hidden += collect_submodules(pkg)
    except Exception as exc:
        print("build_installer: cannot collect", pkg, exc)
for pkg in {collect_data!r}:
    datas += collect_data_files(pkg, excludes=["**/tests/**", "**/test/**"])
for dist in {copy_metadata!r}:
    try:
        datas += copy_metadata(dist)
    except Exception as exc:
        print("build_installer: no metadata for", dist, exc)

a = Analysis([{launcher!r}], pathex=[{root!r}], hiddenimports=hidden, datas=datas,
             excludes={excludes!r}, runtime_hooks=[{runtime_hook!r}], noarchive=False)
pyz = PYZ(a.pure)
exes = [EXE(pyz, a.scripts, [], exclude_binaries=True, name={exe!r}, console=True, icon={icon!r},
            upx=False, strip=False)]
if {windowed!r}:
    exes.append(EXE(pyz, a.scripts, [], exclude_binaries=True, name={app_name!r}, console=False,
                    icon={icon!r}, upx=False, strip=False))
coll = COLLECT(*exes, a.binaries, a.datas, upx=False, strip=False, name={name!r})
if {macos!r}:
    app = BUNDLE(coll, name="LiverSeg Studio.app", icon={icon!r}, bundle_identifier="org.liverseg.studio",
                 version={version!r}, info_plist={{"NSHighResolutionCapable": True}})
"""

RUNTIME_HOOK = """# Runs inside the bundle before the app: the variant's default Keras backend.
import os
os.environ.setdefault("LIVERSEG_BUNDLE_VARIANT", {variant!r})
if {variant!r} == "torch":
    os.environ.setdefault("LIVERSEG_DEFAULT_BACKEND", "torch")
"""

LAUNCHER = """import multiprocessing
import os
import sys

multiprocessing.freeze_support()
# The windowed Windows/macOS executables have no console: give print() and logging somewhere to go.
if sys.stdout is None:
    sys.stdout = open(os.devnull, "w")
if sys.stderr is None:
    sys.stderr = open(os.devnull, "w")
from app.cli import main  # noqa: E402

sys.exit(main())
"""


def write_spec(work: Path, variant: str, lists: dict, icons: dict) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    launcher = work / "liverseg_launcher.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    hook = work / "liverseg_runtime_hook.py"
    hook.write_text(RUNTIME_HOOK.format(variant=variant), encoding="utf-8")
    spec = work / "liverseg.spec"
    spec.write_text(SPEC.format(
        resources=str(ROOT / "resources"), collect_submodules=lists["collect_submodules"],
        collect_data=lists["collect_data"], copy_metadata=lists["copy_metadata"], launcher=str(launcher),
        root=str(ROOT), excludes=lists["excludes"], runtime_hook=str(hook), exe=EXE,
        icon=str(icons.get("exe")) if icons.get("exe") else None, windowed=sys.platform == "win32",
        app_name=NAME, name=bundle_name(variant), macos=sys.platform == "darwin",
        version=version()), encoding="utf-8")
    return spec


def run_pyinstaller(spec: Path, dist: Path, work: Path, variant: str) -> Path:
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           "--distpath", str(dist), "--workpath", str(work / "pyinstaller"), str(spec)]
    print("build_installer:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=str(work))
    bundle = dist / bundle_name(variant)
    for rel in PRUNE + (lite.PRUNE if variant == "lite" else []):
        for base in (bundle / "_internal", bundle):
            for path in base.glob(rel):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
    lite.slim(bundle) if variant == "lite" else strip_tensorflow(bundle)
    if sys.platform.startswith("linux"):
        check_xcb_bundled(bundle)
    return bundle


# Qt's X11 plugin needs these besides libxcb.so.1 and libX11 (which every X11 desktop has, and which
# PyInstaller rightly leaves to the system); many desktop installs lack some of them, so
# the bundle carries its own. PyInstaller copies them only when the build machine has them.
XCB_SYSTEM_ONLY = ("libEGL.so.1", "libfontconfig.so.1")


def xcb_libs_to_bundle() -> list[str]:
    from dev import QT_XCB_LIBS
    return [lib for lib in QT_XCB_LIBS if lib not in XCB_SYSTEM_ONLY]


def missing_xcb_libs(bundle: Path) -> list[str]:
    """The sonames of :func:`xcb_libs_to_bundle` that are not in the bundle's _internal folder."""
    internal = bundle / "_internal"
    return [lib for lib in xcb_libs_to_bundle() if not (internal / lib).exists()]


def check_xcb_bundled(bundle: Path) -> None:
    """Refuses a Linux bundle whose GUI would need X11 libraries from the user's machine."""
    missing = missing_xcb_libs(bundle)
    if missing:
        from dev import install_command
        sys.exit(f"build_installer: {bundle} lacks {', '.join(missing)} (Qt's X11 plugin needs them, and "
                 "users' machines often lack them): this build machine does not have them to bundle. "
                 f"Install them ({install_command(missing)}) and build again.")


def strip_tensorflow(bundle: Path) -> None:
    """TensorFlow's Linux libraries ship with their symbol tables (~220 MB): ``strip --strip-unneeded``
    keeps what the dynamic linker needs. Other libraries are left alone (PyInstaller's global strip
    is known to break some)."""
    strip = shutil.which("strip")
    if not sys.platform.startswith("linux") or strip is None:
        return
    for f in sorted((bundle / "_internal" / "tensorflow").rglob("*.so*")):
        if f.is_file() and not f.is_symlink():
            subprocess.run([strip, "--strip-unneeded", str(f)], check=False, capture_output=True)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


README = """LiverSeg Studio {version} ({tag}, variant {variant})

Run:        ./liverseg                 (the app; ./liverseg gui FOLDER opens a DICOM folder)
Check:      ./liverseg selftest        (headless: the default models on a generated phantom)
Commands:   ./liverseg --help
Menu entry: ./install-desktop-entry.sh

The default models (ircadb-liver, ircadb-tumor) are trained on 3D-IRCADb-01 (CC BY-NC-ND 4.0):
research use only, not for clinical decisions. The demo models are trained on synthetic data only.
On Linux the GUI needs an X11 desktop (or Xwayland); the XCB libraries Qt needs beyond libxcb and
libX11 are in the bundle.
"""
README_LITE = """
This is the lite edition: it segments with ONNX Runtime (the bundled models' ONNX files) and has no
TensorFlow or Keras. Training, the Keras engine and ONNX export are in the full package (the same
name without "-lite").
"""


def readme(variant: str) -> str:
    text = README.format(version=version(), tag=platform_tag(), variant=variant)
    return text + (README_LITE if variant == "lite" else "")


def _atomic_target(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    os.close(fd)
    return Path(tmp)


def package_linux(bundle: Path, dist: Path, variant: str, icons: dict) -> Path:
    top = f"{NAME}-{version()}" + ("-lite" if variant == "lite" else "")
    final = dist / f"{NAME}-{version()}-{platform_tag()}{suffix(variant)}.tar.gz"
    shutil.copy2(icons["png"], bundle / "liverseg.png")
    for name in ("liverseg-studio.desktop", "install-desktop-entry.sh"):  # the menu entry and its installer
        shutil.copyfile(ROOT / "installer" / name, bundle / name)
    (bundle / "install-desktop-entry.sh").chmod(0o755)
    (bundle / "README.txt").write_text(readme(variant), encoding="utf-8")
    tmp = _atomic_target(final)
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            tar.add(bundle, arcname=top)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return final


def package_windows(bundle: Path, dist: Path, variant: str, icons: dict) -> Path:
    (bundle / "README.txt").write_text(readme(variant).replace("./", ""), encoding="utf-8")
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    if iscc:
        base = f"{NAME}-{version()}-{platform_tag()}{suffix(variant)}-setup"
        subprocess.run([iscc, f"/DAppVersion={version()}", f"/DSourceDir={bundle}", f"/DOutputDir={dist}",
                        f"/DOutputBase={base}", f"/DIconFile={icons['exe']}", str(ROOT / "installer" / "liverseg.iss")],
                       check=True)
        return dist / f"{base}.exe"
    final = dist / f"{NAME}-{version()}-{platform_tag()}{suffix(variant)}.zip"
    tmp = _atomic_target(final)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(bundle.rglob("*")):
                z.write(f, Path(f"{bundle_name(variant)}-{version()}") / f.relative_to(bundle))
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return final


def package_macos(dist: Path, variant: str) -> Path:
    final = dist / f"{NAME}-{version()}-{platform_tag()}{suffix(variant)}.dmg"
    app = dist / "LiverSeg Studio.app"
    with tempfile.TemporaryDirectory(dir=dist) as stage:
        shutil.copytree(app, Path(stage) / app.name, symlinks=True)
        os.symlink("/Applications", Path(stage) / "Applications")
        tmp = dist / f".{final.name}.tmp.dmg"
        subprocess.run(["hdiutil", "create", "-volname", "LiverSeg Studio", "-srcfolder", stage, "-ov",
                        "-format", "UDZO", str(tmp)], check=True)
        os.replace(tmp, final)
    return final


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=VARIANTS, default="cpu")
    ap.add_argument("--dist", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    ap.add_argument("--work", default=str(ROOT / "build"), help="PyInstaller's work folder (default: build/)")
    ap.add_argument("--no-package", action="store_true", help="only the one-folder bundle")
    args = ap.parse_args(argv)
    variant = "cpu" if args.variant == "full" else args.variant
    if importlib.util.find_spec("PyInstaller") is None:
        sys.exit("build_installer: PyInstaller is not installed (pip install -e '.[build]')")
    t0 = time.perf_counter()
    dist, work = Path(args.dist).resolve(), Path(args.work).resolve()
    lists = check_variant(variant)
    work.mkdir(parents=True, exist_ok=True)
    icons = make_icons(work)
    spec = write_spec(work, variant, lists, icons)
    bundle = run_pyinstaller(spec, dist, work, variant)
    size = folder_size(bundle)
    print(f"build_installer: bundle {bundle} ({size / 1e6:.0f} MB, {time.perf_counter() - t0:.0f} s)", flush=True)
    if args.no_package:
        return 0
    if sys.platform.startswith("linux"):
        out = package_linux(bundle, dist, variant, icons)
    elif sys.platform == "win32":
        out = package_windows(bundle, dist, variant, icons)
    elif sys.platform == "darwin":
        out = package_macos(dist, variant)
    else:
        sys.exit(f"build_installer: no package format for {sys.platform}; the bundle is in {bundle}")
    print(f"build_installer: {out} ({out.stat().st_size / 1e6:.0f} MB; bundle {size / 1e6:.0f} MB; "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
