"""User settings that outlive a session: inference engine and Keras backend.

Stored as JSON in the user's config folder (platformdirs), written atomically.
The Keras backend must be chosen before Keras is first imported, so
:func:`apply_backend` runs at program start; the environment variable
``KERAS_BACKEND`` wins over the setting when it is set.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import platformdirs

from .atomic import write_json
from .choices import ENGINES, Engine
from .edition import keras_available

log = logging.getLogger(__name__)
BACKENDS = ("tensorflow", "jax", "torch")


@dataclass(frozen=True)
class Settings:
    """Attributes:
        engine: inference engine, one of :data:`core.inference.engines.ENGINES`.
        keras_backend: Keras backend for the next start ("tensorflow", "jax", "torch").
    """

    engine: Engine = "auto"
    # a packaged variant may default to another backend (the Windows GPU build: torch)
    keras_backend: str = field(default_factory=lambda: os.environ.get("LIVERSEG_DEFAULT_BACKEND", "tensorflow"))

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.keras_backend not in BACKENDS:
            raise ValueError(f"Keras backend must be one of {BACKENDS}, got {self.keras_backend!r}")

    def replace(self, **changes) -> Settings:
        return Settings(**{**asdict(self), **changes})


def settings_path() -> Path:
    return Path(platformdirs.user_config_dir("LiverSegStudio", appauthor=False)) / "settings.json"


def load_settings(path: Path | None = None) -> Settings:
    """The saved settings; defaults (with a logged warning) when the file is missing or bad."""
    path = Path(path or settings_path())
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(Settings)}
        settings = Settings(**{k: v for k, v in data.items() if k in known})
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError, TypeError) as exc:
        log.warning("%s: ignoring unreadable settings (%s)", path, exc)
        return Settings()
    if settings.engine == "keras" and not keras_available():  # saved by the full edition; lite runs ONNX
        return settings.replace(engine="auto")
    return settings


def save_settings(settings: Settings, path: Path | None = None) -> None:
    write_json(Path(path or settings_path()), asdict(settings))


def apply_backend(settings: Settings) -> str:
    """Set ``KERAS_BACKEND`` from the settings unless the environment already sets it (call before
    Keras is imported). Returns the backend that will be used."""
    if "KERAS_BACKEND" not in os.environ:
        os.environ["KERAS_BACKEND"] = settings.keras_backend
    return os.environ["KERAS_BACKEND"]


def installed_backends() -> list[str]:
    """Keras backends whose framework is installed (without importing them)."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
