"""Command-line subcommands that need no GUI: info, import, phantom.

``app.cli`` adds the GUI subcommand and is the ``liverseg`` entry point; this
module only registers subcommands and runs them. A refusal (any
:class:`~core.errors.LiverSegError`) prints one line to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Callable, Optional

from .engines import ENGINES, engines_line
from .errors import Cancelled, LiverSegError
from .jobs import CancelToken, Progress


class ProgressBar:
    """A terminal progress bar fed by :class:`~core.jobs.Progress` events."""

    def __init__(self, stream=None, min_interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval = min_interval
        self._last = 0.0
        self._stage = ""

    def __call__(self, ev: Progress) -> None:
        now = time.monotonic()
        final = ev.total and ev.done >= ev.total
        if not final and ev.stage == self._stage and now - self._last < (self.min_interval if self.tty else 2.0):
            return
        self._last, self._stage = now, ev.stage
        if ev.total:
            n = int(30 * ev.done / ev.total)
            text = f"{ev.stage:8s} [{'#' * n}{'.' * (30 - n)}] {ev.done}/{ev.total} {ev.message}"
        else:
            text = f"{ev.stage:8s} {ev.done} {ev.message}"
        if self.tty:
            self.stream.write("\r" + text[:100].ljust(100) + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def cmd_info(args) -> int:
    from .dicom import scan
    result = scan(args.path)
    if not result:
        from .dicom import select_series
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
    if result.skipped:
        print(f"{len(result.skipped)} file(s) skipped:")
        for name, reason in result.skipped[:20]:
            print(f"    {name}: {reason}")
        if len(result.skipped) > 20:
            print(f"    ... and {len(result.skipped) - 20} more")
    return 0


def cmd_import(args, cancel: CancelToken) -> int:
    from .dataset import read_manifest
    from .ircadb import import_ircadb
    t = time.perf_counter()
    ids = import_ircadb(args.src, args.out, progress=ProgressBar(), cancel=cancel, force=args.force)
    cases = read_manifest(args.out)["cases"]
    for cid in ids:
        c = cases[cid]
        print(f"{cid}: {c['slices']} slices, liver {c['liver_ml']:.0f} mL, tumour {c['tumour_ml']:.1f} mL")
    print(f"{len(ids)} case(s) in {args.out} ({time.perf_counter() - t:.1f} s)")
    return 0


def cmd_phantom(args, cancel: CancelToken) -> int:
    from .phantom import write_dataset
    paths = write_dataset(args.out, args.patients, seed=args.seed, slices=args.slices, size=args.size,
                          progress=ProgressBar(), cancel=cancel)
    for p in paths:
        print(p)
    return 0


def cmd_train(args, cancel: CancelToken) -> int:
    import signal

    from .training import EpochEvent, TrainConfig, train

    def on_sigint(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        print("\nstopping after this batch (Ctrl-C again to abort)...", file=sys.stderr)
        cancel.cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    bar = ProgressBar()

    def progress(ev):
        if isinstance(ev, EpochEvent):
            r = ev.record
            print(f"\repoch {r['epoch']}/{ev.total}: loss {r.get('loss', float('nan')):.4f} "
                  f"dice {r.get('dice', float('nan')):.4f}  val_loss {r.get('val_loss', float('nan')):.4f} "
                  f"val_dice {r.get('val_dice', float('nan')):.4f}  lr {r['lr']:.2e}  {r['seconds']:.1f} s",
                  file=sys.stderr)
        else:
            bar(ev)

    cfg = TrainConfig(
        dataset=args.dataset, out=args.out, stage=args.stage, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, image_size=args.image_size, base_filters=args.filters, depth=args.depth,
        recipe=args.recipe, loss=args.loss, fraction=args.fraction, seed=args.seed, augment=not args.no_augment,
        early_stopping=args.early_stopping, precision=args.precision, strategy=args.strategy,
        export_onnx=not args.no_onnx, synth_lesions=args.synth_lesions, calibrate=not args.no_calibrate)
    try:
        result = train(cfg, progress=progress, cancel=cancel, resume=args.resume)
    finally:
        signal.signal(signal.SIGINT, previous)
    print(f"{result.status}: {result.epochs_done} epoch(s), best val Dice {result.best_val_dice:.4f} "
          f"at epoch {result.best_epoch}; run folder {result.run_dir}")
    return 0 if result.status != "cancelled" else 130


def cmd_predict(args, cancel: CancelToken) -> int:
    from .dicom import load_series
    from .evaluate import study_summary
    from .export import check_target, write_dicom_seg, write_json_report, write_lesions_csv, write_nifti
    from .inference import segment
    from .model.io import load_seg_model

    bar = ProgressBar()
    src = [args.dicom_dir]
    outputs = [(args.out, "out")] + [(p, n) for p, n in ((args.seg, "seg"), (args.lesions, "lesions"),
                                                         (args.report, "report")) if p]
    for path, _ in outputs:  # fail before the long work, not after it
        check_target(path, args.force, src)
    volume = load_series(args.dicom_dir, progress=bar, cancel=cancel)
    liver = load_seg_model(args.liver_model, "liver")
    tumor = load_seg_model(args.tumor_model, "tumor") if args.tumor_model else None
    seg = segment(volume, liver, tumor, progress=bar, cancel=cancel, device=args.device,
                  batch_size=args.batch_size, engine=args.engine)
    summary = study_summary(seg.label, volume.spacing, volume.hu)
    write_nifti(args.out, seg.label, volume, force=args.force)
    if args.seg:
        write_dicom_seg(args.seg, seg.label, volume, force=args.force)
    if args.lesions:
        write_lesions_csv(args.lesions, summary["lesions"], force=args.force, source_dirs=src)
    if args.report:
        rep = {"study": str(args.dicom_dir), "series_uid": volume.meta.series_uid, "shape": list(volume.shape),
               "spacing_mm": list(volume.spacing), **summary, "warnings": list(volume.warnings) + seg.warnings,
               "timings_s": seg.timings, "engine": {"device": seg.info.get("device"), "engines": seg.info.get("engines"),
                                                   "reasons": seg.info.get("engine_reasons"),
                                                   "batch_size": seg.info.get("batch_size")},
               "models": {"liver": liver.meta, "tumor": tumor.meta if tumor else None}}
        write_json_report(args.report, rep, force=args.force, source_dirs=src)
    for w in list(volume.warnings) + seg.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"liver {summary['liver_ml']:.1f} mL, tumour {summary['tumor_ml']:.2f} mL "
          f"({summary['tumor_burden_pct']:.2f} %), {len(summary['lesions'])} lesion(s); "
          f"{seg.timings.get('total', 0):.1f} s; {engines_line(seg.info.get('engines') or {})}")
    for path, _ in outputs:
        print(f"wrote {path}")
    return 0


def cmd_export_onnx(args, cancel: CancelToken) -> int:
    from .model.onnx_export import export_onnx
    from .model.quantize import quantize_int8
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


def cmd_evaluate(args, cancel: CancelToken) -> int:
    from .evaluate import evaluate_dataset, format_table
    from .export import check_target, write_json_report
    from .model.io import load_seg_model
    check_target(args.out, args.force)
    liver = load_seg_model(args.liver_model, "liver")
    tumor = load_seg_model(args.tumor_model, "tumor") if args.tumor_model else None
    result = evaluate_dataset(args.dataset, liver, tumor, args.cases, progress=ProgressBar(), cancel=cancel,
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


def add_subcommands(sub) -> None:
    p = sub.add_parser("info", help="list the DICOM series in a folder")
    p.add_argument("path", help="DICOM folder (searched recursively)")
    p.set_defaults(func=lambda a, c: cmd_info(a))

    p = sub.add_parser("import", help="import 3D-IRCADb-01 into a dataset folder")
    p.add_argument("src", help="3Dircadb1.zip, a folder of 3Dircadb1.N patients, or one patient folder")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--force", action="store_true", help="re-import cases already present")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("phantom", help="write synthetic CT patients in the 3D-IRCADb-01 layout")
    p.add_argument("out", help="folder to write 3Dircadb1.N patients into")
    p.add_argument("--patients", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slices", type=int, default=64)
    p.add_argument("--size", type=int, default=256)
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser("predict", help="segment liver and tumours in a DICOM series")
    p.add_argument("dicom_dir")
    p.add_argument("--liver-model", required=True, help="run folder, .keras (with model.json) or notebook .h5")
    p.add_argument("--tumor-model", help="run folder, .keras or notebook .h5 (omit: liver only)")
    p.add_argument("--out", required=True, help="label volume to write (.nii.gz)")
    p.add_argument("--seg", help="also write a DICOM SEG")
    p.add_argument("--lesions", help="also write the lesion table (CSV)")
    p.add_argument("--report", help="also write a JSON report")
    p.add_argument("--device", choices=("cpu", "gpu"), help="default: the GPU when the backend sees one")
    p.add_argument("--batch-size", type=int, help="slices per network call")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto: Keras on a GPU, else ONNX Runtime (GPU provider, validated int8, fp32), else Keras")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="segment the cases of a dataset and compare with their ground truth")
    p.add_argument("dataset")
    p.add_argument("--liver-model", required=True)
    p.add_argument("--tumor-model")
    p.add_argument("--out", required=True, help="JSON report to write")
    p.add_argument("--cases", nargs="*", help="case ids (default: all)")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto: Keras on a GPU, else ONNX Runtime (GPU provider, validated int8, fp32), else Keras")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("selftest", help="check this installation on a phantom with the bundled demo models")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto: Keras on a GPU, else ONNX Runtime (GPU provider, validated int8, fp32), else Keras")
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

    p = sub.add_parser("train", help="train the liver or the tumour ResUNet on a dataset folder")
    p.add_argument("dataset", help="dataset folder (from liverseg import)")
    p.add_argument("--stage", choices=("liver", "tumor"), required=True)
    p.add_argument("--out", required=True, help="run folder to write (or to continue with --resume)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    p.add_argument("--image-size", type=int, default=256, help="model input, pixels")
    p.add_argument("--filters", type=int, default=16, help="base filters (16: 16-32-64-128-256)")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--recipe", choices=("window25d", "notebook"), default="window25d", help="preprocessing")
    p.add_argument("--loss", choices=("bce_dice", "dice"), default="bce_dice")
    p.add_argument("--fraction", type=float, default=1.0, help="share of the training slices (0.25, 0.5, 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default")
    p.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"), default="float32")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX / int8 export at the end")
    p.add_argument("--synth-lesions", type=float, default=0.5, metavar="SHARE",
                   help="tumour stage: share of training samples given synthetic lesions (0: off)")
    p.add_argument("--no-calibrate", action="store_true",
                   help="keep threshold 0.5 instead of choosing it on the validation patients")
    p.set_defaults(func=cmd_train)


def run(args: argparse.Namespace, func: Optional[Callable] = None) -> int:
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
