"""Keeping the OpenGL driver's LLVM apart from TensorFlow's, so the 3D view survives the ML stack.

Mesa's drivers (llvmpipe: the software renderer of Xvfb, virtual machines and remote desktops;
radeonsi on AMD) compile shaders with the system's ``libLLVM``. TensorFlow loads its extension with
``RTLD_GLOBAL``, and its ``libtensorflow_framework.so.2`` exports a different LLVM under the same
symbol names. The driver is bound lazily, global scope first, so once TensorFlow is in the process
its calls into LLVM land in TensorFlow's copy and the first frame kills the process (SIGSEGV in
``llvm::FixedVectorType::get`` called from ``swrast_dri.so``). Creating the GL context before
importing TensorFlow does not help (the bindings are made at first call), but loading the driver
ourselves with ``RTLD_DEEPBIND`` before Qt does makes it resolve its symbols in its own dependencies
first; Mesa's later ``dlopen`` of that file returns the same, isolated library.

Which files are the driver is learnt in a child process that makes a GL context and lists what it
mapped (:func:`mapped_libraries`); :func:`llvm_users` keeps those linking ``libLLVM``, and
:func:`isolate` loads them here. Elsewhere (Windows, macOS: one namespace per library) there is
nothing to do.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterable

_HANDLES: dict = {}  # path -> the library we loaded (kept: unloading it would undo the isolation)


def mapped_libraries(maps: str = "/proc/self/maps") -> set:
    """The shared libraries mapped into this process (Linux; an empty set elsewhere)."""
    try:
        with open(maps, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return set()
    paths = (line.split(None, 5)[5] for line in lines if len(line.split(None, 5)) == 6)
    return {p for p in paths if p.startswith("/") and ".so" in os.path.basename(p)}


def needed(path: str) -> list:
    """The ``DT_NEEDED`` entries (sonames) of a 64-bit little-endian ELF library; [] for anything else."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return []
            shoff, = struct.unpack_from("<Q", head, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
            fh.seek(shoff)
            table = fh.read(shentsize * shnum)
            sections = [struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)]
            for _name, kind, _f, _a, off, size, link, *_ in sections:
                if kind != 6:  # SHT_DYNAMIC; its sh_link is the string table
                    continue
                fh.seek(off)
                dyn = fh.read(size)
                fh.seek(sections[link][4])
                strtab = fh.read(sections[link][5])
                out = []
                for tag, val in struct.iter_unpack("<qQ", dyn[: len(dyn) // 16 * 16]):
                    if tag == 0:
                        break
                    if tag == 1:  # DT_NEEDED
                        out.append(strtab[val: strtab.index(b"\0", val)].decode("utf-8", "replace"))
                return out
    except (OSError, ValueError, IndexError, struct.error):
        return []
    return []


def llvm_users(paths: Iterable[str]) -> list:
    """Those of ``paths`` that link a ``libLLVM`` (a Mesa driver), sorted."""
    return sorted(p for p in paths if any(n.startswith("libLLVM") for n in needed(p)))


def isolate(paths: Iterable[str]) -> str:
    """Load ``paths`` with ``RTLD_DEEPBIND`` (before the GL driver is first used here): "" when done or
    nothing is needed, else why not, in one line (the 3D view must then stay off)."""
    paths = [p for p in paths if p not in _HANDLES]
    if not paths:
        return ""
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    if not deepbind:
        return "this system's dynamic linker cannot keep the OpenGL driver's LLVM apart from TensorFlow's"
    early = sorted(set(paths) & mapped_libraries())
    if early:
        return f"the OpenGL driver {os.path.basename(early[0])} was loaded before it could be isolated"
    for p in paths:
        try:
            _HANDLES[p] = ctypes.CDLL(p, mode=os.RTLD_LAZY | os.RTLD_LOCAL | deepbind)
        except OSError as exc:
            return f"could not load the OpenGL driver {os.path.basename(p)} ({exc})"
    return ""
