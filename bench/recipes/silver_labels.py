"""Silver labels for the HCC-TACE-Seg series: the teacher's masks fused with the cascade's, and
montages to review them.

Not part of the product and never run by the tests (the teacher runs in a scratch environment:
``../shared/tools/README.md``). Steps, each resumable (existing outputs are kept):

    python bench/recipes/silver_labels.py cascade --unpacked SCRATCH --out WORK     # the default cascade
    python bench/recipes/silver_labels.py fuse --unpacked SCRATCH --teacher TEACHER_OUT --out WORK
    python bench/recipes/silver_labels.py montage --unpacked SCRATCH --labels DIR --out PNG_DIR [--compare WORK]
    python bench/recipes/silver_labels.py finalize --unpacked SCRATCH --work WORK \
        --out resources/training-labels/hcc-tace-seg     # applies corrections.json there

``SCRATCH`` is where :func:`core.datasets.hcc_tace.unpack` put the archives; ``TEACHER_OUT`` holds
``NAME_labels.nii.gz`` from ``teacher_unet3d.py --dicom NAME DIR [--acquisition NAME N]``;
``WORK`` gets ``NAME_cascade.nii.gz``, ``NAME_fused.nii.gz`` and ``agreement.json`` (teacher against
cascade, per volume). The fused labels are reviewed on the montages; the corrections (the
product's tools: remove region, add lesion, brushes) are listed in ``corrections.json`` beside the
committed labels and applied by ``finalize``, so the labels can be made again from the teacher's
and the cascade's masks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.datasets.hcc_tace import SERIES, HccSeries, load_volume  # noqa: E402
from core.io.export import write_nifti  # noqa: E402
from core.io.label_file import read_nifti_label  # noqa: E402
from core.runtime.labels import LIVER, TUMOUR  # noqa: E402

# A cascade lesion joins the teacher's when most of it lies inside the teacher's liver and it is not
# as bright as contrast-filled bowel or vessels (the cascade's false lesions on these series).
INSIDE_SHARE = 0.8
MAX_LESION_HU = 180.0
MIN_LESION_ML = 0.3
MIN_SILVER_LESION_ML = 0.1
SAME_LESION_SHARE = 0.2  # a cascade lesion this much inside a teacher lesion (and half inside the liver)
# extends it, whatever its HU  # smaller tumour fragments (under a 6 mm ball) become liver
MAX_SD_RATIO = 1.5
# The cascade's own large additions on these scans are the heart above the dome and bowel or stomach
# beside the liver (seen on HCC_006 and HCC_015): only small ones (gaps at the teacher's edge) count.
MAX_CASCADE_ONLY_ML = 10.0
BULK_MM = 3.0  # a disputed region thicker than this (in plane) is judged by its HU, thinner follows the teacher


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    n = int(a.sum()) + int(b.sum())
    return None if n == 0 else round(2.0 * int(np.logical_and(a, b).sum()) / n, 4)


def fuse(hu: np.ndarray, teacher: np.ndarray, cascade: np.ndarray, voxel_ml: float,
         px_mm: float = 0.7, slice_mm: float = 2.5) -> tuple[np.ndarray, dict]:
    """Liver: where the teacher and the cascade agree, plus each bulky region only one of them calls
    liver whose median HU lies within the agreed liver's 10-90th percentiles and whose spread is no
    more than 1.5 times the liver's (a region only the cascade calls liver: at most 10 mL)
    (bowel and stomach with contrast or enhancing folds, fat and the
    heart are not); the thin rims where they differ follow the teacher (the better
    liver outline on other hospitals' CT). Then the largest 3D component, holes filled per slice.
    Tumour: the teacher's lesions inside that liver plus the cascade's that pass the rules above."""
    t_liver, c_liver = teacher > 0, cascade > 0
    agree = t_liver & c_liver
    disagree = t_liver ^ c_liver
    r = max(1, int(round(BULK_MM / px_mm)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = ((yy * yy + xx * xx) <= r * r)[None]
    # bulky in z too (3 slices where they are thin): a slice the cascade lost half of (its horizontal
    # gaps in the coronal view) is thin along z and follows the teacher, not judged by HU
    slab = np.repeat(disk, 3 if slice_mm <= 3.5 else 1, axis=0)
    bulk = ndimage.binary_opening(disagree, structure=slab)
    liver = agree | (t_liver & disagree & ~bulk)
    ref = hu[ndimage.binary_erosion(agree, iterations=2)] if agree.sum() > 1000 else hu[agree]
    lo, hi = (np.percentile(ref, [10, 90]) if ref.size else (40.0, 200.0))
    sd_max = MAX_SD_RATIO * (float(ref.std()) if ref.size else 30.0)
    lab, _ = ndimage.label(bulk)
    regions = []
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        comp = lab[sl] == i
        ml = float(comp.sum()) * voxel_ml
        vals = hu[sl][comp].astype(np.float32)
        med, sd = float(np.median(vals)), float(vals.std())
        whose = "teacher" if bool(t_liver[sl][comp].mean() > 0.5) else "cascade"
        keep = bool(lo <= med <= hi and sd <= sd_max and (whose == "teacher" or ml <= MAX_CASCADE_ONLY_ML))
        if keep:
            liver[sl] |= comp
        elif whose == "teacher" and ml >= 5.0:  # liver beside bowel in one region: keep its liver-like parts
            part = _liver_like(hu[sl], comp, lo, hi, sd_max, disk)
            liver[sl] |= part
            if part.any():
                regions.append({"only": whose, "ml": round(float(part.sum()) * voxel_ml, 1),
                                "part_of_ml": round(ml, 1), "kept": True})
        if ml >= 1.0:
            regions.append({"only": whose, "ml": round(ml, 1), "median_hu": round(med, 1), "sd_hu": round(sd, 1),
                            "kept": keep})
    lab, n = ndimage.label(liver)
    if n > 1:
        liver = lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:]))
    for z in range(liver.shape[0]):
        liver[z] = ndimage.binary_fill_holes(liver[z])
    tumour = (teacher == TUMOUR) & liver
    clab, cn = ndimage.label(cascade == TUMOUR)
    kept, dropped = [], []
    for i, sl in enumerate(ndimage.find_objects(clab), start=1):
        comp = clab[sl] == i
        ml = float(comp.sum()) * voxel_ml
        inside = float(liver[sl][comp].mean())
        mean_hu = float(hu[sl][comp].mean())
        shared = float((teacher[sl][comp] == TUMOUR).mean())
        row = {"ml": round(ml, 2), "inside": round(inside, 2), "mean_hu": round(mean_hu, 1),
               "teacher_share": round(shared, 2)}
        # the same lesion as one of the teacher's (lipiodol-laden after chemo-embolisation: bright, yet tumour)
        same = shared >= SAME_LESION_SHARE and inside >= 0.5
        if same:  # the teacher's liver leaves the dense deposits out too: they join liver and tumour
            tumour[sl] |= comp
            liver[sl] |= comp
            kept.append(row)
        elif ml >= MIN_LESION_ML and inside >= INSIDE_SHARE and mean_hu <= MAX_LESION_HU:
            tumour[sl] |= comp & liver[sl]
            kept.append(row)
        else:
            dropped.append(row)
    tlab, _ = ndimage.label(tumour, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(tlab.ravel())
    small = sizes * voxel_ml < MIN_SILVER_LESION_ML
    small[0] = False
    tumour &= ~small[tlab]  # fragments of the teacher's resampled lesion masks: liver
    out = np.zeros(teacher.shape, np.uint8)
    out[liver] = LIVER
    out[tumour] = TUMOUR
    return out, {"liver_hu_p10_p90": [round(float(lo), 1), round(float(hi), 1)], "max_sd": round(sd_max, 1),
                 "disputed_regions": regions,
                 "cascade_lesions_kept": kept, "cascade_lesions_dropped": dropped}


def _liver_like(hu: np.ndarray, region: np.ndarray, lo: float, hi: float, sd_max: float,
                disk: np.ndarray) -> np.ndarray:
    """The parts of ``region`` that look like liver voxel by voxel (local median HU in the liver's range,
    local spread low), opened so thin walls and rims fall away, each part judged again as a whole."""
    h = hu.astype(np.float32)
    med = ndimage.median_filter(h, size=(1, 5, 5))
    mean = ndimage.uniform_filter(h, size=(1, 5, 5))
    local_sd = np.sqrt(np.maximum(ndimage.uniform_filter(h * h, size=(1, 5, 5)) - mean * mean, 0))
    cand = region & (med >= lo) & (med <= hi) & (local_sd <= sd_max)
    cand = ndimage.binary_opening(cand, structure=disk)
    out = np.zeros_like(region)
    lab, _ = ndimage.label(cand)
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        comp = lab[sl] == i
        vals = h[sl][comp]
        if comp.sum() >= 200 and lo <= float(np.median(vals)) <= hi and float(vals.std()) <= sd_max:
            out[sl] |= comp
    return out


def agreement(teacher: np.ndarray, other: np.ndarray, voxel_ml: float) -> dict:
    return {"liver_dice": dice(teacher > 0, other > 0), "tumour_dice": dice(teacher == TUMOUR, other == TUMOUR),
            "liver_ml": [round(float((x > 0).sum()) * voxel_ml, 1) for x in (teacher, other)],
            "tumour_ml": [round(float((x == TUMOUR).sum()) * voxel_ml, 1) for x in (teacher, other)]}


def cmd_cascade(args) -> None:
    from core.catalog.library import default_models
    from core.study.session import StudySession
    from core.study.study import Study
    liver, tumour = (m.path for m in default_models())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for s in _series(args):
        path = out / f"{s.name}_cascade.nii.gz"
        if path.exists():
            continue
        vol = load_volume(args.unpacked, s)
        session = StudySession(Study.from_volume(vol, s.name), "")
        seg = session.segment(liver, tumour, engine=args.engine)
        write_nifti(path, seg.label, vol, force=True)
        print(s.name, "cascade done", flush=True)


def cmd_fuse(args) -> None:
    out = Path(args.out)
    report = {}
    rp = out / "agreement.json"
    if rp.exists():
        report = json.loads(rp.read_text())
    for s in _series(args):
        tpath = Path(args.teacher) / f"{s.name}_labels.nii.gz"
        cpath = out / f"{s.name}_cascade.nii.gz"
        if not tpath.exists() or not cpath.exists():
            print(s.name, "waiting for", "teacher" if not tpath.exists() else "cascade")
            continue
        vol = load_volume(args.unpacked, s)
        teacher, cascade = read_nifti_label(tpath, vol), read_nifti_label(cpath, vol)
        vml = float(np.prod(vol.spacing)) / 1000.0
        fused, rules = fuse(vol.hu, teacher, cascade, vml, float(vol.spacing[1]), float(vol.spacing[0]))
        write_nifti(out / f"{s.name}_fused.nii.gz", fused, vol, force=True)
        report[s.name] = {"teacher_vs_cascade": agreement(teacher, cascade, vml),
                          "teacher_vs_fused": agreement(teacher, fused, vml), **rules}
        print(s.name, json.dumps(report[s.name]["teacher_vs_cascade"]), flush=True)
    rp.write_text(json.dumps(report, indent=1))


def apply_corrections(hu: np.ndarray, label: np.ndarray, spacing, edits: list[dict]) -> list[str]:
    """Apply the reviewed corrections with the product's own tools, in order; returns what each did.

    Each edit: ``{"tool": "remove" | "add_lesion" | "grow" | "shrink", "at": [z, y, x], "scope":
    "3d" | "slice", "why": ...}`` (:mod:`core.study.fixes`) or ``{"tool": "erase" | "liver" |
    "tumor", "at": [z, y, x], "radius": px, "to_z": z2, "why": ...}``, a brush disc on slices z..z2
    (:meth:`core.study.editing.LabelEditor.paint`).
    """
    from core.study import fixes
    from core.study.editing import LabelEditor
    done = []
    editor = LabelEditor(label)
    for e in edits:
        z, y, x = e["at"]
        tool = e["tool"]
        if tool in ("erase", "liver", "tumor"):
            n = sum(editor.paint(k, y, x, e["radius"], tool) for k in range(z, e.get("to_z", z) + 1))
            done.append(f"{tool} brush r={e['radius']} px at ({z}, {y}, {x}) to z {e.get('to_z', z)}: {n} voxels")
            continue
        if tool == "remove":
            fix = fixes.remove_region(label, (z, y, x), spacing, e.get("scope", "3d"))
        elif tool == "add_lesion":
            fix = fixes.add_lesion(hu, label, (z, y, x), spacing)
        elif tool == "grow":
            fix = fixes.grow_lesion(hu, label, (z, y, x), spacing)
        elif tool == "shrink":
            fix = fixes.shrink_lesion(label, (z, y, x), spacing)
        else:
            raise ValueError(f"unknown correction tool {tool!r}")
        editor.apply(fix.flat, fix.value)
        done.append(f"{tool} at ({z}, {y}, {x}): {fix.message}")
    return done


def cmd_finalize(args) -> None:
    """Fused labels + ``corrections.json`` -> the committed labels and their montages."""
    from PIL import Image

    from bench.recipes.silver_montage import montage
    out = Path(args.out)
    (out / "montages").mkdir(parents=True, exist_ok=True)
    corrections = json.loads((out / "corrections.json").read_text()) if (out / "corrections.json").exists() else {}
    log = {}
    for s in _series(args):
        src = Path(args.work) / f"{s.name}_fused.nii.gz"
        if not src.exists():
            continue
        vol = load_volume(args.unpacked, s)
        label = read_nifti_label(src, vol).astype(np.uint8)
        log[s.name] = apply_corrections(vol.hu, label, vol.spacing, corrections.get(s.name, []))
        if not s.tumours:  # unenhanced 10 mm: liver-only labels (core.datasets.hcc_tace.HccSeries.tumours)
            label[label == TUMOUR] = LIVER
            log[s.name].append("liver only: tumour voxels set to liver")
        write_nifti(out / f"{s.name}.nii.gz", label, vol, force=True)
        sheet = montage(vol.hu, label, vol.spacing, f"{s.name} ({s.phase}, {s.slice_mm:g} mm), silver labels")
        sheet = sheet.resize((sheet.size[0] * 3 // 4, sheet.size[1] * 3 // 4))  # a few hundred KB in git
        sheet.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(out / "montages" / f"{s.name}.png",
                                                                            optimize=True)
        print(s.name, *log[s.name], sep="\n  ", flush=True)
    Path(args.work, "corrections_applied.json").write_text(json.dumps(log, indent=1))


def cmd_provenance(args) -> None:
    """The provenance table (markdown) of the committed labels: phase and why, volumes, agreement."""
    from core.study.phase import detect_phase
    agree = json.loads((Path(args.work) / "agreement.json").read_text())
    applied = json.loads((Path(args.work) / "corrections_applied.json").read_text())
    print("| volume | slices x mm | phase (aorta / liver vessels / parenchyma HU) | liver mL | tumour mL "
          "| teacher vs cascade liver Dice | fused from | corrections |")
    print("|---|---|---|---|---|---|---|---|")
    for s in _series(args):
        path = Path(args.out) / f"{s.name}.nii.gz"
        if not path.exists():
            continue
        vol = load_volume(args.unpacked, s)
        label = read_nifti_label(path, vol)
        ph = detect_phase(vol.hu, vol.spacing, label, vol.direction)
        vml = float(np.prod(vol.spacing)) / 1000.0
        a = agree[s.name]
        def ml(who: str, kept: bool, a=a) -> str:
            rows = [r for r in a["disputed_regions"] if r["only"] == who and r["kept"] == kept
                    and (kept or "part_of_ml" not in r)]
            return f"{sum(r['ml'] for r in rows):.0f}"
        fused = (f"disputed regions kept: teacher-only {ml('teacher', True)} mL, cascade-only {ml('cascade', True)} "
                 f"mL; dropped: teacher-only {ml('teacher', False)} mL, cascade-only {ml('cascade', False)} mL; "
                 f"{len(a['cascade_lesions_kept'])} cascade lesion(s) added")
        fixes = "; ".join(applied.get(s.name, [])) or "none"
        print(f"| {s.name} | {vol.shape[0]} x {vol.spacing[0]:g} | {ph.phase} ({ph.aorta_hu:.0f} / "
              f"{ph.vessels_hu:.0f} / {ph.liver_hu:.0f}) | {(label > 0).sum() * vml:.0f} | "
              f"{(label == TUMOUR).sum() * vml:.1f}{'' if s.tumours else ' (liver only)'} | "
              f"{a['teacher_vs_cascade']['liver_dice']:.3f} | {fused} | {fixes} |")


def _series(args) -> list[HccSeries]:
    return [s for s in SERIES if not args.only or s.name in args.only]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("cascade", "fuse", "montage", "finalize", "provenance"):
        p = sub.add_parser(name)
        p.add_argument("--unpacked", required=True)
        p.add_argument("--only", nargs="*")
        p.add_argument("--out", required=True)
        if name == "cascade":
            p.add_argument("--engine", default="auto")
        if name == "fuse":
            p.add_argument("--teacher", required=True)
        if name in ("finalize", "provenance"):
            p.add_argument("--work", required=True, help="the fuse step's folder (NAME_fused.nii.gz)")
        if name == "montage":
            p.add_argument("--labels", required=True, help="folder of NAME.nii.gz (or NAME_fused.nii.gz)")
            p.add_argument("--compare", help="folder with NAME_cascade.nii.gz / teacher NAME_labels.nii.gz")
    args = ap.parse_args(argv)
    if args.cmd == "montage":
        from bench.recipes.silver_montage import cmd_montage
        cmd_montage(args)
    else:
        commands = {"cascade": cmd_cascade, "fuse": cmd_fuse, "finalize": cmd_finalize, "provenance": cmd_provenance}
        commands[args.cmd](args)


if __name__ == "__main__":
    main()
