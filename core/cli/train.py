"""Training subcommands: ``train`` (one stage on a dataset) and ``train-default`` (the recipe of the
shipped default models, :mod:`core.training.recipe`). Registered by :func:`core.cli.commands.add_subcommands`."""

from __future__ import annotations

import argparse
import sys

from ..runtime.choices import STAGES, Stage
from ..runtime.jobs import CancelToken
from ..training import defaults as D


def _progress_printer():
    from ..training.trainer import EpochEvent
    from .progress_bar import ProgressBar
    bar = ProgressBar()

    def progress(ev):
        if isinstance(ev, EpochEvent):
            r = ev.record
            print(f"\repoch {r['epoch']}/{ev.total}: loss {r.get('loss', float('nan')):.4f} "
                  f"dice {r.get('dice', float('nan')):.4f}  val_loss {r.get('val_loss', float('nan')):.4f} "
                  f"val_dice {r.get('val_dice', float('nan')):.4f}  lr {r['lr']:.2e}  {r['seconds']:.1f} s",
                  file=sys.stderr)
        elif ev.stage == "recipe" and ev.message:
            print(f"\n== {ev.message} ==", file=sys.stderr)
        else:
            bar(ev)
    return progress


def _stop_on_sigint(cancel: CancelToken):
    """Ctrl-C stops after the current batch (a second one aborts); returns the previous handler."""
    import signal

    def on_sigint(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        print("\nstopping after this batch (Ctrl-C again to abort; --resume continues)...", file=sys.stderr)
        cancel.cancel()
    return signal.signal(signal.SIGINT, on_sigint)


def cmd_train(args, cancel: CancelToken) -> int:
    import signal

    from ..runtime.edition import require_full
    require_full("liverseg train")
    from ..training.trainer import TrainConfig, train
    previous = _stop_on_sigint(cancel)
    progress = _progress_printer()

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


def cmd_train_default(args, cancel: CancelToken) -> int:
    import signal

    from ..runtime.edition import require_full
    require_full("liverseg train-default")
    from ..training.recipe import RecipeConfig, install_models, train_default_models
    previous = _stop_on_sigint(cancel)
    progress = _progress_printer()

    cfg = RecipeConfig(out=args.out, source=args.source, hcc=args.hcc, hcc_labels=args.hcc_labels,
                       exclude=tuple(args.exclude), stages=tuple(args.stages),
                       scale=args.scale, precision=args.precision, loader_workers=args.workers,
                       max_minutes=args.minutes, export_onnx=not args.no_onnx, seed=args.seed)
    try:
        results = train_default_models(cfg, progress=progress, cancel=cancel, resume=args.resume)
    finally:
        signal.signal(signal.SIGINT, previous)
    for stage, r in results.items():
        print(f"{stage}: {r.status}, {r.epochs_done} epoch(s), best val Dice {r.best_val_dice:.4f} "
              f"at epoch {r.best_epoch}; {r.run_dir}")
    if any(r.status == "cancelled" for r in results.values()):
        return 130
    if args.install:
        for stage, folder in install_models(args.out, args.install).items():
            print(f"installed the {stage} model in {folder}")
    return 0


def cmd_finetune(args, cancel: CancelToken) -> int:
    import signal

    from ..runtime.edition import require_full
    require_full("liverseg finetune")
    from ..training.finetune import FinetuneConfig
    from ..training.finetune_compare import finetune_and_compare
    previous = _stop_on_sigint(cancel)
    stages: tuple[Stage, ...] = STAGES if args.stage == "both" else (args.stage,)
    cfg = FinetuneConfig(dataset=args.dataset, base=args.base, out=args.out, stages=stages, minutes=args.minutes,
                         learning_rate=args.lr, l2sp=args.l2sp, freeze_norm=args.freeze_norm,
                         blend=args.blend, liver_lesions=args.liver_lesions, export_onnx=not args.no_onnx,
                         seed=args.seed)
    try:
        if args.compare:
            outcome = finetune_and_compare(cfg, progress=_progress_printer(), cancel=cancel, resume=args.resume)
        else:
            from ..training.finetune import finetune
            from ..training.finetune_compare import FinetuneOutcome
            outcome = FinetuneOutcome(finetune(cfg, progress=_progress_printer(), cancel=cancel, resume=args.resume))
    finally:
        signal.signal(signal.SIGINT, previous)
    for stage, r in outcome.results.items():
        print(f"{stage}: {r.status}, {r.epochs_done} epoch(s), best val Dice {r.best_val_dice:.4f} "
              f"at epoch {r.best_epoch}; {r.run_dir}")
    if outcome.cases:
        print("held-out case(s), base models -> fine-tuned:")
        print(outcome.table())
    return 130 if outcome.cancelled else 0


def add_training_subcommands(sub) -> None:
    p = sub.add_parser("train", help="train the liver or the tumour ResUNet on a dataset folder")
    p.add_argument("dataset", help="dataset folder (from liverseg import)")
    p.add_argument("--stage", choices=("liver", "tumor"), required=True)
    p.add_argument("--out", required=True, help="run folder to write (or to continue with --resume)")
    p.add_argument("--epochs", type=int, default=D.EPOCHS)
    p.add_argument("--batch-size", type=int, default=D.BATCH_SIZE)
    p.add_argument("--lr", type=float, default=D.LEARNING_RATE, help="learning rate")
    p.add_argument("--image-size", type=int, default=D.IMAGE_SIZE, help="model input, pixels")
    p.add_argument("--filters", type=int, default=D.BASE_FILTERS, help="base filters (16: 16-32-64-128-256)")
    p.add_argument("--depth", type=int, default=D.DEPTH)
    p.add_argument("--recipe", choices=("window25d", "notebook"), default=D.RECIPE, help="preprocessing")
    p.add_argument("--loss", choices=("bce_dice", "dice"), default=D.LOSS)
    p.add_argument("--fraction", type=float, default=D.FRACTION, help="share of the training slices (0.25, 0.5, 1)")
    p.add_argument("--seed", type=int, default=D.SEED)
    p.add_argument("--early-stopping", type=int, default=D.EARLY_STOPPING, metavar="PATIENCE")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--strategy", choices=D.STRATEGIES, default=D.STRATEGY)
    p.add_argument("--precision", choices=D.PRECISIONS, default=D.PRECISION)
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX / int8 export at the end")
    p.add_argument("--synth-lesions", type=float, default=D.SYNTH_LESIONS, metavar="SHARE",
                   help="tumour stage: share of training samples given synthetic lesions (0: off)")
    p.add_argument("--no-calibrate", action="store_true",
                   help="keep threshold 0.5 instead of choosing it on the validation patients")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-default", help="train the default liver and tumour models from 3D-IRCADb-01 "
                                             "(real CT and expert label maps); resumable")
    p.add_argument("source", nargs="?", help="3D-IRCADb-01 as downloaded: the archive, a folder of 3Dircadb1.N "
                                             "patients (with or without their CT), e.g. ../shared/data; "
                                             "optional with --resume")
    p.add_argument("--out", required=True, help="work folder: dataset/, liver/, tumor/")
    p.add_argument("--resume", action="store_true",
                   help="continue the runs in --out, with the --exclude and --seed they started with "
                   "(--out/recipe.json)")
    p.add_argument("--hcc", metavar="DIR",
                   help="HCC-TACE-Seg (PATIENT.tar.xz archives, e.g. ../shared/data/hcc-tace-seg): "
                   "its series train too, with the silver labels of resources/training-labels/hcc-tace-seg")
    p.add_argument("--hcc-labels", metavar="DIR", help="other label files for --hcc (NAME.nii.gz per volume)")
    p.add_argument("--exclude", nargs="*", default=[], metavar="PATIENT",
                   help="patients to leave out entirely (an HCC-TACE-Seg patient, e.g. HCC_007, with all its series)")
    p.add_argument("--stages", nargs="+", choices=("liver", "tumor"), default=["liver", "tumor"])
    p.add_argument("--scale", type=float, default=1.0, help="multiply each stage's epochs (default 40)")
    p.add_argument("--minutes", type=float, default=0.0,
                   help="time budget per stage instead of epochs (learning rate on a cosine over it)")
    p.add_argument("--precision", choices=D.PRECISIONS, default=D.PRECISION)
    p.add_argument("--workers", type=int, default=D.LOADER_WORKERS, help="threads building training batches")
    p.add_argument("--seed", type=int, default=D.SEED)
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX / int8 export at the end")
    p.add_argument("--install", metavar="MODELS_DIR", help="then copy both models there (e.g. resources/models)")
    p.set_defaults(func=cmd_train_default)

    from ..training import finetune as F
    p = sub.add_parser("finetune", help="fine-tune the default (or other) models on a lab's own cases; resumable")
    p.add_argument("dataset", help="the lab's dataset folder (liverseg import, or Add to training set in the app)")
    p.add_argument("--from", dest="base", default="default", metavar="default|RUN|MODEL_DIR",
                   help="the models to start from: this installation's defaults, a run or work folder with "
                        "liver/ and tumor/, or one model folder")
    p.add_argument("--out", required=True, help="folder to write: liver/, tumor/ (or to continue with --resume)")
    p.add_argument("--stage", choices=("liver", "tumor", "both"), default="both")
    p.add_argument("--minutes", type=float, default=10.0, help="time budget for all stages, resumes included")
    p.add_argument("--lr", type=float, default=F.LEARNING_RATE, help="learning rate")
    p.add_argument("--l2sp", type=float, default=F.L2SP, help="pull towards the base weights (0: off)")
    p.add_argument("--freeze-norm", action=argparse.BooleanOptionalAction, default=F.FREEZE_NORM,
                   help="keep the base models' BatchNormalization (statistics, scale and shift)")
    p.add_argument("--liver-lesions", type=float, default=F.LIVER_LESIONS,
                   help="liver stage: share of samples given synthetic lesions that stay liver, as the default "
                        "recipe trained it (0: off)")
    p.add_argument("--blend", type=float, default=F.BLEND,
                   help="keep base + BLEND x (fine-tuned - base) weights (1: the fine-tuned ones)")
    p.add_argument("--resume", action="store_true", help="continue the fine-tune in --out")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX / int8 export at the end")
    p.add_argument("--seed", type=int, default=D.SEED)
    p.add_argument("--compare", action="store_true",
                   help="then score the base and the fine-tuned models on the held-out case(s), before/after")
    p.set_defaults(func=cmd_finetune)
