"""The built-in demo study: a phantom patient with its reference masks.

Generated on first use and cached in the user's cache folder (platformdirs),
so later starts open it at once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import platformdirs

from ..datasets.dataset import Case, load_case, write_case
from ..runtime.errors import DatasetError
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from .phantom import make_phantom

log = logging.getLogger(__name__)
DEMO_ID = "demo-phantom-v1"
DEMO_SEED, DEMO_SLICES, DEMO_SIZE = 4, 80, 256


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("LiverSegStudio", appauthor=False)) / "demo"


def demo_case(folder: Path | None = None, progress: ProgressFn | None = None,
              cancel: CancelToken | None = None) -> Case:
    """The demo case (CT in HU and its reference labels), from the cache or generated."""
    folder = Path(folder) if folder else cache_dir()
    try:
        return load_case(folder, DEMO_ID)
    except DatasetError:
        pass
    report(progress, "demo", 0, 1, "generating the demo study")
    check(cancel)
    ph = make_phantom(DEMO_SEED, DEMO_SLICES, DEMO_SIZE)
    case = Case(DEMO_ID, ph.hu, ph.label, ph.spacing, ph.origin, np.eye(3),
                {"source": "synthetic phantom (demo)", "seed": DEMO_SEED})
    try:
        write_case(folder, case)
    except OSError as exc:  # a read-only cache is no reason to fail
        log.warning("demo study not cached: %s", exc)
    report(progress, "demo", 1, 1)
    return case
