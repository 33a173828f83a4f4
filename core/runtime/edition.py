"""Which edition of LiverSeg Studio this is: full (Keras and TensorFlow: training, the Keras engine,
ONNX export) or lite (ONNX Runtime only: segmenting with models that have ONNX files).

Decided at run time from what is installed (``build_installer.py --variant lite`` leaves Keras
out), never from a setting, so a development environment without Keras behaves like the lite
bundle. Qt-free and cheap: nothing heavy is imported.
"""

from __future__ import annotations

import importlib.util
import sys

from .errors import LiverSegError

LITE_NAME = "LiverSeg Studio lite"
FULL_EDITION = ("the LiverSegStudio-<version>-<platform> package without \"-lite\" (or pip install "
                "liverseg-studio) adds training, the Keras engine and ONNX export")


def keras_available() -> bool:
    """True when Keras can be imported here (without importing it)."""
    if "keras" in sys.modules:  # imported already, or blocked (sys.modules["keras"] = None)
        return sys.modules["keras"] is not None
    try:
        return importlib.util.find_spec("keras") is not None
    except (ImportError, ValueError):
        return False


def pacs_available() -> bool:
    """True when the PACS libraries (pynetdicom, dicomweb-client) are here: the lite edition leaves
    them out with the TLS and keyring libraries they need, to stay under its size."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("pynetdicom", "dicomweb_client"))
    except (ImportError, ValueError):
        return False


def registration_available() -> bool:
    """True when SimpleITK (the follow-up comparison's registration, 270 MB) is here: the lite
    edition leaves it out to stay under its size."""
    try:
        return importlib.util.find_spec("SimpleITK") is not None
    except (ImportError, ValueError):
        return False


def require_registration() -> None:
    """Raise a one-line :class:`LiverSegError` when this edition cannot compare two studies."""
    if not registration_available():
        raise LiverSegError(not_in_edition("Comparing two studies (registration)"))


def require_pacs() -> None:
    """Raise a one-line :class:`LiverSegError` when this edition has no PACS support."""
    if not pacs_available():
        raise LiverSegError(not_in_edition("Working with a PACS (query, retrieve, send)"))


def edition() -> str:
    """"full" or "lite"."""
    return "full" if keras_available() else "lite"


def not_in_edition(what: str) -> str:
    """One line for a feature this edition lacks, with where to get the full edition."""
    return f"{what} is not in this edition ({LITE_NAME}). The full edition: {FULL_EDITION}."


def require_full(what: str) -> None:
    """Raise a one-line :class:`LiverSegError` when this is the lite edition.

    Args:
        what: the feature, e.g. "Training" or "liverseg export-onnx".
    """
    if not keras_available():
        raise LiverSegError(not_in_edition(what))


def onnx_only_error(folder: str, reason: str) -> str:
    """The refusal for a model that would need Keras here: names its folder and says why."""
    return (f"{folder}: {reason}: this edition ({LITE_NAME}) runs ONNX models only "
            f"(model.onnx / model.int8.onnx; the full edition's liverseg export-onnx makes them)")
