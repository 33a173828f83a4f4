"""LiverSeg Studio core: DICOM loading, datasets, phantom, models, metrics.

Everything that is not GUI lives here. This package never imports Qt or
pyqtgraph, and it imports TensorFlow/Keras only inside the functions that
need them, so that opening and viewing a study never waits for them.
"""

import os as _os

__version__ = "0.1.0"

# TensorFlow 2.20/2.21 corrupt the heap in some oneDNN CPU kernels while training
# (tensorflow/tensorflow#117700, #123109: "double free or corruption", reproduced
# here with the ResUNet). Set before TensorFlow is first imported; a user's own
# setting wins.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow's C++ start-up lines (cuInit "errors" on every machine without a GPU) stay off the
# terminal unless LIVERSEG_DEBUG=1 / --verbose (core/runtime/quiet.py).
from .runtime import quiet as _quiet  # noqa: E402

_quiet.install()
