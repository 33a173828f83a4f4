"""Sharing a model: one zip out of a model folder, and back into the user's models folder.

``export_model`` (``liverseg export-model RUN --out lab-liver.zip``) writes the model files of a
run or model folder (``model.keras``, its card ``model.json`` and, where present, ``model.onnx``,
``model.int8.onnx`` and ``calibration.npz``; never the run's config, state, curves or
``last.keras``) with a manifest ``liverseg-model.json``: format, version, stage, label and the
sha256 and size of every file.

``import_model`` (``liverseg import-model ZIP``, the GUI's *Add model file...*) treats the zip as
untrusted (:class:`core.io.archive.SafeZip`: no absolute or ``..`` names, no links, bounded
sizes) and accepts exactly the manifest and the files it lists, flat, with their hashes and sizes;
the card must parse, name a known preprocessing recipe (:class:`core.transforms.preprocess.
Preprocessing`) and the manifest's stage. The files are written into a temporary folder beside the
target and that folder is renamed into place, so a refused or failed import leaves nothing.

Neither needs Keras: the lite edition imports a shared model and runs its ONNX files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..io.archive import SafeZip
from ..model.card import CALIBRATION_FILE, CARD, INT8_FILE, MODEL, ONNX_FILE, model_folder, read_card
from ..runtime.atomic import atomic_open, file_sha256, write_bytes
from ..runtime.choices import STAGES
from ..runtime.errors import ModelError, one_line
from ..transforms.preprocess import Preprocessing
from . import library

MANIFEST = "liverseg-model.json"
FORMAT = "liverseg-model-share"
VERSION = 1
SHARED = (MODEL, CARD, ONNX_FILE, INT8_FILE, CALIBRATION_FILE)  # the only files a shared model holds
MAX_FILE = 1 << 30  # one model file, uncompressed (read one at a time)
MAX_JSON = 16 << 20  # the manifest and the card
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,99}")


def check_card(card: object, where: str) -> dict:
    """The card if a shared model may carry it: a JSON object with a stage and a known preprocessing.

    Raises:
        ModelError: one line naming ``where`` and the problem.
    """
    if not isinstance(card, dict):
        raise ModelError(f"{where}: the model card is not a JSON object")
    if card.get("stage") not in STAGES:
        raise ModelError(f"{where}: the model card's stage {card.get('stage')!r} is neither liver nor tumor")
    try:
        pre = Preprocessing.from_dict(card["preprocessing"])
    except KeyError as exc:
        raise ModelError(f"{where}: unknown preprocessing in the model card (no {exc})") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{where}: unknown preprocessing in the model card ({one_line(exc, 160)})") from None
    size = card.get("input_size")
    if size is not None and size != pre.size:
        raise ModelError(f"{where}: the model card's input_size {size!r} differs from its preprocessing size "
                         f"{pre.size}")
    return card


def _files_of(folder: Path) -> list[str]:
    names = [n for n in SHARED if (folder / n).is_file()]
    if MODEL not in names and ONNX_FILE not in names:
        raise ModelError(f"{folder}: neither {MODEL} nor {ONNX_FILE}: nothing to share")
    return names


def export_model(source: str | os.PathLike, out_zip: str | os.PathLike, force: bool = False) -> Path:
    """Write the model of a run folder, model folder or ``model.keras`` file as a shareable zip.

    Raises:
        ModelError: no card, an unusable card, no model file, or ``out_zip`` exists (without ``force``).
    """
    src = Path(source)
    if not src.exists():
        raise ModelError(f"{src}: no such run or model folder")
    if src.is_file() and src.name != MODEL:
        raise ModelError(f"{src}: only a model folder (its {MODEL} with {CARD}) can be shared; give the folder")
    folder = model_folder(src)
    out = Path(out_zip)
    card = check_card(read_card(folder), str(folder / CARD))
    names = _files_of(folder)
    if any(out.resolve() == (folder / n).resolve() for n in names):
        raise ModelError(f"{out}: would overwrite a file of the model being exported")
    if out.exists() and not force:
        raise ModelError(f"{out}: already exists (use --force to replace it)")
    files = {n: {"sha256": file_sha256(folder / n), "size": (folder / n).stat().st_size} for n in names}
    manifest = {"format": FORMAT, "version": VERSION, "stage": card["stage"], "label": str(card.get("label", "")),
                "name": folder.name, "files": files}
    try:
        with atomic_open(out, "wb", overwrite=force) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED,
                                                                        strict_timestamps=False) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
            for n in names:
                zf.write(folder / n, n)
    except FileExistsError:
        raise ModelError(f"{out}: already exists (use --force to replace it)") from None
    except OSError as exc:
        raise ModelError(f"{out}: cannot write the model archive ({one_line(exc, 160)})") from None
    return out


def _read_json(data: bytes, where: object) -> object:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{where}: not readable JSON ({one_line(exc, 100)})") from None


def _check_manifest(manifest: object, where: str) -> dict:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{where}: {MANIFEST} is not a LiverSeg model manifest")
    if manifest.get("version") != VERSION:
        raise ModelError(f"{where}: model archive version {manifest.get('version')!r} is not supported "
                         f"(this version reads {VERSION})")
    files = manifest.get("files")
    if not isinstance(files, dict) or CARD not in files or not ({MODEL, ONNX_FILE} & set(files)):
        raise ModelError(f"{where}: the manifest lists no {CARD} with {MODEL} or {ONNX_FILE}")
    for n, rec in files.items():
        if n not in SHARED:
            raise ModelError(f"{where}: the manifest lists {n!r}, not a model file; refused")
        if (not isinstance(rec, dict) or not isinstance(rec.get("size"), int) or not 0 <= rec["size"] <= MAX_FILE
                or not re.fullmatch(r"[0-9a-f]{64}", str(rec.get("sha256")))):
            raise ModelError(f"{where}: the manifest's entry for {n} has no valid sha256 and size")
    return manifest


def target_folder(zip_path: str | os.PathLike, dest_root: str | os.PathLike | None = None,
                  name: str | None = None) -> Path:
    """Where :func:`import_model` installs an archive: ``dest_root`` (default: the user's models
    folder) / ``name`` (default: the zip's name without ``.zip``), one plain folder name.

    Raises:
        ModelError: a name that is not one plain folder name.
    """
    zip_path = Path(zip_path)
    if dest_root is None:
        dest_root = library.user_models_dir()
    name = zip_path.stem if name is None else name
    if not NAME.fullmatch(name) or name.strip() != name or name.endswith("."):
        raise ModelError(f"{zip_path}: {name!r} is not a usable model name (letters, digits, '.', '_', '-' "
                         f"and spaces; one folder name)")
    return Path(dest_root) / name


def read_shared(zip_path: str | os.PathLike, sink: Callable[[str, bytes], None] | None = None) -> dict:
    """Check a model archive and return its manifest; each checked file goes to ``sink(name, data)``
    (the card first, then one file at a time: never the whole model in memory; nothing is written
    when ``sink`` is None). Whatever the sink got is to be discarded when this raises.

    Raises:
        ArchiveError: not a zip, or a hostile one (see :class:`core.io.archive.SafeZip`).
        ModelError: no manifest, unexpected members, wrong sizes or hashes, an unusable card.
    """
    where = str(zip_path)
    sz = SafeZip(where, where)
    try:
        members = {i.filename: i for i in sz.zf.infolist()}
        if MANIFEST not in members:
            raise ModelError(f"{where}: no {MANIFEST}: not a LiverSeg model archive (liverseg export-model makes one)")
        manifest = _check_manifest(_read_json(sz.read(members[MANIFEST], MAX_JSON), f"{where}::{MANIFEST}"), where)
        files = manifest["files"]
        extra = sorted(set(members) - set(files) - {MANIFEST})
        if extra:
            raise ModelError(f"{where}: unexpected member {extra[0]!r} (only {MANIFEST} and the files it lists); "
                             "refused")
        missing = sorted(set(files) - set(members))
        if missing:
            raise ModelError(f"{where}: {missing[0]} is listed in the manifest but missing")
        for n in sorted(files, key=lambda n: n != CARD):
            rec = files[n]
            if members[n].file_size != rec["size"]:
                raise ModelError(f"{where}: {n} holds {members[n].file_size} bytes, the manifest says {rec['size']}")
            data = sz.read(members[n], min(rec["size"], MAX_JSON if n == CARD else MAX_FILE))
            if hashlib.sha256(data).hexdigest() != rec["sha256"]:
                raise ModelError(f"{where}: {n} does not match its sha256 in the manifest (damaged or altered); "
                                 "refused")
            if n == CARD:
                card = check_card(_read_json(data, f"{where}::{CARD}"), f"{where}::{CARD}")
                if card["stage"] != manifest.get("stage"):
                    raise ModelError(f"{where}: the manifest says a {manifest.get('stage')} model, "
                                     f"its card a {card['stage']} model")
            if sink is not None:
                sink(n, data)
            del data
    finally:
        sz.close()
    return manifest


def import_model(zip_path: str | os.PathLike, dest_root: str | os.PathLike | None = None,
                 name: str | None = None, force: bool = False) -> Path:
    """Install a model archive as ``dest_root/<name>`` (default: the user's models folder and the
    zip's name); returns that folder's ``model.keras`` path (absent for an ONNX-only model, as in
    :func:`core.catalog.library.model_files`).

    Raises:
        ArchiveError, ModelError: a refused archive (see :func:`read_shared`), a bad name, or an
            existing folder of that name (without ``force``, which replaces it).
    """
    target = target_folder(zip_path, dest_root, name)
    root = target.parent
    if target.exists() and not force:  # before reading a large archive; checked again below
        raise ModelError(f"{target}: a model of this name is installed already (replace it with --force, "
                         f"or choose another with --name)")
    stage = root / f".{target.name}.{secrets.token_hex(4)}.importing"

    def sink(n: str, data: bytes) -> None:  # called first with the checked card: a refused archive writes nothing
        if not stage.is_dir():
            root.mkdir(parents=True, exist_ok=True)
            stage.mkdir()  # the umask's permissions, as any folder the user makes
        write_bytes(stage / n, data)

    old = None
    try:
        read_shared(zip_path, sink)
        if target.exists() or target.is_symlink():
            if not force:
                raise ModelError(f"{target}: a model of this name is installed already (replace it with --force)")
            old = root / f".{target.name}.{secrets.token_hex(4)}.replaced"
            os.replace(target, old)
        os.replace(stage, target)
    except BaseException as exc:
        shutil.rmtree(stage, ignore_errors=True)
        if old is not None and not target.exists():
            with contextlib.suppress(OSError):
                os.replace(old, target)  # the model that was there stays
                old = None
        if isinstance(exc, OSError):
            raise ModelError(f"{target}: cannot install the model ({one_line(exc, 160)})") from None
        raise
    finally:
        if old is not None and target.exists():
            shutil.rmtree(old, ignore_errors=True)
    return target / MODEL

