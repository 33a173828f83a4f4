"""The network and what travels with it: the ResUNet (:mod:`.resunet`), losses and metrics (:mod:`.losses`,
Keras 3, ``keras.ops`` only: TensorFlow, JAX or PyTorch backend), loading a model file (:mod:`.io`), and the
run folder and model card format (:mod:`.card`), which the engines, the catalogue and training read.

Importing this package does not import Keras; the functions in its modules do
(:func:`core.runtime.ml_backend.load_keras`).
"""
