"""Models scored on the HCC-TACE-Seg volumes against the project's silver labels, per volume, in 3D.

    python bench/benchmarks/hcc_quality.py --unpacked SCRATCH [--models NAME=LIVER,TUMOUR ...] [--teacher DIR] \\
        [--cascade-dir DIR] [--out results.json]

Each model pair (default: the shipped defaults, which never trained on these patients) segments
every volume with a committed label (``resources/training-labels/hcc-tace-seg``); liver Dice and
ASSD, tumour Dice, lesions found and false lesions (:func:`core.evaluation.metrics.lesion_detection`)
are printed per volume. ``--teacher`` scores the teacher's masks the same way (its agreement with
the silver labels it seeded). For leave-one-patient-out, give one pair per held-out patient as
``NAME@HCC_007=LIVER,TUMOUR``: that pair scores only that patient's volumes. ``--cascade-dir``
scores saved ``NAME_cascade.nii.gz`` instead of running the defaults again. ``--patients HCC_009 HCC_015``
scores only those patients' volumes.

The silver labels were seeded by the teacher and the default cascade (``bench/recipes/silver_labels.py``),
so both agree with them more than they would with an expert's: compare models with one another,
not with these numbers' absolute value.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.datasets.hcc_tace import SERIES, load_volume  # noqa: E402
from core.evaluation.metrics import assd, dice, lesion_detection  # noqa: E402
from core.io.label_file import read_nifti_label  # noqa: E402
from core.runtime.labels import TUMOUR  # noqa: E402
from core.training.recipe import HCC_LABELS  # noqa: E402


def score(pred: np.ndarray, truth: np.ndarray, spacing, tumours: bool) -> dict:
    row = {"liver_dice": round(dice(pred > 0, truth > 0), 4),
           "liver_assd_mm": round(float(assd(pred > 0, truth > 0, spacing)), 2)}
    if tumours:
        det = lesion_detection(pred == TUMOUR, truth == TUMOUR, spacing)
        row.update(tumour_dice=round(dice(pred == TUMOUR, truth == TUMOUR), 4),
                   tumour_ml=round(float((truth == TUMOUR).sum()) * float(np.prod(spacing)) / 1000, 1),
                   lesions_found=f"{det['hits']}/{det['true_lesions']}", false_lesions=det["false_positives"])
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unpacked", required=True)
    ap.add_argument("--labels", default=str(HCC_LABELS))
    ap.add_argument("--models", nargs="*", default=[], help="NAME[@PATIENT]=LIVER,TUMOUR")
    ap.add_argument("--teacher", help="folder of the teacher's NAME_labels.nii.gz")
    ap.add_argument("--cascade-dir", help="folder of saved NAME_cascade.nii.gz (the defaults)")
    ap.add_argument("--patients", nargs="+", help="score only these patients' volumes (e.g. the held-out ones)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    from core.catalog.library import default_models
    from core.study.session import StudySession
    from core.study.study import Study
    pairs = []
    for spec in args.models:
        name, paths = spec.split("=", 1)
        name, _, patient = name.partition("@")
        liver, tumour = paths.split(",")
        pairs.append((name, patient, liver, tumour))
    if not pairs and not args.cascade_dir:
        liver, tumour = (m.path for m in default_models())
        pairs.append(("defaults", "", liver, tumour))
    results: dict = {}
    for s in SERIES:
        path = Path(args.labels) / f"{s.name}.nii.gz"
        if not path.exists() or (args.patients and s.patient not in args.patients):
            continue
        vol = load_volume(args.unpacked, s)
        truth = read_nifti_label(path, vol)
        row = results.setdefault(s.name, {"phase": s.phase, "slice_mm": s.slice_mm})
        if args.teacher:
            row["teacher"] = score(read_nifti_label(Path(args.teacher) / f"{s.name}_labels.nii.gz", vol), truth,
                                   vol.spacing, s.tumours)
        if args.cascade_dir:
            row["defaults"] = score(read_nifti_label(Path(args.cascade_dir) / f"{s.name}_cascade.nii.gz", vol),
                                    truth, vol.spacing, s.tumours)
        for name, patient, liver, tumour in pairs:
            if patient and patient != s.patient:
                continue
            t = time.perf_counter()
            seg = StudySession(Study.from_volume(vol, s.name), "").segment(liver, tumour, engine=args.engine)
            row[name] = {**score(seg.label, truth, vol.spacing, s.tumours),
                         "seconds": round(time.perf_counter() - t, 1)}
        print(s.name, json.dumps({k: v for k, v in row.items() if isinstance(v, dict)}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
