"""Command-line subcommands that need no GUI: info, import, phantom, predict, evaluate, ...

The training subcommands (``train``, ``train-default``) live in :mod:`core.cli.train`.

``app.cli`` adds the GUI subcommand and is the ``liverseg`` entry point; this
module only registers subcommands and runs them. A refusal (any
:class:`~core.runtime.errors.LiverSegError`) prints one line to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable

from ..inference.engines import ENGINES, engines_line
from ..runtime.choices import ExportKind
from ..runtime.errors import Cancelled, LiverSegError
from ..runtime.jobs import CancelToken
from .compare import add_compare_subcommand
from .pacs import add_pacs_subcommands, add_query_flags
from .progress_bar import ProgressBar
from .train import add_training_subcommands


def cmd_info(args) -> int:
    from ..io.dicom import scan
    from ..io.volume_file import is_volume_file
    if is_volume_file(args.path):
        return _info_volume_file(args.path)
    result = scan(args.path)
    if not result:
        from ..io.dicom import select_series
        select_series(result, None, args.path)  # raises the "no image series" error
    for s in result:
        z, y, x = s.spacing
        print(f"{s.key}")
        print(f"    modality {s.modality or '?'}  slices {s.n_slices}  size {s.cols} x {s.rows}  "
              f"spacing {x:.3f} x {y:.3f} x {z:.3f} mm (x, y, z)  {s.transfer_syntax}"
              + (f"  '{s.description}'" if s.description else ""))
        print(f"    in {os.path.commonpath(s.files) if len(s.files) > 1 else s.files[0]}")
        for w in s.warnings:
            print(f"    warning: {w}")
        if getattr(args, "phase", False) and s.is_ct:
            print(f"    contrast phase: {_series_phase(s, args.path)}")
    if result.skipped:
        print(f"{len(result.skipped)} file(s) skipped:")
        for name, reason in result.skipped[:20]:
            print(f"    {name}: {reason}")
        if len(result.skipped) > 20:
            print(f"    ... and {len(result.skipped) - 20} more")
    return 0


def _series_phase(info, where: str) -> str:
    """The contrast phase of one series, read from its pixels alone (no liver mask: see core.study.phase)."""
    from ..io.dicom import load_info
    from ..study.phase import detect_phase
    v = load_info(info, where=where)
    est = detect_phase(v.hu, v.spacing, None, v.direction)
    return f"{est.phase} ({est.reason})"


def cmd_import(args, cancel: CancelToken) -> int:
    from ..datasets.dataset import read_manifest
    from ..datasets.nifti_import import import_dataset
    t = time.perf_counter()
    ids = import_dataset(args.src, args.out, progress=ProgressBar(), cancel=cancel, force=args.force)
    cases = read_manifest(args.out)["cases"]
    for cid in ids:
        c = cases[cid]
        print(f"{cid}: {c['slices']} slices, liver {c['liver_ml']:.0f} mL, tumour {c['tumor_ml']:.1f} mL")
    print(f"{len(ids)} case(s) in {args.out} ({time.perf_counter() - t:.1f} s)")
    return 0


def cmd_phantom(args, cancel: CancelToken) -> int:
    from ..synthetic.phantom import write_dataset
    paths = write_dataset(args.out, args.patients, seed=args.seed, slices=args.slices, size=args.size,
                          progress=ProgressBar(), cancel=cancel)
    for p in paths:
        print(p)
    return 0


def resolve_models(args) -> tuple[str, str | None]:
    """(liver, tumour or None) model paths: the flags, else the bundled defaults (core.catalog.library)."""
    from ..catalog.library import default_models
    liver, tumour = args.liver_model, None if args.liver_only else args.tumour_model
    if liver is None or (tumour is None and not args.liver_only):
        d_liver, d_tumour = default_models()
        if liver is None:
            if d_liver is None:
                raise LiverSegError("no default liver model is installed; give one with --liver-model")
            liver = d_liver.path
        if tumour is None and not args.liver_only and d_tumour is not None:
            tumour = d_tumour.path
    return liver, tumour


def _info_volume_file(path: str) -> int:
    import nibabel as nib

    from ..io.volume_file import read_volume_file
    v = read_volume_file(path)
    g = v.file_grid
    z, y, x = v.spacing
    codes = "".join(nib.aff2axcodes(g.affine_array()))
    print(path)
    print(f"    {g.kind}  size {' x '.join(map(str, g.shape))} (i, j, k), stored {codes}  "
          f"spacing {x:.3f} x {y:.3f} x {z:.3f} mm (x, y, z)  HU {int(v.hu.min())}..{int(v.hu.max())}")
    for w in v.warnings:
        print(f"    warning: {w}")
    return 0


def cmd_predict(args, cancel: CancelToken) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from ..io.export import check_target
    from ..study.session import StudySession

    if args.send or args.pacs:  # before the long work
        from ..runtime.edition import require_pacs
        require_pacs()
    if args.batch and args.acquisition is not None:
        raise LiverSegError("--acquisition picks one acquisition of one study's series: not with --batch")
    if args.batch:
        return cmd_predict_batch(args, cancel)
    if args.shard or args.pacs:
        raise LiverSegError(f"{'--shard' if args.shard else '--pacs'} is for batch runs: add --batch "
                            f"(a folder of studies or a PACS query, --out a folder)")
    if not args.dicom_dir:
        raise LiverSegError("predict: give the DICOM folder or volume file to segment")
    bar = ProgressBar()
    wanted: tuple[tuple[str | None, ExportKind], ...] = ((args.seg, "seg"), (args.lesions, "csv"),
                                                        (args.report, "report"), (args.pdf, "pdf"))
    outputs: list[tuple[str, ExportKind]] = [(args.out, "nifti")]
    outputs += [(p, k) for p, k in wanted if p]
    for path, _ in outputs:  # fail before the long work, not after it
        check_target(path, args.force, [args.dicom_dir])
    liver_path, tumour_path = resolve_models(args)
    with ThreadPoolExecutor(1) as pool:  # the models' engines get ready while the study loads
        ready = pool.submit(StudySession.prepare_models, liver_path, tumour_path, args.engine, args.device,
                            args.batch_size)
        session = StudySession.open(args.dicom_dir, progress=bar, cancel=cancel, acquisition=args.acquisition)
        ready.result()  # the same runners segment() finds: device and engines chosen once
        seg = session.segment(liver_path, tumour_path, engine=args.engine, device=args.device,
                              batch_size=args.batch_size, progress=bar, cancel=cancel)
        label_written = pool.submit(session.export, "nifti", args.out, args.force)  # beside measuring
        summary, _ = session.measure()
        label_written.result()
    for path, kind in outputs[1:]:
        session.export(kind, path, force=args.force)
    if args.send:
        from .pacs import send_prediction
        send_prediction(session, args.send, args.seg, cancel)
    for w in session.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"liver {summary.liver_ml:.1f} mL, tumour {summary.tumour_ml:.2f} mL "
          f"({summary.tumour_burden_pct:.2f} %), {len(summary.lesions)} lesion(s); "
          f"{seg.timings.get('total', 0):.1f} s; {engines_line(seg.info.get('engines') or {})}")
    for path, _ in outputs:
        print(f"wrote {path}")
    return 0


def cmd_predict_batch(args, cancel: CancelToken) -> int:
    from ..model.io import load_seg_model
    from ..study.batch import parse_shard, run_batch
    extra = [f for f, v in (("--seg", args.seg), ("--lesions", args.lesions), ("--report", args.report),
                            ("--pdf", args.pdf), ("--send", args.send)) if v]
    if extra:
        raise LiverSegError(f"{', '.join(extra)}: not available with --batch (one label per study and the "
                            f"summary CSV are written to --out)")
    shard = parse_shard(args.shard)
    liver_path, tumour_path = resolve_models(args)
    liver = load_seg_model(liver_path, "liver", lazy=True)  # once, for every study
    tumour = load_seg_model(tumour_path, "tumor", lazy=True) if tumour_path else None
    if args.pacs:
        if args.dicom_dir:
            raise LiverSegError("--pacs takes its studies from the PACS query: drop the folder argument")
        from .pacs import predict_batch_pacs
        rows, summary = predict_batch_pacs(args, liver, tumour, shard, cancel)
    elif not args.dicom_dir:
        raise LiverSegError("predict --batch: give a folder of studies, or --pacs NAME with a date range")
    else:
        rows, summary = run_batch(args.dicom_dir, args.out, liver, tumour, force=args.force, shard=shard,
                                  engine=args.engine, device=args.device, progress=ProgressBar(), cancel=cancel)
    counts = {k: sum(r.status == k for r in rows) for k in ("done", "skipped", "error")}
    for r in rows:
        if r.status == "error":
            print(f"error: {r.study}: {r.error}", file=sys.stderr)
    print(f"{len(rows)} stud{'y' if len(rows) == 1 else 'ies'}: {counts['done']} segmented, {counts['skipped']} "
          f"skipped (output exists), {counts['error']} failed; summary {summary}")
    return 0 if not counts["error"] else 1


def cmd_merge(args, cancel: CancelToken) -> int:
    from ..study.batch import merge_summaries
    rows = merge_summaries(args.summaries, args.out, force=args.force)
    print(f"{len(rows)} studies from {len(args.summaries)} summaries; wrote {args.out}")
    return 0


def cmd_export_onnx(args, cancel: CancelToken) -> int:
    from ..runtime.edition import require_full
    require_full("liverseg export-onnx")
    from ..training.onnx_export import export_onnx
    from ..training.quantize import quantize_int8
    bar = ProgressBar()
    rec = export_onnx(args.run_dir, progress=bar, cancel=cancel)
    print(f"model.onnx written; largest difference from Keras on phantom slices {rec['max_abs_diff']:.1e}")
    if args.no_int8:
        return 0
    q = quantize_int8(args.run_dir, dataset=args.dataset, n_slices=args.calibration_slices,
                      recalibrate=args.recalibrate, progress=bar, cancel=cancel)
    gate = q["gate"]
    for cid, (a, b) in gate["cases"].items():
        print(f"    {cid}: Dice fp32 {a:.4f}  int8 {b:.4f}  difference {abs(a - b):.4f}")
    verdict = "validated: used on CPUs" if q["validated"] else "REFUSED: the fp32 ONNX model will be used"
    print(f"model.int8.onnx {verdict} (largest per-case Dice difference {gate['max_difference']:.4f}, "
          f"limit {gate['tolerance']}; {q['calibration']['slices']} calibration slices)")
    return 0


def cmd_export_model(args, cancel: CancelToken) -> int:
    from ..catalog.model_share import export_model, read_shared
    out = export_model(args.run_dir, args.out, force=args.force)
    m = read_shared(out)
    print(f"wrote {out}: {m['stage']} model, {', '.join(m['files'])} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


def cmd_import_model(args, cancel: CancelToken) -> int:
    from ..catalog.library import describe
    from ..catalog.model_share import import_model
    path = import_model(args.zip, name=args.name, force=args.force)
    e = describe(path, "user")
    print(f"installed {path.parent}" + (f": {e.title}" if e else ""))
    return 0


def cmd_evaluate(args, cancel: CancelToken) -> int:
    from ..evaluation.evaluate import evaluate_dataset, format_table
    from ..io.export import check_target, write_json_report
    from ..model.io import load_seg_model
    check_target(args.out, args.force)
    liver_path, tumour_path = resolve_models(args)
    liver = load_seg_model(liver_path, "liver", lazy=True)
    tumour = load_seg_model(tumour_path, "tumor", lazy=True) if tumour_path else None
    result = evaluate_dataset(args.dataset, liver, tumour, args.cases, progress=ProgressBar(), cancel=cancel,
                              device=args.device, engine=args.engine)
    print(format_table(result))
    write_json_report(args.out, result, force=args.force)
    print(f"wrote {args.out}")
    return 0


def cmd_selftest(args, cancel: CancelToken) -> int:
    from .selftest import run_selftest
    failures = run_selftest(engine=args.engine)
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    print("selftest passed" if not failures else f"selftest failed ({len(failures)} problem(s))")
    return 0 if not failures else 1


def add_engine_flag(p) -> None:
    """``--engine``, the same for every subcommand that runs the models."""
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto: Keras on a GPU, else ONNX Runtime (GPU provider, validated int8, fp32), else Keras")


def add_subcommands(sub) -> None:
    p = sub.add_parser("info", help="list the DICOM series in a folder (or describe a volume file)")
    p.add_argument("path", help="DICOM folder (searched recursively) or a volume file "
                                "(.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd)")
    p.add_argument("--phase", action="store_true", help="also read each CT series' contrast phase from its "
                   "pixels (loads every series: slower)")
    p.set_defaults(func=lambda a, c: cmd_info(a))

    p = sub.add_parser("import", help="import 3D-IRCADb-01, the Decathlon's Task03_Liver, LiTS or NIfTI pairs "
                                      "into a dataset folder")
    p.add_argument("src", help="3Dircadb1.zip, a folder of 3Dircadb1.N patients, or one patient folder; or an "
                               "extracted Task03_Liver (imagesTr/labelsTr), LiTS (volume-N/segmentation-N) or a folder "
                               "of image + label NIfTI pairs; or a LiverSeg dataset folder (a lab's cases, merged)")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--force", action="store_true", help="re-import cases already present")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("phantom", help="write synthetic CT patients in the 3D-IRCADb-01 layout")
    p.add_argument("out", help="folder to write phantom-s<seed>-N patients into (the 3D-IRCADb-01 layout)")
    p.add_argument("--patients", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slices", type=int, default=64)
    p.add_argument("--size", type=int, default=256)
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser("predict", help="segment liver and tumours in a DICOM series (or, with --batch, "
                                       "in every study of a folder)")
    p.add_argument("dicom_dir", nargs="?", help="DICOM folder (searched recursively) or a volume file (.nii, "
                   ".nii.gz, .nrrd, .nhdr, .mha, .mhd); with --batch a folder of studies (none with --pacs)")
    p.add_argument("--liver-model", help="run folder, fine-tune folder (its liver/), .keras (with model.json) "
                                         "or notebook .h5 (default: the bundled default, trained on real CT anatomy)")
    p.add_argument("--tumor-model", "--tumour-model", dest="tumour_model",
                   help="run folder, fine-tune folder (its tumor/), .keras or notebook .h5 "
                        "(default: the bundled default)")
    p.add_argument("--liver-only", action="store_true", help="no tumour stage")
    p.add_argument("--acquisition", type=int, metavar="N",
                   help="of a series holding several acquisitions at the same positions (two contrast phases "
                        "under one series UID; `liverseg info` lists them), the one with AcquisitionNumber N")
    p.add_argument("--out", required=True, help="label volume to write (.nii.gz); with --batch a folder")
    p.add_argument("--seg", help="also write a DICOM SEG")
    p.add_argument("--lesions", help="also write the lesion table (CSV)")
    p.add_argument("--report", help="also write a JSON report")
    p.add_argument("--pdf", help="also write the PDF report (lesion table, key images, 3D view)")
    p.add_argument("--device", choices=("cpu", "gpu"), help="default: the GPU when the backend sees one")
    p.add_argument("--batch-size", type=int, help="slices per network call")
    add_engine_flag(p)
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--batch", action="store_true", help="DICOM_DIR is a folder of studies (one per subfolder): "
                   "--out is a folder, one label per study plus summary.csv; existing outputs are skipped")
    p.add_argument("--shard", metavar="K/N", help="with --batch: only the K-th of N deterministic shares "
                   "(job arrays, e.g. --shard $SLURM_ARRAY_TASK_ID/10); join the summaries with `merge`")
    p.add_argument("--send", metavar="PACS", help="send the DICOM SEG to this saved PACS connection")
    p.add_argument("--pacs", metavar="PACS", help="with --batch: segment every CT series this PACS's query "
                   "finds (--date-from/--date-to, --patient-id, ...), retrieved into the cache one by one")
    add_query_flags(p, with_accession=False)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("merge", help="join the summary CSVs of sharded batch runs")
    p.add_argument("summaries", nargs="+", help="summary-K-of-N.csv files")
    p.add_argument("--out", required=True, help="merged CSV to write")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("evaluate", help="segment the cases of a dataset and compare with their ground truth")
    p.add_argument("dataset")
    p.add_argument("--liver-model", help="default: the bundled default liver model")
    p.add_argument("--tumor-model", "--tumour-model", dest="tumour_model",
                   help="default: the bundled default tumour model")
    p.add_argument("--liver-only", action="store_true", help="no tumour stage")
    p.add_argument("--out", required=True, help="JSON report to write")
    p.add_argument("--cases", nargs="*", help="case ids (default: all)")
    p.add_argument("--device", choices=("cpu", "gpu"))
    add_engine_flag(p)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("selftest", help="check this installation on a phantom with the default models")
    add_engine_flag(p)
    p.set_defaults(func=cmd_selftest)

    p = sub.add_parser("export-onnx", help="export a trained model to ONNX (and a Dice-checked int8 model)")
    p.add_argument("run_dir", help="run folder (or model folder with model.keras and model.json)")
    p.add_argument("--no-int8", action="store_true", help="only the fp32 model.onnx")
    p.add_argument("--dataset", help="dataset folder for calibration and the Dice check "
                                     "(default: the one the model was trained on)")
    p.add_argument("--calibration-slices", type=int, default=32)
    p.add_argument("--recalibrate", action="store_true", help="draw new calibration slices instead of reusing "
                                                              "the run's calibration.npz")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("export-model", help="write a model (card, Keras, ONNX, int8) as one zip to share")
    p.add_argument("run_dir", help="run folder or model folder (model.keras and/or model.onnx with model.json)")
    p.add_argument("--out", required=True, help="zip to write, e.g. lab-liver.zip")
    p.add_argument("--force", action="store_true", help="replace an existing zip")
    p.set_defaults(func=cmd_export_model)

    p = sub.add_parser("import-model", help="install a model zip (liverseg export-model) into the user's models folder")
    p.add_argument("zip", help="the model zip; checked (hashes, preprocessing, member names) "
                              "before anything is written")
    p.add_argument("--name", help="folder name in the user's models folder (default: the zip's name)")
    p.add_argument("--force", action="store_true", help="replace an installed model of that name")
    p.set_defaults(func=cmd_import_model)
    add_compare_subcommand(sub)
    add_training_subcommands(sub)
    add_pacs_subcommands(sub)

def run(args: argparse.Namespace, func: Callable | None = None) -> int:
    """Run a parsed subcommand: errors become one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    cancel = CancelToken()
    try:
        return (func or args.func)(args, cancel)
    except KeyboardInterrupt:
        cancel.cancel()
        print("\ncancelled", file=sys.stderr)
        return 130
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except LiverSegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
