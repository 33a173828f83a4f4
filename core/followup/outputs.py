"""Writing a comparison: ``compare.json``, ``compare.csv`` and the PDF follow-up section.

Why three: the JSON keeps everything for other programs (its keys are stable,
:data:`core.followup.compare.JSON_KEYS`), the CSV is the lesion-by-lesion table a spreadsheet opens,
and the PDF is what a reader looks at: the studies, the registration's figures, per target a key
image at both time points, the RECIST 1.1 and mRECIST categories with what they rest on, what the
software does not decide, and the research-use notice. Every file is written atomically, never over
an existing file without ``force`` and never into a source DICOM folder (:func:`core.io.export.check_target`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..io.export import _write, check_target, write_csv_rows
from ..io.report_pdf import _latin, _png, key_image
from .compare import NOTICE, Comparison
from .diameters import LesionMeasure
from .recist import NOT_DECIDED, Response
from .timepoint import TimePoint

CSV_COLUMNS = ("match", "baseline_ids", "followup_ids", "recist_target", "mrecist_target",
               "baseline_longest_mm", "baseline_perpendicular_mm", "baseline_viable_mm", "baseline_ml",
               "followup_longest_mm", "followup_perpendicular_mm", "followup_viable_mm", "followup_ml",
               "volume_change_ml", "volume_change_pct", "distance_mm")


def _json_safe(v):
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


def write_json(path, comparison: Comparison, force: bool = False, source_dirs: Iterable[str] = ()) -> Path:
    """``compare.json``: :meth:`Comparison.to_json` (non-finite numbers as null)."""
    p = check_target(path, force, source_dirs)
    text = json.dumps(_json_safe(comparison.to_json()), indent=2, allow_nan=False) + "\n"
    _write(p, text.encode("utf-8"))
    return p


def _fmt(values) -> str:
    return ";".join("" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v)) for v in values)


def csv_rows(c: Comparison) -> list[dict]:
    """One row per lesion group (:data:`CSV_COLUMNS`); a group's several lesions joined by ';'."""
    b = {les.id: les for les in c.baseline.lesions}
    f = {les.id: les for les in c.followup.lesions}
    rt = {t.baseline_id for t in c.recist.targets}
    mt = {t.baseline_id for t in c.mrecist.targets}
    rows = []
    for m in c.matches:
        lb, lf = [b[i] for i in m.baseline_ids], [f[j] for j in m.followup_ids]
        pct = m.volume_change_pct
        rows.append({"match": m.status, "baseline_ids": _fmt(m.baseline_ids), "followup_ids": _fmt(m.followup_ids),
                     "recist_target": _fmt(i for i in m.baseline_ids if i in rt),
                     "mrecist_target": _fmt(i for i in m.baseline_ids if i in mt),
                     "baseline_longest_mm": _fmt(x.longest_mm for x in lb),
                     "baseline_perpendicular_mm": _fmt(x.perpendicular_mm for x in lb),
                     "baseline_viable_mm": _fmt(x.viable_mm for x in lb), "baseline_ml": f"{m.baseline_ml:.4f}",
                     "followup_longest_mm": _fmt(x.longest_mm for x in lf),
                     "followup_perpendicular_mm": _fmt(x.perpendicular_mm for x in lf),
                     "followup_viable_mm": _fmt(x.viable_mm for x in lf), "followup_ml": f"{m.followup_ml:.4f}",
                     "volume_change_ml": f"{m.volume_change_ml:.4f}", "volume_change_pct": _fmt([pct]),
                     "distance_mm": _fmt([m.distance_mm])})
    return rows


def write_csv(path, comparison: Comparison, force: bool = False, source_dirs: Iterable[str] = ()) -> Path:
    """``compare.csv``: :func:`csv_rows` with a header."""
    return write_csv_rows(path, CSV_COLUMNS, csv_rows(comparison), force, source_dirs)


# -- the PDF --------------------------------------------------------------------------------------

def _line(pdf, text: str, size: int = 9, style: str = "", h: float = 5) -> None:
    pdf.set_font("Helvetica", style, size)
    pdf.multi_cell(0, h, _latin(text), new_x="LMARGIN", new_y="NEXT")


def _response(pdf, r: Response) -> None:
    _line(pdf, f"{r.version}: {r.category}", 11, "B", 7)
    for b in r.basis:
        _line(pdf, "- " + b, 8, "", 4)
    for t in r.targets:
        _line(pdf, f"  target {t.baseline_id}: {t.baseline_mm:.1f} mm -> {t.followup_mm:.1f} mm "
                   f"({t.status}"
                   f"{', follow-up lesion ' + ', '.join(map(str, t.followup_ids)) if t.followup_ids else ''})",
              8, "", 4)
    pdf.ln(1)


def _centre(les: LesionMeasure) -> tuple[float, float, float]:
    """The key image's centre: the long axis's slice, the lesion's centre in it."""
    return (float(les.axis_slice), les.centroid[1], les.centroid[2])


