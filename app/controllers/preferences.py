"""The user's inference preferences (:class:`core.runtime.settings.Settings`, saved between
runs): the engine chosen on the Segment tab and the Keras backend chosen in the Settings menu
(used from the next start: Keras is already imported)."""

from __future__ import annotations

import os

from PySide6.QtGui import QActionGroup

from core.runtime.edition import keras_available, not_in_edition
from core.runtime.settings import BACKENDS, Settings, installed_backends, load_settings, save_settings

from .services import WindowServices


class PreferencesController:
    """Loads, changes and saves the preferences; owns the Settings menu.

    Receives the window's services (the status bar says what changed, or that saving failed) and
    the Segment panel (its engine box shows and changes the engine setting).
    """

    def __init__(self, services: WindowServices, segment_panel):
        self.services = services
        self.prefs: Settings = load_settings()
        self.backend_actions: dict = {}
        segment_panel.set_engine(self.prefs.engine)
        segment_panel.engineChanged.connect(self.set_engine)

    def build_menu(self, menubar) -> None:
        """The Settings menu: the Keras backend (greyed in the lite edition, which has none)."""
        st = menubar.addMenu("&Settings")
        if not keras_available():  # the lite edition: ONNX Runtime only
            st.addAction(not_in_edition("Choosing the Keras backend")).setEnabled(False)
        else:
            self._backend_menu(st.addMenu("Keras &backend (after restart)"))

    def _backend_menu(self, bm) -> None:
        group = QActionGroup(bm)
        installed = installed_backends()
        for b in BACKENDS:
            a = bm.addAction(b + ("" if b in installed else " (not installed)"))
            a.setCheckable(True)
            a.setEnabled(b in installed)
            a.setChecked(b == self.prefs.keras_backend)
            a.triggered.connect(lambda _=False, b=b: self.set_backend(b))
            group.addAction(a)
            self.backend_actions[b] = a

    def set_engine(self, engine: str) -> None:
        """The inference engine setting (saved for the next session)."""
        self._save_prefs(self.prefs.replace(engine=engine))

    def set_backend(self, backend: str) -> None:
        """The Keras backend setting: used from the next start (Keras is already imported)."""
        if backend == self.prefs.keras_backend:
            return
        self._save_prefs(self.prefs.replace(keras_backend=backend))
        note = ("" if "KERAS_BACKEND" not in os.environ or os.environ["KERAS_BACKEND"] == backend else
                f" (the KERAS_BACKEND environment variable, {os.environ['KERAS_BACKEND']}, still wins)")
        self.services.status(f"Keras backend {backend} will be used after a restart{note}")

    def _save_prefs(self, prefs: Settings) -> None:
        self.prefs = prefs
        try:
            save_settings(prefs)
        except OSError as exc:
            self.services.status(f"Settings not saved: {exc}")
