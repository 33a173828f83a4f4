"""Models, losses and metrics (Keras 3, ``keras.ops`` only: TensorFlow, JAX or PyTorch backend).

Importing this package does not import Keras; the functions in its modules do.
"""
