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


def test_installer_build_refuses_a_bundle_without_the_xcb_libraries(tmp_path, monkeypatch):
    """Issue 14: the Linux bundle carries Qt's XCB libraries; a build machine without them makes no
    bundle that would fail on users' machines, and says what to install."""
    import pytest

    import build_installer as b
    wanted = b.xcb_libs_to_bundle()
    assert "libxcb-cursor.so.0" in wanted and "libxcb-icccm.so.4" in wanted and "libxkbcommon-x11.so.0" in wanted
    assert "libEGL.so.1" not in wanted and "libxcb.so.1" not in wanted  # the system's (drivers, the X connection)
    (tmp_path / "_internal").mkdir()
    for lib in wanted:
        if lib != "libxcb-keysyms.so.1":
            (tmp_path / "_internal" / lib).write_bytes(b"")
    assert b.missing_xcb_libs(tmp_path) == ["libxcb-keysyms.so.1"]
    monkeypatch.setattr(dev.os, "geteuid", lambda: 1000, raising=False)
    with pytest.raises(SystemExit) as exc:
        b.check_xcb_bundled(tmp_path)
    message = str(exc.value)
    assert "libxcb-keysyms.so.1" in message and ("libxcb-keysyms1" in message or "xcb-util-keysyms" in message)
    (tmp_path / "_internal" / "libxcb-keysyms.so.1").write_bytes(b"")
    b.check_xcb_bundled(tmp_path)  # complete: no exit
