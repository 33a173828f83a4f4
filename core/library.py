"""The model library: bundled demo models, the user's models folder, and files opened by hand."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

log = logging.getLogger(__name__)
RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def bundled_models_dir() -> Path:
    """``resources/models`` (also inside a PyInstaller bundle)."""
    import sys
    base = Path(getattr(sys, "_MEIPASS", RESOURCES.parent))
    return base / "resources" / "models"


def user_models_dir() -> Path:
    import platformdirs
    return Path(platformdirs.user_data_dir("LiverSegStudio", appauthor=False)) / "models"


@dataclass(frozen=True)
class ModelEntry:
    """One model in the library, described from its model.json without loading Keras."""

    path: str  # model.keras / .h5 file
    stage: str
    input_size: int
    recipe: str
    val_dice: Optional[float]
    date: str
    label: str
    origin: str  # "bundled", "user", "opened"
    exports: str = ""  # "ONNX + int8", "ONNX (int8 refused)", "ONNX" or "" (see core.engines)

    @property
    def title(self) -> str:
        dice = f", val Dice {self.val_dice:.3f}" if self.val_dice is not None else ""
        tag = f" - {self.label}" if self.label else ""
        return f"{Path(self.path).parent.name}: {self.stage}, {self.input_size} px, {self.recipe}{dice}{tag}"


def describe(model_file: Path, origin: str) -> Optional[ModelEntry]:
    """A library entry for a model file with its model.json, or None when it has no metadata."""
    meta_path = model_file.with_name("model.json") if model_file.suffix == ".keras" else model_file.with_suffix(".json")
    if model_file.suffix.lower() in (".h5", ".hdf5") and not meta_path.exists():
        return ModelEntry(str(model_file), "?", 256, "notebook", None, "", "legacy notebook model", origin)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    best = meta.get("best", {}).get("val_dice")
    exports = ""
    if meta.get("onnx") and (model_file.parent / "model.onnx").is_file():
        q = meta.get("int8") or {}
        exports = "ONNX + int8" if q.get("validated") else ("ONNX (int8 refused)" if q else "ONNX")
    return ModelEntry(str(model_file), meta.get("stage") or "?", int(meta.get("input_size", 0)),
                      meta.get("preprocessing", {}).get("recipe", "?"),
                      float(best) if isinstance(best, (int, float)) else None,
                      str(meta.get("date", ""))[:10], meta.get("label", ""), origin, exports)


def scan_models(extra: Iterable[str] = ()) -> list[ModelEntry]:
    """All models found: bundled first, then the user's folder (recursively), then ``extra`` files."""
    out: list[ModelEntry] = []
    seen = set()
    for origin, folder in (("bundled", bundled_models_dir()), ("user", user_models_dir())):
        if folder.is_dir():
            for f in sorted(folder.rglob("model.keras")):
                e = describe(f, origin)
                if e and e.path not in seen:
                    seen.add(e.path)
                    out.append(e)
    for f in extra:
        e = describe(Path(f), "opened")
        if e and e.path not in seen:
            seen.add(e.path)
            out.append(e)
    return out