def _key_pair(pdf, c: Comparison, baseline: TimePoint, followup: TimePoint, target_id: int, size: float = 70) -> None:
    les = next(x for x in c.baseline.lesions if x.id == target_id)
    m = c.match_of("baseline", target_id)
    fu = [x for x in c.followup.lesions if m and x.id in m.followup_ids]
    if fu:
        big = max(fu, key=lambda x: x.longest_mm)
        where = _centre(big)
        fu_text = (f"follow-up lesion {', '.join(str(x.id) for x in fu)}: {big.longest_mm:.1f} x "
                   f"{big.perpendicular_mm:.1f} mm")
    else:  # gone: where the baseline lesion lies in the follow-up
        where = tuple(followup.grid.to_voxel(c.registration.to_followup([les.centroid_lps]))[0])
        fu_text = "follow-up: no lesion here (gone)"
    if pdf.get_y() + size + 12 > pdf.h - pdf.b_margin:
        pdf.add_page()
    _line(pdf, f"Target {target_id} ({m.status if m else 'gone'})", 9, "B")
    y, x0 = pdf.get_y(), pdf.l_margin
    for k, (tp, centre, text) in enumerate(((baseline, _centre(les), f"baseline lesion {les.id}: {les.longest_mm:.1f} "
                                             f"x {les.perpendicular_mm:.1f} mm, slice {les.axis_slice + 1}"),
                                            (followup, where, fu_text + f", slice {int(round(where[0])) + 1}"))):
        img = key_image(tp.hu, tp.label, tp.spacing, centre)
        x = x0 + k * (size + 8)
        pdf.image(_png(img), x=x, y=y, w=size)
        pdf.set_xy(x, y + size * img.shape[0] / img.shape[1] + 1)
        pdf.set_font("Helvetica", "", 7)
        pdf.cell(size, 4, _latin(text))
    pdf.set_xy(x0, y + size + 6)


def write_pdf(path, comparison: Comparison, baseline: TimePoint, followup: TimePoint, force: bool = False,
              source_dirs: Iterable[str] = ()) -> Path:
    """The follow-up section as a PDF (see the module for its content)."""
    from fpdf import FPDF
    c = comparison
    p = check_target(path, force, source_dirs)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title("LiverSeg Studio follow-up")
    pdf.add_page()
    _line(pdf, "LiverSeg Studio: follow-up comparison", 16, "B", 10)
    for label, part in (("Baseline", c.baseline), ("Follow-up", c.followup)):
        i = part.info
        _line(pdf, f"{label}: {i['name']}  patient {i['patient_id'] or '-'}  date {i['study_date'] or '-'}  "
                   f"phase {part.phase.phase} ({part.phase.reason})  {len(part.lesions)} lesion(s), "
                   f"tumour {part.tumour_ml:.2f} mL")
    reg = c.registration
    fit = reg.fit(reg.kind)
    fit_text = (f"; liver Dice {fit.liver_dice:.3f}, mean surface distance {fit.liver_msd_mm:.1f} mm"
                if fit and fit.liver_dice is not None else "")
    _line(pdf, f"Registration: {reg.kind}{fit_text} (on a {reg.grid_mm[1]:.1f} mm grid)")
    pct = c.tumour_change_pct
    _line(pdf, f"Total tumour volume {c.baseline.tumour_ml:.2f} mL -> {c.followup.tumour_ml:.2f} mL "
               f"({c.tumour_change_ml:+.2f} mL{'' if pct is None else f', {pct:+.1f} %'})", 10, "B", 6)
    for w in c.warnings:
        _line(pdf, "Warning: " + w, 8, "I", 4)
    pdf.ln(2)
    _response(pdf, c.recist)
    _response(pdf, c.mrecist)
    _line(pdf, "Lesions", 11, "B", 7)
    counts = {s: sum(m.status == s for m in c.matches) for s in ("same", "new", "gone", "merged", "split", "regrouped")}
    _line(pdf, ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no lesion at either time point", 8)
    for m in c.matches:
        d = "" if m.distance_mm is None else f", {m.distance_mm:.1f} mm apart after registration"
        _line(pdf, f"  {m.status}: baseline {list(m.baseline_ids) or '-'} -> follow-up {list(m.followup_ids) or '-'}: "
                   f"{m.baseline_ml:.2f} -> {m.followup_ml:.2f} mL{d}", 8, "", 4)
    targets = list(dict.fromkeys([t.baseline_id for t in c.recist.targets]
                                 + [t.baseline_id for t in c.mrecist.targets]))
    if targets:
        pdf.add_page()
        _line(pdf, "Targets at both time points (axial, through each long axis)", 11, "B", 7)
        for t in targets:
            _key_pair(pdf, c, baseline, followup, t)
    pdf.ln(3)
    _line(pdf, "Not decided by the software (the reader decides):", 9, "B")
    for n in NOT_DECIDED:
        _line(pdf, "- " + n, 8, "", 4)
    _line(pdf, f"Written {time.strftime('%Y-%m-%d %H:%M')}", 7, "", 4)
    pdf.ln(2)
    _line(pdf, NOTICE, 9, "B")
    _write(p, bytes(pdf.output()))
    return p


def write_all(out_dir, comparison: Comparison, baseline: TimePoint, followup: TimePoint, force: bool = False,
              source_dirs: Iterable[str] = (), pdf: bool = True) -> list[Path]:
    """``out_dir``/compare.json, compare.csv and (``pdf``) compare.pdf; all checked before any is written."""
    out = Path(out_dir)
    names = ["compare.json", "compare.csv"] + (["compare.pdf"] if pdf else [])
    for n in names:
        check_target(out / n, force, source_dirs)
    paths = [write_json(out / names[0], comparison, force, source_dirs),
             write_csv(out / names[1], comparison, force, source_dirs)]
    if pdf:
        paths.append(write_pdf(out / names[2], comparison, baseline, followup, force, source_dirs))
    return paths

