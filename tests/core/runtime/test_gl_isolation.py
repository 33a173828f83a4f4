"""Finding the OpenGL driver libraries that link LLVM, and loading them isolated (RTLD_DEEPBIND)."""

from __future__ import annotations

import ctypes.util
import os
import sys

import pytest

from core.runtime import gl_isolation as gi

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF libraries and /proc/self/maps: Linux")


@linux
def test_needed_reads_the_sonames_a_library_links():
    libm = next(p for p in gi.mapped_libraries() if os.path.basename(p).startswith(("libm.so", "libm-")))
    assert any(n.startswith("libc.so") for n in gi.needed(libm))
    assert gi.llvm_users([libm]) == []


def test_anything_but_an_elf_library_has_no_needed_entries(tmp_path):
    (tmp_path / "x.so").write_bytes(b"\x7fELF" + b"\0" * 10)  # truncated
    (tmp_path / "y.so").write_text("not a library")
    assert gi.needed(str(tmp_path / "x.so")) == gi.needed(str(tmp_path / "y.so")) == []
    assert gi.needed(str(tmp_path / "missing.so")) == []


def test_mapped_libraries_parses_proc_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/libfoo.so.1\n"
                    "7f01-7f02 rw-p 00000000 00:00 0 \n"
                    "7f02-7f03 r--p 00000000 08:01 2 /usr/lib/locale/locale-archive\n"
                    "7f03-7f04 r--p 00000000 00:00 0 [heap]\n")
    assert gi.mapped_libraries(str(maps)) == {"/usr/lib/libfoo.so.1"}
    assert gi.mapped_libraries(str(tmp_path / "none")) == set()


@linux
def test_isolate_loads_a_library_once_and_refuses_one_already_loaded():
    assert gi.isolate([]) == ""
    loaded = gi.mapped_libraries()
    assert "loaded before it could be isolated" in gi.isolate([sorted(loaded)[0]])
    if not hasattr(os, "RTLD_DEEPBIND"):
        pytest.skip("no RTLD_DEEPBIND here (not glibc)")
    # a small system library this process has not loaded (Mesa's own dependencies, say)
    found = (ctypes.util.find_library(n) for n in ("sensors", "elf", "drm", "expat", "zstd", "z"))
    dirs = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/usr/lib")
    paths = (os.path.realpath(os.path.join(d, f)) for f in found if f for d in dirs)
    path = next((p for p in paths if os.path.exists(p) and p not in loaded), None)
    if path is None:
        pytest.skip("no small system library left to load")
    assert gi.isolate([path]) == "" and path in gi.mapped_libraries()
    assert gi.isolate([path]) == ""  # already isolated: nothing to do
