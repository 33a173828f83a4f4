"""Help > About: the version, the Keras backend and device, the ONNX Runtime providers, the
inference engine setting and the engines of the last segmentation (what support asks for), and the
data the default models were trained on with its licences and attributions (from their cards)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox

from core import __version__
from core.catalog.library import data_credits
from core.inference.engines import engines_line

from .. import background
from .services import WindowServices


class AboutController:
    """Owns the Help menu.

    Receives the window's services (the dialog's parent), ``engine()`` (the inference engine
    setting) and ``last_engines()`` (the engines of the last segmentation, empty before one).
    """

    def __init__(self, services: WindowServices, engine: Callable[[], str], last_engines: Callable[[], dict]):
        self.services, self.engine, self.last_engines = services, engine, last_engines

    def build_menu(self, menubar) -> None:
        h = menubar.addMenu("&Help")
        h.addAction("&About", self.about)

    def about(self) -> None:
        QMessageBox.about(self.services.parent, "About LiverSeg Studio", self.about_text())

    def about_text(self) -> str:
        engines = self.last_engines()
        last = "\nLast segmentation: " + engines_line(engines) if engines else ""
        credits = data_credits()
        trained = ("\n\nThe default models were trained on:\n" + "\n".join(f"- {c}" for c in credits)
                   + "\nResearch use; not for clinical decisions.") if credits else ""
        return (f"LiverSeg Studio {__version__}\n{background.engine_description()}\n"
                f"Inference engine setting: {self.engine()}{last}{trained}\n\n"
                "Demo models are trained on synthetic data only.")
