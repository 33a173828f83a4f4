"""Training runs: the trainer (:mod:`.trainer`), the cached slice loader (:mod:`.loader`), the Keras
callbacks and batches (:mod:`.callbacks`), the threshold chosen on the validation patients
(:mod:`.threshold`), ONNX export and int8 quantisation (:mod:`.onnx_export`, :mod:`.quantize`) and the
default models' recipe (:mod:`.recipe`); the defaults the CLI and the Train panel share
(:mod:`.defaults`).
"""
