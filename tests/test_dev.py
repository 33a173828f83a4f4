"""dev.py: the set-up script finds missing Qt/X11 system libraries and names the install command."""

from __future__ import annotations

import dev

LDD = """\
\tlinux-vdso.so.1 (0x00007ffc)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x7f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x7f)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
"""
LDCONFIG = """\
3 libs found in cache `/etc/ld.so.cache'
\tlibxcb-icccm.so.4 (libc6,x86-64) => /lib/x86_64-linux-gnu/libxcb-icccm.so.4
\tlibEGL.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libEGL.so.1
\tlibfontconfig.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libfontconfig.so.1
"""


def test_missing_libraries_from_ldd_and_ldconfig():
    assert dev.missing_from_ldd(LDD) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    missing = dev.missing_from_ldconfig(LDCONFIG)
    assert "libxcb-cursor.so.0" in missing and "libxcb-icccm.so.4" not in missing
    assert "libEGL.so.1" not in missing


def test_install_command_per_distribution(monkeypatch):
    monkeypatch.setattr(dev.os, "geteuid", lambda: 1000, raising=False)
    libs = ["libxcb-icccm.so.4", "libxcb-cursor.so.0", "libweird.so.3"]
    apt = dev.install_command(libs, 'ID=ubuntu\nID_LIKE=debian\n')
    assert apt == "sudo apt-get install -y libweird.so.3 libxcb-cursor0 libxcb-icccm4"
    dnf = dev.install_command(libs, 'ID="rocky"\nID_LIKE="rhel centos fedora"\n')
    assert dnf == "sudo dnf install -y libweird.so.3 xcb-util-cursor xcb-util-wm"
    monkeypatch.setattr(dev.os, "geteuid", lambda: 0, raising=False)
    assert dev.install_command(["libxcb-keysyms.so.1"], "ID=debian\n") == "apt-get install -y libxcb-keysyms1"


def test_check_names_libraries_and_command(monkeypatch):
    monkeypatch.setattr(dev.sys, "platform", "linux")
    monkeypatch.setattr(dev, "missing_qt_libs", lambda: ["libxcb-cursor.so.0"])
    msg = dev.check_qt_platform({})
    assert "libxcb-cursor.so.0" in msg and "install -y" in msg
    assert "libxcb-cursor0" in msg or "xcb-util-cursor" in msg
    assert dev.check_qt_platform({"QT_QPA_PLATFORM": "offscreen"}) == ""
    monkeypatch.setattr(dev, "missing_qt_libs", lambda: [])
    assert dev.check_qt_platform({}) == ""
