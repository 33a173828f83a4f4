"""The lite variant of the bundle (``build_installer.py --variant lite``): ONNX Runtime only.

What it leaves out (:data:`EXCLUDES`), removes after PyInstaller (:data:`PRUNE`) and how it slims
the rest (:func:`slim`: symbol tables, identical vendored libraries, pretty-printed JSON). Every
exclusion was checked against what the GUI, ``predict`` and ``selftest`` import (``python -X
importtime``); ``tests/test_installer.py`` runs the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Only training, the Keras engine and ONNX export need these; ONNX Runtime needs none of them.
TRAINING_PACKAGES = ("tensorflow", "keras", "jax", "tf2onnx", "onnx", "torch", "h5py")
EXCLUDES = [
    *TRAINING_PACKAGES, "jaxlib", "tensorflow_io_gcs_filesystem", "tensorboard", "tensorboard_data_server",
    "ml_dtypes", "optree", "namex", "absl", "sympy", "mpmath", "flatbuffers",
    # nothing in the app imports them (scipy.spatial is not needed since core.evaluation.metrics finds
    # diameters without it; scipy.ndimage needs only scipy.special)
    "PySide6.QtNetwork", "pyqtgraph.opengl", "sqlite3", "ssl", "_ssl", "_hashlib",  # hashlib has its own sha256
    "scipy.optimize", "scipy.io", "scipy.stats", "scipy.integrate", "scipy.interpolate", "scipy.signal",
    "scipy.fft", "scipy.fftpack", "scipy.cluster", "scipy.odr", "scipy.datasets", "scipy.misc",
    "scipy.differentiate", "scipy.spatial", "scipy.linalg", "scipy.sparse",
    # the project's training-only modules (liverseg train / export-onnx refuse before importing them)
    "core.training.trainer", "core.training.recipe", "core.training.callbacks", "core.training.threshold",
    "core.training.loader", "core.training.onnx_export", "core.training.quantize", "core.transforms.augment",
    "core.synthetic.lesion_synth", "core.model.resunet", "core.model.losses",
    # the 3D view's surfaces: pyqtgraph.opengl is left out above, so the 3D tab never imports them, and
    # skimage.measure would bring 16 MB of scikit-image with it
    "core.study.surfaces",
    # the PACS stack: pynetdicom and dicomweb-client need ssl and sqlite3 (left out above), keyring's
    # Secret Service backend brings 11 MB of cryptography; the lite edition says in one line that it has
    # no PACS (core.runtime.edition.require_pacs)
    "pynetdicom", "dicomweb_client", "keyring", "secretstorage", "cryptography", "jeepney", "cffi",
    "_cffi_backend", "pycparser", "core.pacs.dimse", "core.pacs.dicomweb",
    # the follow-up comparison's registration: SimpleITK is 270 MB; the lite edition says in one line
    # that it cannot compare studies (core.runtime.edition.require_registration)
    "SimpleITK",
]
# Removed after the build (globs under _internal): Qt's translations (the app is in English), ONNX
# Runtime's C API library (the Python module has the runtime built in and never loads it), Pillow's
# AVIF codec (optional in Pillow), and the bundled models' Keras files (ONNX Runtime runs the ONNX
# files beside them; core.model.io.onnx_only_folder).
PRUNE = ["PySide6/Qt/translations", "onnxruntime/capi/libonnxruntime.so*", "PIL/_avif*.so",
         "pillow.libs/libavif*", "resources/models/*/model.keras",
         # Qt plugins for embedded Linux and the network (the desktop uses xcb or wayland) and the GTK
         # theme (its GTK, cairo and pango libraries go with it: see drop_orphans)
         *(f"PySide6/Qt/plugins/{p}" for p in (
             "platformthemes/libqgtk3.so", "platforms/libqvnc.so", "platforms/libqlinuxfb.so",
             "platforms/libqeglfs.so", "platforms/libqminimalegl.so", "platforms/libqvkkhrdisplay.so",
             "egldeviceintegrations", "generic", "networkinformation", "tls"))]


def keep(name: str) -> bool:
    """False for a module, package or distribution name that belongs to the training stack."""
    return name.replace("-", "_").split(".")[0] not in TRAINING_PACKAGES


def slim(bundle: Path) -> None:
    """Strip the libraries' symbol tables (not the wheels' vendored ``*.libs``, which patchelf
    rewrote), turn identical vendored libraries into links, and compact highdicom's JSON tables."""
    internal = bundle / "_internal"
    strip = shutil.which("strip")
    if sys.platform.startswith("linux") and strip:
        for f in sorted(internal.rglob("*.so*")):
            if f.is_file() and not f.is_symlink() and not any(p.endswith(".libs") for p in f.parts):
                subprocess.run([strip, "--strip-unneeded", str(f)], check=False, capture_output=True)
    if os.name == "posix":
        seen: dict[tuple[int, str], Path] = {}
        for f in sorted(internal.glob("*.libs/*")):
            if f.is_file() and not f.is_symlink():
                key = (f.stat().st_size, hashlib.sha256(f.read_bytes()).hexdigest())
                if key in seen:
                    f.unlink()
                    f.symlink_to(os.path.relpath(seen[key], f.parent))
                else:
                    seen[key] = f
    drop_orphans(internal)
    for f in sorted((internal / "highdicom" / "_standard").glob("*.json")):
        f.write_text(json.dumps(json.loads(f.read_text(encoding="utf-8")), separators=(",", ":")),
                     encoding="utf-8")


def _needed(f: Path) -> set[str]:
    out = subprocess.run(["readelf", "-d", str(f)], capture_output=True, text=True).stdout
    return {line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}


def drop_orphans(internal: Path) -> None:
    """Remove shared libraries that PyInstaller collected as dependencies of something pruned since
    (the GTK theme plugin: GTK, cairo, pango, ...): top-level or Qt libraries no remaining file needs.
    Python extension modules and Qt plugins are roots (they are loaded by name, not linked)."""
    if not sys.platform.startswith("linux") or shutil.which("readelf") is None:
        return
    qtlib = internal / "PySide6" / "Qt" / "lib"
    while True:
        files = [f for f in internal.rglob("*.so*") if f.is_file() and not f.is_symlink()]
        needed = set().union(*(_needed(f) for f in files))
        orphans = [f for f in files if f.parent in (internal, qtlib) and f.name.startswith("lib")
                   and f.name not in needed and not f.name.startswith("libpython")]
        if not orphans:
            return
        for f in orphans:
            f.unlink()
            for link in (internal / f.name, qtlib / f.name):
                if link.is_symlink() and not link.exists():
                    link.unlink()
