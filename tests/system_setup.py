"""Why a test that needs a system package or PyTorch skips.

``python3 dev.py test`` installs them where it may (as root, or with a sudo that asks no password)
and otherwise prints the one command to run, which it hands to the tests in ``LIVERSEG_SYSTEM_SETUP``.
"""

from __future__ import annotations

import os


def not_installed(what: str, package: str) -> str:
    """A skip reason: ``what`` is missing, and the command that installs it."""
    command = os.environ.get("LIVERSEG_SYSTEM_SETUP") or f"sudo apt-get install -y {package}"
    return (f"{what} is not installed ({package}): `python3 dev.py test` installs it as root or with "
            f"a password-less sudo; otherwise run: {command}")
