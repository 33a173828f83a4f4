"""Keep the ML backends' C++ start-up lines off the terminal unless asked for.

Importing TensorFlow prints, straight to file descriptor 2 and before its logging is set
up (so ``TF_CPP_MIN_LOG_LEVEL`` cannot hold them back), lines such as
``cudart_stub.cc:31] Could not find cuda drivers`` and, at the first operation, ``E0000 ...
cuda_platform.cc:52] failed call to cuInit: ... UNKNOWN ERROR (303)`` on every machine without
an NVIDIA driver: they read like failures. :func:`install` puts a finder on ``sys.meta_path``
that runs the first import of TensorFlow, and its first device query, with descriptor 2
pointed at ``os.devnull``; Python exceptions still propagate (they are printed after the
descriptor is restored). ``LIVERSEG_DEBUG=1`` (``liverseg --verbose`` sets it) shows
everything. Whatever the backend, the result lines say which device ran (``CPU`` / ``GPU``).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import threading

QUIET_MODULES = ("tensorflow",)
_lock = threading.Lock()


def verbose() -> bool:
    return os.environ.get("LIVERSEG_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def silenced_stderr():
    """Point descriptor 2 at ``os.devnull`` for the block (no-op when verbose or without fd 2)."""
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner, name: str):
        self.inner, self.name = inner, name

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        with silenced_stderr():
            self.inner.exec_module(module)
            if self.name == "tensorflow":
                # The CUDA probe (and its cuInit error line) runs at the first device query.
                with contextlib.suppress(Exception):
                    module.config.list_physical_devices("GPU")

    def __getattr__(self, item):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self.inner, item)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self._busy: set[str] = set()

    def find_spec(self, fullname, path, target=None):
        if fullname not in QUIET_MODULES or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader, fullname)
        return spec


def install() -> None:
    """Add the quiet finder once (idempotent); does nothing for modules already imported."""
    with _lock:
        if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _QuietFinder())
