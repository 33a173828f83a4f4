#!/usr/bin/env python3
"""Set-up and run, on a fresh machine with Python 3.10+:

    python3 dev.py app [ARGS...]    run LiverSeg Studio (the demo study when no data is given)
    python3 dev.py test [ARGS...]   run the test suite (ARGS go to pytest)

Both create the virtual environment ``.venv/`` at the repository root on
first use, install the project into it (again only when pyproject.toml
changes), and reuse it afterwards.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".liverseg-installed"


def ensure_venv() -> None:
    if not PY.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != want:
        print("installing LiverSeg Studio and its dependencies into .venv ...", flush=True)
        subprocess.check_call([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        subprocess.check_call([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"])
        STAMP.write_text(want)


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "app"
    rest = sys.argv[2:]
    if cmd not in ("app", "test"):
        print(__doc__)
        return 2
    ensure_venv()
    env = dict(os.environ)
    if cmd == "test":
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT, env=env)
    return subprocess.call([str(PY), "-m", "app", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
