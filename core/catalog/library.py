"""The model library: bundled models, the user's models folder, and files opened by hand.

Bundled are the default models (``resources/models/ircadb-liver`` and ``ircadb-tumor``:
trained on real 3D-IRCADb-01 anatomy, ``"default": true`` in their model.json) and the
demo models (trained on synthetic phantoms only). Each entry says truthfully which kind
it is (:attr:`ModelEntry.kind`); :func:`default_models` is what the GUI's *Segment* and
``liverseg predict`` / ``evaluate`` use when no model is named.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ..model.card import CARD, MODEL, ONNX_FILE, card_path, read_card
from ..runtime.atomic import write_json
from ..runtime.errors import ModelError

log = logging.getLogger(__name__)
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def bundled_models_dir() -> Path:
    """``resources/models`` (also inside a PyInstaller bundle)."""
    base = Path(getattr(sys, "_MEIPASS", RESOURCES.parent))
    return base / "resources" / "models"


def user_models_dir() -> Path:
    return Path(platformdirs.user_data_dir("LiverSegStudio", appauthor=False)) / "models"


@dataclass(frozen=True)
class ModelEntry:
    """One model in the library, described from its model.json without loading Keras."""

    path: str  # model.keras / .h5 file
    stage: str
    input_size: int
    recipe: str
    val_dice: float | None
    date: str
    label: str
    origin: str  # "bundled", "user", "opened"
    exports: str = ""  # "ONNX + int8", "ONNX (int8 refused)", "ONNX" or "" (see core.inference.engines)
    kind: str = "user"  # "real" (trained on real CT anatomy), "demo" (phantoms only), "lab", "legacy" or "user"
    default: bool = False  # the bundled default of its stage

    @property
    def title(self) -> str:
        kind = {"real": "real CT", "demo": "DEMO, phantoms only", "legacy": "legacy", "lab": "lab"}.get(self.kind, "")
        head = f"[default, {kind}] " if self.default else (f"[{kind}] " if kind else "")
        dice = f", val Dice {self.val_dice:.3f}" if self.val_dice is not None else ""
        name = self.label[len(LAB):].strip() if self.kind == "lab" else Path(self.path).parent.name
        return f"{head}{name}: {self.stage}, {self.input_size} px, {self.recipe}{dice}"


LAB = "[lab]"  # how a fine-tune's label starts (core.training.finetune)


def model_kind(meta: dict) -> str:
    """"real", "demo", "lab" (fine-tuned on a lab's cases) or "user" from a model.json (see :class:`ModelEntry`)."""
    if str(meta.get("label", "")).startswith(LAB):
        return "lab"
    if (meta.get("card") or {}).get("kind") == "real":
        return "real"
    if "demo" in str(meta.get("label", "")).lower():
        return "demo"
    return "user"


def describe(model_file: Path, origin: str) -> ModelEntry | None:
    """A library entry for a model file with its card (:func:`core.model.card.card_path`), or None when
    it has no readable card (a notebook .h5 without one is a legacy entry)."""
    if model_file.suffix.lower() in (".h5", ".hdf5") and not card_path(model_file).exists():
        return ModelEntry(str(model_file), "?", 256, "notebook", None, "", "legacy notebook model", origin,
                          kind="legacy")
    try:
        meta = read_card(model_file)
    except ModelError:
        return None
    best = meta.get("best", {}).get("val_dice")
    exports = ""
    if meta.get("onnx") and (model_file.parent / ONNX_FILE).is_file():
        q = meta.get("int8") or {}
        exports = "ONNX + int8" if q.get("validated") else ("ONNX (int8 refused)" if q else "ONNX")
    return ModelEntry(str(model_file), meta.get("stage") or "?", int(meta.get("input_size", 0)),
                      meta.get("preprocessing", {}).get("recipe", "?"),
                      float(best) if isinstance(best, (int, float)) else None,
                      str(meta.get("date", ""))[:10], meta.get("label", ""), origin, exports,
                      model_kind(meta), bool(meta.get("default")) and origin == "bundled")


def model_files(folder: Path) -> list[Path]:
    """The model.keras files under a folder, and where a folder has only its card and ONNX files
    (the lite edition's bundled models) the model.keras it stands for."""
    onnx_only = {c.with_name(MODEL) for c in folder.rglob(CARD) if (c.parent / ONNX_FILE).is_file()}
    return sorted(set(folder.rglob(MODEL)) | onnx_only)


def scan_models(extra: Iterable[str] = ()) -> list[ModelEntry]:
    """All models found: bundled first (the defaults, then real, then demo models), then the
    user's folder (recursively), then ``extra`` files."""
    out: list[ModelEntry] = []
    seen = set()
    for origin, folder in (("bundled", bundled_models_dir()), ("user", user_models_dir())):
        if folder.is_dir():
            found = [e for e in (describe(f, origin) for f in model_files(folder)) if e]
            if origin == "bundled":
                found.sort(key=lambda e: (not e.default, e.kind != "real"))
            for e in found:
                if e.path not in seen:
                    seen.add(e.path)
                    out.append(e)
    for f in extra:
        opened = describe(Path(f), "opened")
        if opened and opened.path not in seen:
            seen.add(opened.path)
            out.append(opened)
    return out


USER_DEFAULTS = "defaults.json"  # in the user's models folder: {stage: model.keras path}


def user_default_models() -> dict[str, ModelEntry]:
    """The models this installation uses instead of the bundled defaults (*Use as default* after a
    fine-tune), by stage; {} when none are set or their files are gone."""
    f = user_models_dir() / USER_DEFAULTS
    try:
        chosen = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for stage, path in (chosen.items() if isinstance(chosen, dict) else ()):
        e = describe(Path(path), "user") if Path(str(path)).is_file() else None
        if e is not None and e.stage == stage:
            out[stage] = e
    return out


def set_user_defaults(paths: dict[str, str]) -> Path:
    """Make these models ({stage: model.keras}) this installation's defaults (the bundled ones stay
    untouched); ``{}`` restores the bundled defaults. Written atomically; returns the file."""
    for stage, path in paths.items():
        e = describe(Path(path), "user") if Path(path).is_file() else None
        if e is None or e.stage != stage:
            raise ModelError(f"{path}: not a {stage} model with a card (model.json)")
    f = user_models_dir() / USER_DEFAULTS
    if not paths:
        if f.exists():
            os.remove(f)
        return f
    f.parent.mkdir(parents=True, exist_ok=True)
    write_json(f, {k: str(Path(v).resolve()) for k, v in paths.items()})
    return f


def default_models(entries: list[ModelEntry] | None = None) -> tuple[ModelEntry | None, ModelEntry | None]:
    """(liver, tumour) used when no model is named: this installation's chosen defaults
    (:func:`set_user_defaults`), else the bundled defaults, else the first bundled model of each
    stage; None for a stage without any."""
    entries = scan_models() if entries is None else entries
    chosen = user_default_models()
    out: list[ModelEntry | None] = []
    for stage in ("liver", "tumor"):
        if stage in chosen:
            out.append(chosen[stage])
            continue
        bundled = [e for e in entries if e.origin == "bundled" and e.stage == stage]
        out.append(next((e for e in bundled if e.default), bundled[0] if bundled else None))
    return out[0], out[1]


def licences_by_dataset(card: dict) -> dict[str, str]:
    """{dataset: licence} from a card's ``licence`` ("CC BY-NC-ND 4.0 (3D-IRCADb-01 (IRCAD, Strasbourg));
    CC BY 4.0 (HCC-TACE-Seg (...))", or one licence for a card of one dataset)."""
    text, names = str(card.get("licence", "")), list(card.get("datasets", []))
    out = {}
    for part in text.split("; "):
        head, _, rest = part.partition(" (")
        if rest.endswith(")") and rest[:-1] in names:
            out[rest[:-1]] = head
    if not out and len(names) == 1 and text:
        out[names[0]] = text
    return out


def data_credits(entries: list[ModelEntry] | None = None) -> list[str]:
    """What the models used when none is named were trained on, one line per dataset with its licence
    and, where the licence asks for one, its attribution (CC BY): for Help > About.
    Read from the models' cards; empty for models without one."""
    lines: list[str] = []
    for e in default_models(entries):
        if e is None:
            continue
        try:
            card = read_card(Path(e.path)).get("card") or {}
        except ModelError:
            continue
        licences, attribution = licences_by_dataset(card), card.get("attribution") or {}
        for name in card.get("datasets", []):
            line = f"{name}: {attribution.get(name) or licences.get(name, 'licence not recorded')}"
            if line not in lines:
                lines.append(line)
    return lines
