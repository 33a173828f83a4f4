"""The PDF report of a segmented study (``File > Export > Report (PDF)``, ``liverseg predict --pdf``).

Written with fpdf2 (pure Python, maintained, no system libraries: it runs in the lite bundle and on
a server without a display, which Qt's PDF writer would not without a GUI application). Content: the
study (patient id, study date, series), the models (each card's line and the engine that ran it),
liver volume and tumour burden, the lesion table with each lesion's review state, an axial key
image through each lesion's centre (CT in the liver window, liver outline green, tumour red), a 3D
snapshot (a depth-shaded front view of liver and tumours) and the research-use notice. Written
atomically, never into the study's source folder (:func:`core.io.export.check_target`).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..runtime.labels import LIVER, TUMOUR
from ..runtime.summary import LesionSummary, StudySummary
from .export import _write, check_target

NOTICE = ("Research use only. Not for clinical decisions: the segmentation is made by models trained on a "
          "small public dataset (see each model's card) and must be checked by a qualified reader.")
WINDOW = (-100.0, 250.0)  # the liver window of the key images (HU)
KEY_FIELD_MM = 90.0  # the side of a key image, in mm
MAX_KEY_IMAGES = 24


def _latin(text) -> str:
    """fpdf2's core fonts are Latin-1: other characters become '?'."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


def key_image(hu: np.ndarray, label: np.ndarray, spacing, centre, field_mm: float = KEY_FIELD_MM) -> np.ndarray:
    """RGB uint8 crop of the axial slice through ``centre`` (z, y, x voxels), ``field_mm`` wide, with
    the liver outlined in green and the tumour filled in translucent red (square pixels)."""
    z, y, x = (int(round(c)) for c in centre)
    z = min(max(z, 0), hu.shape[0] - 1)
    half = [max(4, int(field_mm / 2 / s)) for s in spacing[1:]]
    ys = slice(max(0, y - half[0]), min(hu.shape[1], y + half[0]))
    xs = slice(max(0, x - half[1]), min(hu.shape[2], x + half[1]))
    ct = np.clip((hu[z, ys, xs].astype(np.float32) - WINDOW[0]) / (WINDOW[1] - WINDOW[0]), 0, 1) * 255
    rgb = np.repeat(ct[..., None], 3, axis=2)
    lab = label[z, ys, xs]
    tumour = lab == TUMOUR
    rgb[tumour] = 0.55 * rgb[tumour] + 0.45 * np.array([255, 40, 40])
    liver = lab >= LIVER
    edge = liver & ~ndimage.binary_erosion(liver, border_value=1)  # the crop's border is no edge
    rgb[edge] = [40, 220, 60]
    t_edge = tumour & ~ndimage.binary_erosion(tumour, border_value=1)
    rgb[t_edge] = [255, 30, 30]
    img = rgb.astype(np.uint8)
    return _square_pixels(img, spacing[1], spacing[2])


def _square_pixels(img: np.ndarray, sy: float, sx: float) -> np.ndarray:
    """Resample rows so that a pixel is as tall as it is wide (nearest neighbour)."""
    if abs(sy - sx) < 1e-6:
        return img
    rows = max(1, int(round(img.shape[0] * sy / sx)))
    idx = np.minimum((np.arange(rows) * img.shape[0] / rows).astype(int), img.shape[0] - 1)
    return img[idx]


def snapshot_3d(label: np.ndarray, spacing) -> np.ndarray:
    """A 3D snapshot without OpenGL: the labels seen from the front (anterior), each pixel the first
    liver or tumour voxel along the ray, shaded by its depth; tumours red, liver green; head up."""
    fg = label > 0
    if not fg.any():
        return np.full((64, 64, 3), 255, np.uint8)
    hit = np.asarray(fg.any(axis=1))  # [Z, X]
    first = np.argmax(fg, axis=1)  # the front-most row (y grows to the back)
    value = np.take_along_axis(label, first[:, None, :], axis=1)[:, 0, :]
    ys = np.nonzero(fg.any(axis=(0, 2)))[0]
    depth = (first - ys.min()) / max(1, ys.max() - ys.min())
    shade = (1.0 - 0.7 * depth)[..., None]
    colour = np.where((value == TUMOUR)[..., None], [230, 40, 40], [60, 190, 80])
    rgb = np.where(hit[..., None], colour * shade + 20, 255).astype(np.uint8)
    rgb = rgb[::-1]  # slice 0 at the feet: head up
    zs, xs = np.nonzero(hit[::-1])
    rgb = rgb[zs.min():zs.max() + 1, xs.min():xs.max() + 1]
    return _square_pixels(rgb, spacing[0], spacing[2])


def _png(img: np.ndarray) -> io.BytesIO:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    buf.seek(0)
    return buf


def _models_lines(report: dict) -> list[str]:
    out = []
    engines = (report.get("engine") or {}).get("engines") or {}
    for stage in ("liver", "tumor"):
        card = (report.get("models") or {}).get(stage)
        if not card:
            continue
        name = card.get("label") or card.get("name") or "?"
        trained = card.get("date", "")
        line = f"{stage}: {name}" + (f" ({trained})" if trained else "")
        if engines.get(stage):
            line += f"; engine {engines[stage]}"
        out.append(line)
    return out or ["(no models: the segmentation was drawn or loaded by hand)"]


