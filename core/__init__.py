"""LiverSeg Studio core: DICOM loading, datasets, phantom, models, metrics.

Everything that is not GUI lives here. This package never imports Qt or pyqtgraph, and it imports
TensorFlow/Keras only inside the functions that need them (:mod:`core.runtime.ml_backend`), so that
opening and viewing a study never waits for them. Importing it has no side effect: no environment
variable is set and no import hook is installed until the ML stack is loaded.
"""

__version__ = "0.1.0"
