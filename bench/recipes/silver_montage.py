"""Review montages of a label volume: axial slices across the liver, and a coronal and a sagittal
view through its centre, with the outlines drawn on the CT (liver green, tumour red; with
``--compare``, the teacher's outlines yellow and the cascade's cyan on the axial tiles' right half).

Used by ``bench/recipes/silver_labels.py montage``; the montages of the committed silver labels are in
``resources/training-labels/hcc-tace-seg/montages/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from core.datasets.hcc_tace import SERIES, load_volume
from core.io.label_file import read_nifti_label
from core.runtime.labels import TUMOUR

WINDOW = (-150.0, 250.0)
GREEN, RED, YELLOW, CYAN = (40, 230, 40), (255, 40, 40), (255, 230, 0), (0, 220, 255)
TILE = 320
COLUMNS = 5
MARGIN_MM = 25.0


def _grey(img: np.ndarray) -> np.ndarray:
    lo, hi = WINDOW
    g = np.clip((img.astype(np.float32) - lo) / (hi - lo), 0, 1) * 255
    return np.repeat(g.astype(np.uint8)[..., None], 3, axis=2)


def _panel(hu2d, labs: list[tuple[np.ndarray, np.ndarray]], aspect: float, size: int,
           right=()) -> Image.Image:
    """One view: ``labs`` is [(mask, colour)], ``right`` the same drawn on the right half only (the
    left half keeps ``labs``); ``aspect`` = row spacing / column spacing."""
    rgb = _grey(hu2d)
    half = hu2d.shape[1] // 2
    for mask, colour in labs:
        edge = mask & ~ndimage.binary_erosion(mask)
        if right:
            edge[:, half:] = False
        rgb[edge] = colour
    for mask, colour in right:
        edge = mask & ~ndimage.binary_erosion(mask)
        edge[:, :half] = False
        rgb[edge] = colour
    h, w = rgb.shape[:2]
    im = Image.fromarray(rgb).resize((w, max(1, int(round(h * aspect)))), Image.NEAREST)
    scale = size / max(im.size)
    return im.resize((max(1, int(im.size[0] * scale)), max(1, int(im.size[1] * scale))), Image.NEAREST)


def montage(hu: np.ndarray, label: np.ndarray, spacing, title: str, compare=()) -> Image.Image:
    """The review sheet of one volume (``compare``: extra (label, colour) pairs outlined thinner)."""
    fg = label > 0
    zs = np.flatnonzero(fg.any(axis=(1, 2)))
    if len(zs) == 0:
        zs = np.arange(hu.shape[0])
    n = min(3 * COLUMNS, len(zs))
    picks = np.unique(np.linspace(zs[0], zs[-1], n).round().astype(int))
    cz, cy, cx = (np.array(ndimage.center_of_mass(fg)).round().astype(int) if fg.any()
                  else np.array(hu.shape) // 2)
    sz, sy, sx = spacing
    # the axial tiles show the liver's box (all slices) with a margin, so outlines are legible
    ys, xs = (np.flatnonzero(fg.any(axis=a)) for a in ((0, 2), (0, 1)))
    if len(ys) == 0:
        ys, xs = np.array([0, hu.shape[1] - 1]), np.array([0, hu.shape[2] - 1])
    my, mx = int(MARGIN_MM / sy), int(MARGIN_MM / sx)
    box = (slice(max(0, ys[0] - my), ys[-1] + my + 1), slice(max(0, xs[0] - mx), xs[-1] + mx + 1))
    tiles = []
    for z in picks:
        labs = [(label[z][box] > 0, GREEN), (label[z][box] == TUMOUR, RED)]
        right = [(m, colour) for other, colour in compare for m in (other[z][box] > 0, other[z][box] == TUMOUR)]
        t = _panel(hu[z][box], labs, sy / sx, TILE, right)
        ImageDraw.Draw(t).text((4, 4), f"z {z}", fill=(255, 255, 255))
        tiles.append(t)
    big = 2 * TILE
    cor = _panel(hu[::-1, cy, :], [(label[::-1, cy, :] > 0, GREEN), (label[::-1, cy, :] == TUMOUR, RED)],
                 sz / sx, big)
    sag = _panel(hu[::-1, :, cx], [(label[::-1, :, cx] > 0, GREEN), (label[::-1, :, cx] == TUMOUR, RED)],
                 sz / sy, big)
    rows = (len(tiles) + COLUMNS - 1) // COLUMNS
    sheet = Image.new("RGB", (COLUMNS * TILE, rows * TILE + max(cor.size[1], sag.size[1]) + 8), (0, 0, 0))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % COLUMNS) * TILE, (i // COLUMNS) * TILE))
    y0 = rows * TILE
    sheet.paste(cor, (0, y0))
    sheet.paste(sag, (big + 8, y0))
    vml = float(np.prod(spacing)) / 1000.0
    ImageDraw.Draw(sheet).text(
        (big * 2 + 24, y0 + 8),
        f"{title}\nliver {fg.sum() * vml:.0f} mL\ntumour {(label == TUMOUR).sum() * vml:.1f} mL\n"
        f"coronal y={cy}, sagittal x={cx}\ngreen liver, red tumour" + ("\nyellow teacher, cyan cascade (right half)"
                                                                        if compare else ""),
        fill=(255, 255, 255))
    return sheet


def cmd_montage(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for s in SERIES:
        if args.only and s.name not in args.only:
            continue
        path = next((p for p in (Path(args.labels) / f"{s.name}.nii.gz", Path(args.labels) / f"{s.name}_fused.nii.gz")
                     if p.exists()), None)
        if path is None:
            continue
        vol = load_volume(args.unpacked, s)
        label = read_nifti_label(path, vol)
        compare = []
        if args.compare:
            for stem, colour in (("_labels", YELLOW), ("_cascade", CYAN)):
                for p in Path(args.compare).glob(f"{s.name}{stem}.nii.gz"):
                    compare.append((read_nifti_label(p, vol), colour))
        img = montage(vol.hu, label, vol.spacing, f"{s.name} ({s.phase}, {s.slice_mm:g} mm)", compare)
        img.save(out / f"{s.name}.png", optimize=True)
        print(out / f"{s.name}.png", flush=True)
