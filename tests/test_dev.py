"""dev.py: the set-up script finds missing Qt/X11 system libraries and names the install command, and
``dev.py test`` installs the tests' system packages and PyTorch where it may (fakes stand in for apt-get,
sudo and pip: nothing is installed here)."""

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
    """The Linux bundle carries Qt's XCB libraries; a build machine without them makes no
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


class FakeSystem:
    """A machine's packages (Debian names) as TEST_PACKAGES' probes see them; ``run`` plays apt-get:
    an install fails while the package lists need an update or apt-get is ``broken``, and installs
    what it names except the ``unavailable`` packages (in no package list)."""

    def __init__(self, missing, unavailable=(), broken=False, needs_update=False):
        self.missing, self.unavailable = set(missing), set(unavailable)
        self.broken, self.needs_update, self.calls = broken, needs_update, []

    def have(self, probe):
        for deb, _, probes in dev.TEST_PACKAGES:
            if probe in probes:
                return deb not in self.missing
        so = probe.partition(":")[2]
        return so not in dev.QT_XCB_LIBS or dev.QT_XCB_LIBS[so][0] not in self.missing

    def run(self, cmd, **kwargs):
        import subprocess
        self.calls.append(cmd)
        assert kwargs["env"]["DEBIAN_FRONTEND"] == "noninteractive"
        ok = True
        if "update" in cmd:
            self.needs_update = False
        elif not self.broken and not self.needs_update:
            self.missing -= set(cmd) - self.unavailable
        else:
            ok = False
        return subprocess.CompletedProcess(cmd, 0 if ok else 100)


def no_sudo():
    raise AssertionError("root needs no sudo")


def test_missing_packages_named_per_distribution():
    fake = FakeSystem(["xvfb", "orthanc-dicomweb", "libxcb-icccm4", "poppler-utils"])
    assert dev.missing_test_packages(fake.have) == ["libxcb-icccm4", "orthanc-dicomweb", "poppler-utils", "xvfb"]
    assert dev.missing_test_packages(fake.have, rpm=True) == [
        "orthanc-dicomweb", "poppler-utils", "xcb-util-wm", "xorg-x11-server-Xvfb"]
    assert dev.missing_test_packages(FakeSystem([]).have) == []
    wanted = {deb for deb, _, _ in dev.TEST_PACKAGES} | {deb for deb, _ in dev.QT_XCB_LIBS.values()}
    assert {"libxcb-keysyms1", "libgl1-mesa-dri", "libdbus-1-3", "orthanc", "libegl1"} <= wanted


def test_install_plan_root_sudo_or_a_line_to_run():
    pkgs = ["orthanc", "xvfb"]
    attempts, line = dev.install_plan(pkgs, rpm=False, euid=0, sudo_ok=False)
    install = ["apt-get", "install", "-y", "-qq", "orthanc", "xvfb"]
    assert attempts == [[install], [["apt-get", "update", "-qq"], install]]  # lists updated only on failure
    assert line == "apt-get install -y orthanc xvfb"
    attempts, line = dev.install_plan(pkgs, rpm=False, euid=1000, sudo_ok=True)
    assert attempts[0] == [["sudo", "-n", *install]] and attempts[1][0] == ["sudo", "-n", "apt-get", "update", "-qq"]
    assert line == "sudo apt-get install -y orthanc xvfb"
    assert dev.install_plan(pkgs, rpm=False, euid=1000, sudo_ok=False) == ([], "sudo apt-get install -y orthanc xvfb")
    attempts, line = dev.install_plan(["xorg-x11-server-Xvfb"], rpm=True, euid=1000, sudo_ok=True)
    assert attempts == [[["sudo", "-n", "dnf", "install", "-y", "xorg-x11-server-Xvfb"]]]
    assert line == "sudo dnf install -y xorg-x11-server-Xvfb"


def test_setup_runs_no_package_manager_when_everything_is_there(monkeypatch):
    monkeypatch.setattr(dev.sys, "platform", "linux")
    fake = FakeSystem([])
    assert dev.ensure_system_packages(fake.have, euid=0, sudo_ok=no_sudo, run=fake.run, rpm=False) == ""
    assert fake.calls == []


def test_setup_installs_as_root_updating_the_lists_only_when_the_install_fails(monkeypatch, capsys):
    monkeypatch.setattr(dev.sys, "platform", "linux")
    fake = FakeSystem(["xvfb", "libxcb-keysyms1"])
    assert dev.ensure_system_packages(fake.have, euid=0, sudo_ok=no_sudo, run=fake.run, rpm=False) == ""
    assert fake.calls == [["apt-get", "install", "-y", "-qq", "libxcb-keysyms1", "xvfb"]] and not fake.missing
    fresh = FakeSystem(["orthanc", "orthanc-dicomweb"], needs_update=True)  # no package lists
    assert dev.ensure_system_packages(fresh.have, euid=0, sudo_ok=no_sudo, run=fresh.run, rpm=False) == ""
    assert [c[1] for c in fresh.calls] == ["install", "update", "install"] and not fresh.missing
    assert "dev.py test:" not in capsys.readouterr().out


def test_setup_uses_sudo_n_or_prints_one_line(monkeypatch, capsys):
    monkeypatch.setattr(dev.sys, "platform", "linux")
    fake = FakeSystem(["poppler-utils"])
    assert dev.ensure_system_packages(fake.have, euid=1000, sudo_ok=lambda: True, run=fake.run, rpm=False) == ""
    assert fake.calls == [["sudo", "-n", "apt-get", "install", "-y", "-qq", "poppler-utils"]]
    capsys.readouterr()
    fake = FakeSystem(["poppler-utils", "xvfb"])
    line = dev.ensure_system_packages(fake.have, euid=1000, sudo_ok=lambda: False, run=fake.run, rpm=False)
    assert fake.calls == []  # may not install: only says what to run
    out = capsys.readouterr().out
    assert out.strip() == line and len(out.splitlines()) == 1
    assert line.endswith("run: sudo apt-get install -y poppler-utils xvfb") and "sudo -n" in line


def test_setup_names_what_the_install_left_missing(monkeypatch, capsys):
    monkeypatch.setattr(dev.sys, "platform", "linux")
    fake = FakeSystem(["xvfb", "orthanc-dicomweb"], unavailable=["orthanc-dicomweb"])
    line = dev.ensure_system_packages(fake.have, euid=0, sudo_ok=no_sudo, run=fake.run, rpm=False)
    assert fake.missing == {"orthanc-dicomweb"}
    assert line.endswith("run: apt-get install -y orthanc-dicomweb") and "could not install" in line
    assert capsys.readouterr().out.count("dev.py test:") == 1
    broken = FakeSystem(["xvfb"], broken=True)
    assert dev.ensure_system_packages(broken.have, euid=0, sudo_ok=no_sudo, run=broken.run, rpm=False)
    assert len(broken.calls) == 3  # install; update, install: then gives up


def test_torch_installed_once_or_one_line_and_no_retry(monkeypatch, tmp_path, capsys):
    import subprocess
    monkeypatch.setattr(dev, "torch_installed", lambda: False)
    monkeypatch.setattr(dev, "NO_TORCH", tmp_path / ".torch-unavailable")
    calls = []

    def pip(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1)
    line = dev.ensure_torch(run=pip)
    assert calls == [[str(dev.PY), "-m", "pip", "install", "--quiet", "torch==2.13.0"]]
    assert "torch==2.13.0 is not installable" in line and (tmp_path / ".torch-unavailable").is_file()
    assert dev.ensure_torch(run=pip) == line and len(calls) == 1  # not tried again
    assert capsys.readouterr().out.count("not installable") == 2
    monkeypatch.setattr(dev, "torch_installed", lambda: True)
    assert dev.ensure_torch(run=pip) == "" and len(calls) == 1


def test_the_tests_skip_reason_names_the_command_dev_py_printed(monkeypatch):
    monkeypatch.setattr(dev, "ensure_system_packages", lambda: "dev.py test: missing; their tests skip until "
                        "you run: sudo apt-get install -y xvfb")
    monkeypatch.setattr(dev, "ensure_torch", lambda: "")
    env = dev.ensure_test_system()
    assert env[dev.SETUP_ENV] == "sudo apt-get install -y xvfb"
    from tests.system_setup import not_installed
    monkeypatch.setenv(dev.SETUP_ENV, env[dev.SETUP_ENV])
    assert not_installed("Xvfb", "xvfb").endswith("otherwise run: sudo apt-get install -y xvfb")
