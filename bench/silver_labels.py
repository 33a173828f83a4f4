"""Silver labels for the HCC-TACE-Seg series: the teacher's masks fused with the cascade's, and
montages to review them.

Not part of the product and never run by the tests (the teacher runs in a scratch environment:
``../shared/tools/README.md``). Steps, each resumable (existing outputs are kept):

    python bench/silver_labels.py cascade --unpacked SCRATCH --out WORK     # the default cascade
    python bench/silver_labels.py fuse --unpacked SCRATCH --teacher TEACHER_OUT --out WORK
    python bench/silver_labels.py montage --unpacked SCRATCH --labels DIR --out PNG_DIR [--compare WORK]

``SCRATCH`` is where :func:`core.datasets.hcc_tace.unpack` put the archives; ``TEACHER_OUT`` holds
``NAME_labels.nii.gz`` from ``teacher_unet3d.py --dicom NAME DIR [--acquisition NAME N]``;
``WORK`` gets ``NAME_cascade.nii.gz``, ``NAME_fused.nii.gz`` and ``agreement.json`` (teacher against
cascade, per volume). The fused labels are reviewed on the montages and corrected with
``core.study.fixes`` (``bench/silver_fixes.py``) before they are committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.datasets.hcc_tace import SERIES, HccSeries, load_volume  # noqa: E402
from core.io.export import write_nifti  # noqa: E402
from core.io.label_file import read_nifti_label  # noqa: E402
from core.runtime.labels import LIVER, TUMOUR  # noqa: E402

# A cascade lesion joins the teacher's when most of it lies inside the teacher's liver and it is not
# as bright as contrast-filled bowel or vessels (the cascade's false lesions on these series).
INSIDE_SHARE = 0.8
MAX_LESION_HU = 180.0
MIN_LESION_ML = 0.3


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    n = int(a.sum()) + int(b.sum())
    return None if n == 0 else round(2.0 * int(np.logical_and(a, b).sum()) / n, 4)


def fuse(hu: np.ndarray, teacher: np.ndarray, cascade: np.ndarray, voxel_ml: float) -> tuple[np.ndarray, dict]:
    """The teacher's liver (its largest 3D component, holes filled per slice); tumour: the teacher's
    lesions inside it plus the cascade's lesions that pass the rules above."""
    liver = teacher > 0
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
        row = {"ml": round(ml, 2), "inside": round(inside, 2), "mean_hu": round(mean_hu, 1)}
        if ml >= MIN_LESION_ML and inside >= INSIDE_SHARE and mean_hu <= MAX_LESION_HU:
            tumour[sl] |= comp & liver[sl]
            kept.append(row)
        else:
            dropped.append(row)
    out = np.zeros(teacher.shape, np.uint8)
    out[liver] = LIVER
    out[tumour] = TUMOUR
    return out, {"cascade_lesions_kept": kept, "cascade_lesions_dropped": dropped}


def agreement(teacher: np.ndarray, other: np.ndarray, voxel_ml: float) -> dict:
    return {"liver_dice": dice(teacher > 0, other > 0), "tumour_dice": dice(teacher == TUMOUR, other == TUMOUR),
            "liver_ml": [round(float((x > 0).sum()) * voxel_ml, 1) for x in (teacher, other)],
            "tumour_ml": [round(float((x == TUMOUR).sum()) * voxel_ml, 1) for x in (teacher, other)]}


def cmd_cascade(args) -> None:
    from core.inference.library import default_models
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
        fused, rules = fuse(vol.hu, teacher, cascade, vml)
        write_nifti(out / f"{s.name}_fused.nii.gz", fused, vol, force=True)
        report[s.name] = {"teacher_vs_cascade": agreement(teacher, cascade, vml),
                          "teacher_vs_fused": agreement(teacher, fused, vml), **rules}
        print(s.name, json.dumps(report[s.name]["teacher_vs_cascade"]), flush=True)
    rp.write_text(json.dumps(report, indent=1))


def _series(args) -> list[HccSeries]:
    return [s for s in SERIES if not args.only or s.name in args.only]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("cascade", "fuse", "montage"):
        p = sub.add_parser(name)
        p.add_argument("--unpacked", required=True)
        p.add_argument("--only", nargs="*")
        p.add_argument("--out", required=True)
        if name == "cascade":
            p.add_argument("--engine", default="auto")
        if name == "fuse":
            p.add_argument("--teacher", required=True)
        if name == "montage":
            p.add_argument("--labels", required=True, help="folder of NAME.nii.gz (or NAME_fused.nii.gz)")
            p.add_argument("--compare", help="folder with NAME_cascade.nii.gz / teacher NAME_labels.nii.gz")
    args = ap.parse_args(argv)
    if args.cmd == "montage":
        from bench.silver_montage import cmd_montage
        cmd_montage(args)
    else:
        {"cascade": cmd_cascade, "fuse": cmd_fuse}[args.cmd](args)


if __name__ == "__main__":
    main()
