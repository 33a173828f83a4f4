"""The training defaults, in one place: :class:`core.training.trainer.TrainConfig`'s fields, the
``liverseg train`` / ``train-default`` flags (:mod:`core.cli.train`) and the Train panel read them.

Plain constants, no imports: the CLI's parser and the GUI read them without loading the trainer.
"""

from __future__ import annotations

EPOCHS = 20
BATCH_SIZE = 16
LEARNING_RATE = 1e-3
IMAGE_SIZE = 256  # px, model input
BASE_FILTERS = 16  # 16-32-64-128-256
DEPTH = 4
RECIPE = "window25d"
LOSS = "bce_dice"
FRACTION = 1.0
SEED = 0
EARLY_STOPPING = 0  # patience in epochs without val Dice gain; 0 = off
SYNTH_LESIONS = 0.5  # tumour stage, window25d: share of samples given synthetic lesions
TUMOUR_POSITIVE_SHARE = 0.5  # tumour stage: share of samples drawn from slices with tumour
# The default recipe's augmentation (core.training.recipe), which a fine-tune rehearses (core.training.finetune):
RECIPE_LIVER_LESIONS = 0.3  # liver stage: share of samples given synthetic lesions that stay liver
RECIPE_THICK_SLICES = 0.4  # share of samples shown as a 2.5-6 mm scan would show them
RECIPE_PHASES = 0.5  # share of real-CT samples shown in another contrast phase
PRECISION = "float32"
STRATEGY = "default"
LOADER_WORKERS = 2  # threads building training batches

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multiworker")
