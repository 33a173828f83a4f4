"""``liverseg compare BASELINE FOLLOWUP --out DIR``: a follow-up study against its baseline.

Each study (a DICOM folder or a volume file) is segmented with the default models, unless its label
file is given (``--baseline-labels``, ``--followup-labels``: NIfTI, NRRD, MetaImage or DICOM SEG on
that study's grid); then :func:`core.followup.compare.compare_studies` registers, matches and assesses
RECIST 1.1 and mRECIST, and DIR receives compare.json, compare.csv and compare.pdf.
"""

from __future__ import annotations

import sys

from ..runtime.errors import LiverSegError
from ..runtime.jobs import CancelToken
from .progress_bar import ProgressBar

OUTPUTS = ("compare.json", "compare.csv", "compare.pdf")


def _default_models() -> tuple[str, str | None]:
    from ..catalog.library import default_models
    liver, tumour = default_models()
    if liver is None:
        raise LiverSegError("no default liver model is installed: give each study's labels "
                            "(--baseline-labels, --followup-labels)")
    return liver.path, tumour.path if tumour is not None else None


def _timepoint(path: str, labels: str | None, acquisition: int | None, bar, cancel: CancelToken):
    """(TimePoint, its source folders) of one study: opened, then labelled from the file or segmented."""
    from ..followup.timepoint import TimePoint
    from ..study.session import StudySession
    session = StudySession.open(path, progress=bar, cancel=cancel, acquisition=acquisition)
    if labels:
        label = session.read_label(labels)
    else:
        liver, tumour = _default_models()
        label = session.segment(liver, tumour, progress=bar, cancel=cancel).label
    for w in session.warnings:
        print(f"warning: {path}: {w}", file=sys.stderr)
    return TimePoint.from_session(session, label), session.source_dirs


def cmd_compare(args, cancel: CancelToken) -> int:
    from pathlib import Path

    from ..followup.compare import compare_studies
    from ..followup.outputs import write_all
    from ..io.export import check_target
    from ..runtime.edition import require_registration
    require_registration()  # the lite edition refuses before segmenting anything
    out = Path(args.out)
    sources = [args.baseline, args.followup]
    for name in OUTPUTS:  # before the long work
        check_target(out / name, args.force, sources)
    bar = ProgressBar()
    base, base_src = _timepoint(args.baseline, args.baseline_labels, args.baseline_acquisition, bar, cancel)
    follow, follow_src = _timepoint(args.followup, args.followup_labels, args.followup_acquisition, bar, cancel)
    c = compare_studies(base, follow, targets=args.targets, allow_different_patients=args.different_patients,
                        progress=bar, cancel=cancel)
    paths = write_all(out, c, base, follow, force=args.force, source_dirs=[*base_src, *follow_src, *sources])
    for w in c.warnings:
        print(f"warning: {w}", file=sys.stderr)
    counts = {s: sum(m.status == s for m in c.matches) for s in ("same", "new", "gone", "merged", "split", "regrouped")}
    pct = c.tumour_change_pct
    print(f"registration {c.registration.kind}; lesions: "
          + (", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"))
    print(f"tumour {c.baseline.tumour_ml:.2f} -> {c.followup.tumour_ml:.2f} mL"
          + ("" if pct is None else f" ({pct:+.1f} %)"))
    for r in (c.recist, c.mrecist):
        print(f"{r.version}: {r.category} ({r.basis[-1]})")
    for p in paths:
        print(f"wrote {p}")
    return 0


def add_compare_subcommand(sub) -> None:
    p = sub.add_parser("compare", help="compare a follow-up study with its baseline (registration, lesion "
                                       "matching, RECIST 1.1 and mRECIST)")
    p.add_argument("baseline", help="the baseline study: DICOM folder or volume file")
    p.add_argument("followup", help="the follow-up study: DICOM folder or volume file")
    p.add_argument("--out", required=True, help="folder for compare.json, compare.csv and compare.pdf")
    p.add_argument("--baseline-labels", metavar="FILE", help="the baseline's label file (else segmented "
                   "with the default models)")
    p.add_argument("--followup-labels", metavar="FILE", help="the follow-up's label file (else segmented)")
    p.add_argument("--baseline-acquisition", type=int, metavar="N", help="of a series holding several "
                   "acquisitions, the baseline's AcquisitionNumber N")
    p.add_argument("--followup-acquisition", type=int, metavar="N", help="the follow-up's AcquisitionNumber N")
    p.add_argument("--targets", type=int, nargs="+", metavar="ID", help="baseline lesion ids to take as targets "
                   "(at most 2; default: the 2 largest measurable)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--different-patients", action="store_true", help="compare studies whose patient ID or name "
                   "differ (refused otherwise)")
    p.set_defaults(func=cmd_compare)
