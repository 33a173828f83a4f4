"""Saved PACS connections, and their secrets in the platform's keyring.

The connections are stored as JSON (``pacs.json`` beside ``settings.json`` in the user's config
folder), written atomically. A password or token is never written there: it goes to the
platform's keyring (Windows Credential Manager, macOS Keychain, Secret Service) under the service
``LiverSegStudio PACS`` and the connection's name. Where no keyring exists the secret lives for
the session only (:func:`store_secret` says so), or comes from ``LIVERSEG_PACS_SECRET``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import platformdirs

from ..runtime.atomic import write_json
from ..runtime.errors import PacsError

log = logging.getLogger(__name__)
PROTOCOLS = ("dimse", "dicomweb")
AUTHS = ("none", "basic", "token")
KEYRING_SERVICE = "LiverSegStudio PACS"
SECRET_ENV = "LIVERSEG_PACS_SECRET"
_AE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # DICOM AE: 16 chars, no backslash, no control chars
_session_secrets: dict[str, str] = {}


@dataclass(frozen=True)
class PacsConnection:
    """One PACS.

    Attributes:
        name: the user's name for it (unique; the keyring entry's key).
        protocol: "dimse" (C-ECHO/C-FIND/C-GET/C-STORE) or "dicomweb" (QIDO/WADO/STOW-RS).
        host, port: DIMSE peer.
        called_ae: the PACS's AE title; calling_ae: ours.
        url: DICOMweb root, e.g. ``http://pacs:8042/dicom-web``.
        auth: DICOMweb authentication, "none", "basic" (username + keyring password) or "token"
            (keyring bearer token).
        username: for basic auth.
        timeout: seconds for a connection, a response or an idle transfer.
    """

    name: str
    protocol: str = "dimse"
    host: str = ""
    port: int = 104
    called_ae: str = "ANY-SCP"
    calling_ae: str = "LIVERSEG"
    url: str = ""
    auth: str = "none"
    username: str = ""
    timeout: float = 10.0

    def __post_init__(self):
        where = f"PACS connection {self.name!r}"
        if not self.name.strip():
            raise PacsError("a PACS connection needs a name")
        if self.protocol not in PROTOCOLS:
            raise PacsError(f"{where}: protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.auth not in AUTHS:
            raise PacsError(f"{where}: auth must be one of {AUTHS}, got {self.auth!r}")
        if not self.timeout > 0:
            raise PacsError(f"{where}: timeout must be > 0 s")
        if self.protocol == "dimse":
            if not self.host.strip():
                raise PacsError(f"{where}: no host")
            if not 0 < int(self.port) < 65536:
                raise PacsError(f"{where}: port {self.port} is not in 1-65535")
            for label, ae in (("called AE title", self.called_ae), ("calling AE title", self.calling_ae)):
                if not _AE.match(ae) or not ae.strip():
                    raise PacsError(f"{where}: {label} {ae!r} is not a DICOM AE title (1-16 characters, "
                                    f"no backslash)")
        else:
            if not re.match(r"^https?://[^\s/]+", self.url):
                raise PacsError(f"{where}: DICOMweb URL {self.url!r} must start with http:// or https://")
            if self.auth == "basic" and not self.username:
                raise PacsError(f"{where}: basic authentication needs a user name")

    @property
    def address(self) -> str:
        return (f"{self.called_ae}@{self.host}:{self.port}" if self.protocol == "dimse"
                else self.url.rstrip("/"))

    def describe(self) -> str:
        return f"{self.name} ({'DIMSE' if self.protocol == 'dimse' else 'DICOMweb'} {self.address})"


def connections_path() -> Path:
    return Path(platformdirs.user_config_dir("LiverSegStudio", appauthor=False)) / "pacs.json"


def load_connections(path: Path | None = None) -> list[PacsConnection]:
    """The saved connections; an unreadable file is reported and read as none."""
    path = Path(path or connections_path())
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("%s: ignoring unreadable PACS connections (%s)", path, exc)
        return []
    known = {f.name for f in fields(PacsConnection)}
    out = []
    for item in data.get("connections", []) if isinstance(data, dict) else []:
        try:
            out.append(PacsConnection(**{k: v for k, v in item.items() if k in known}))
        except (PacsError, TypeError, AttributeError) as exc:
            log.warning("%s: skipping a PACS connection (%s)", path, exc)
    return out


def save_connections(connections: list[PacsConnection], path: Path | None = None) -> None:
    names = [c.name for c in connections]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise PacsError(f"two PACS connections are named {sorted(dup)[0]!r}")
    write_json(Path(path or connections_path()), {"connections": [asdict(c) for c in connections]})


def find_connection(name: str, path: Path | None = None) -> PacsConnection:
    conns = load_connections(path)
    for c in conns:
        if c.name == name:
            return c
    known = ", ".join(c.name for c in conns) or "none saved"
    raise PacsError(f"no PACS connection named {name!r} ({known}; add one with `liverseg pacs add`)")


def upsert_connection(conn: PacsConnection, path: Path | None = None) -> None:
    conns = [c for c in load_connections(path) if c.name != conn.name]
    save_connections(conns + [conn], path)


def remove_connection(name: str, path: Path | None = None) -> None:
    find_connection(name, path)
    save_connections([c for c in load_connections(path) if c.name != name], path)
    try:
        store_secret(name, "")
    except PacsError:
        pass


def _keyring():
    """The keyring module when a usable backend exists, else None."""
    try:
        import keyring
        from keyring.backends import fail
        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
            return None
        return keyring
    except Exception:  # an import failure or a broken backend: no keyring
        return None


def store_secret(name: str, secret: str) -> bool:
    """Keep a connection's password / token. Returns True when the keyring saved it, False when it
    is kept for this session only (no keyring on this system). An empty secret deletes it."""
    kr = _keyring()
    _session_secrets.pop(name, None)
    if kr is None:
        if secret:
            _session_secrets[name] = secret
        return False
    try:
        if secret:
            kr.set_password(KEYRING_SERVICE, name, secret)
        else:
            try:
                kr.delete_password(KEYRING_SERVICE, name)
            except Exception:
                pass
        return True
    except Exception as exc:
        if secret:
            _session_secrets[name] = secret
        log.warning("keyring refused the secret of %r (%s); kept for this session only", name, exc)
        return False


def load_secret(name: str) -> str:
    """The connection's secret: this session's, the keyring's, or ``LIVERSEG_PACS_SECRET``."""
    if name in _session_secrets:
        return _session_secrets[name]
    kr = _keyring()
    if kr is not None:
        try:
            value = kr.get_password(KEYRING_SERVICE, name)
            if value:
                return value
        except Exception as exc:
            log.warning("keyring could not read the secret of %r (%s)", name, exc)
    return os.environ.get(SECRET_ENV, "")