def _phase_text(phase: dict | None) -> str:
    """The report's ``phase`` (:meth:`core.study.phase.PhaseEstimate.to_json`) as one line."""
    if not phase:
        return "-"
    return f"{phase.get('phase', '?')} (read from the images: {phase.get('reason', '')})"


def write_pdf_report(path, report: dict, hu: np.ndarray, label: np.ndarray, spacing,
                     study: dict | None = None, force: bool = False, source_dirs=(),
                     summary: StudySummary | None = None) -> Path:
    """Write the report (``report``: :meth:`core.study.session.StudySession.report`; ``study``: patient
    id, study date, series description; ``summary``: the measurements in it, read from ``report``
    when not given). Returns the path."""
    from fpdf import FPDF
    p = check_target(path, force, source_dirs)
    study = study or {}
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title("LiverSeg Studio report")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "LiverSeg Studio: liver and tumour report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    rows = [("Study", report.get("study", "")), ("Patient id", study.get("patient_id", "") or "-"),
            ("Study date", study.get("study_date", "") or "-"), ("Series", study.get("series", "") or "-"),
            ("Series UID", report.get("series_uid") or "-"),
            ("Contrast phase", _phase_text(report.get("phase"))),
            ("Size, spacing", f"{' x '.join(str(n) for n in report.get('shape', []))} voxels, "
                              f"{' x '.join(f'{s:.2f}' for s in report.get('spacing_mm', []))} mm"),
            ("Written", time.strftime("%Y-%m-%d %H:%M"))]
    for k, v in rows:
        pdf.cell(32, 5, _latin(k))
        pdf.multi_cell(0, 5, _latin(v), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Models", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for line in _models_lines(report):
        pdf.multi_cell(0, 5, _latin(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    summary = summary if summary is not None else StudySummary.from_json(report)
    lesions = summary.lesions
    pdf.cell(0, 7, _latin(f"Liver {summary.liver_ml:.1f} mL    tumour {summary.tumour_ml:.2f} mL    "
                          f"burden {summary.tumour_burden_pct:.2f} %    {len(lesions)} lesion(s)"),
             new_x="LMARGIN", new_y="NEXT")
    _lesion_table(pdf, summary.table())
    for w in report.get("warnings", []):
        pdf.set_font("Helvetica", "I", 8)
        pdf.multi_cell(0, 4, _latin("Warning: " + w), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "3D view (front)", new_x="LMARGIN", new_y="NEXT")
    snap = snapshot_3d(label, spacing)
    h = min(90.0, 80.0 * snap.shape[0] / snap.shape[1])
    pdf.image(_png(snap), h=h)
    if lesions:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 7, "Key images (axial, through each lesion's centre)", new_x="LMARGIN", new_y="NEXT")
        _key_images(pdf, lesions[:MAX_KEY_IMAGES], hu, label, spacing)
        if len(lesions) > MAX_KEY_IMAGES:
            pdf.set_font("Helvetica", "I", 8)
            pdf.cell(0, 5, f"(the first {MAX_KEY_IMAGES} of {len(lesions)} lesions)", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 9)
    pdf.multi_cell(0, 5, NOTICE, new_x="LMARGIN", new_y="NEXT")
    _write(p, bytes(pdf.output()))
    return p


LESION_COLS = [("id", 10), ("slices", 22), ("volume mL", 24), ("diameter mm", 26), ("mean HU", 20), ("review", 24)]


def _lesion_table(pdf, numbered: list[LesionSummary]) -> None:
    pdf.set_font("Helvetica", "B", 8)
    for name, w in LESION_COLS:
        pdf.cell(w, 5, name, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    for r in numbered:
        mean = r.mean_hu
        vals = [str(r.id), f"{r.slices[0] + 1}-{r.slices[1] + 1}", f"{r.volume_ml:.2f}",
                f"{r.longest_axial_diameter_mm:.1f}", "-" if mean is None else f"{mean:.0f}", r.review]
        for (_, w), v in zip(LESION_COLS, vals, strict=True):
            pdf.cell(w, 5, _latin(v), border=1)
        pdf.ln()
    if not numbered:
        pdf.cell(0, 5, "no lesion", new_x="LMARGIN", new_y="NEXT")


def _key_images(pdf, lesions: list[LesionSummary], hu, label, spacing, per_row: int = 3, size: float = 58.0) -> None:
    x0 = pdf.l_margin
    for i, les in enumerate(lesions):
        col = i % per_row
        if col == 0 and i:
            pdf.ln(size + 8)
        if pdf.get_y() + size + 8 > pdf.h - pdf.b_margin:
            pdf.add_page()
        y = pdf.get_y()
        img = key_image(hu, label, spacing, les.centroid)
        x = x0 + col * (size + 4)
        pdf.image(_png(img), x=x, y=y, w=size)
        pdf.set_xy(x, y + size * img.shape[0] / img.shape[1] + 1)
        pdf.set_font("Helvetica", "", 7)
        pdf.cell(size, 4, _latin(f"lesion {les.id}: slice {int(round(les.centroid[0])) + 1}, "
                                 f"{les.volume_ml:.2f} mL, {les.review}"))
        pdf.set_xy(x0, y)
    pdf.ln(size + 8)
