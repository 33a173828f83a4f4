"""LiverSeg Studio core: DICOM loading, datasets, phantom, models, metrics.

Everything that is not GUI lives here. This package never imports Qt or
pyqtgraph, and it imports TensorFlow/Keras only inside the functions that
need them, so that opening and viewing a study never waits for them.
"""

__version__ = "0.1.0"
