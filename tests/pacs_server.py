"""A private Orthanc PACS for the tests: loopback only, free ports, a temporary storage folder, a
known AE title, DICOMweb on, HTTP basic auth. Started once per session by the ``orthanc`` fixture."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from tests.system_setup import not_installed

AET = "ORTHANCTEST"
USER, PASSWORD = "lab", "s3cret-pw"
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc/plugins")


def find_orthanc() -> str | None:
    return shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
                                           if os.path.exists(p)), None)


def find_dicomweb_plugin() -> str | None:
    for d in PLUGIN_DIRS:
        p = Path(d) / "libOrthancDicomWeb.so"
        if p.exists():
            return str(p)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_orthanc() -> tuple[str, str]:
    """The Orthanc binary and DICOMweb plugin; skip without them locally, fail under CI."""
    binary, plugin = find_orthanc(), find_dicomweb_plugin()
    if binary and plugin:
        return binary, plugin
    why = not_installed("Orthanc with its DICOMweb plugin", "orthanc orthanc-dicomweb")
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must have them")
    pytest.skip(why)


class OrthancServer:
    def __init__(self, folder: Path):
        self.binary, plugin = require_orthanc()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.http_port, self.dicom_port = free_port(), free_port()
        self.config = self.folder / "orthanc.json"
        self.config.write_text(json.dumps({
            "Name": "liverseg-test", "StorageDirectory": str(self.folder / "db"),
            "IndexDirectory": str(self.folder / "db"), "HttpPort": self.http_port, "DicomPort": self.dicom_port,
            "DicomAet": AET, "DicomCheckCalledAet": True, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD}, "Plugins": [plugin],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True, "HttpServerThreads": 8,
            "StorageCompression": False, "LimitFindResults": 0, "LimitFindInstances": 0,
            "HttpTimeout": 30}))
        self.log = open(self.folder / "orthanc.log", "wb")
        self.proc = subprocess.Popen([self.binary, str(self.config)], stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def _wait(self) -> None:
        import requests
        for _ in range(200):  # 20 s at most
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(self.folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/system", auth=(USER, PASSWORD), timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("Orthanc did not start within 20 s")

    def rest(self, method: str, path: str, **kwargs):
        import requests
        r = requests.request(method, f"{self.url}{path}", auth=(USER, PASSWORD), timeout=60, **kwargs)
        r.raise_for_status()
        return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else r

    def upload(self, data: bytes) -> dict:
        return self.rest("POST", "/instances", data=data, headers={"content-type": "application/dicom"})

    def upload_zip_series(self, zip_path: Path, member_prefix: str) -> int:
        """Upload the DICOM members of a dataset zip under ``member_prefix`` (e.g. PATIENT_DICOM/)."""
        n = 0
        with zipfile.ZipFile(zip_path) as z:
            for name in z.namelist():
                if name.startswith(member_prefix) and not name.endswith("/"):
                    self.upload(z.read(name))
                    n += 1
        return n

    def delete(self, uid: str, kind: str = "Series") -> None:
        """Remove a series (or instance, study) by its DICOM UID."""
        for item in self.rest("POST", "/tools/lookup", data=uid):
            if item["Type"] == kind:
                collection = {'Series': 'series', 'Instance': 'instances', 'Study': 'studies'}[kind]
                self.rest("DELETE", f"/{collection}/{item['ID']}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
