"""The ResUNet of the notebooks, configurable, in Keras 3 layers only.

Stem + residual blocks (filters ``base * 2**i``: 16-32-64-128-256 by default),
a bridge, an upsample + concatenate decoder and a 1x1 sigmoid head. Built
with ``keras.layers`` only, so it builds, trains and predicts on the
TensorFlow, JAX and PyTorch backends alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..runtime.ml_backend import load_keras


@dataclass(frozen=True)
class ResUNetConfig:
    """Architecture of a ResUNet.

    Attributes:
        input_size: H = W of the input, pixels (divisible by 2**depth).
        channels: input channels (3 for the notebooks and for 2.5D input).
        base_filters: filters of the first level (16 in the notebooks).
        depth: number of downsampling levels (4: 16-32-64-128 then a 256 bridge).
    """

    input_size: int = 256
    channels: int = 3
    base_filters: int = 16
    depth: int = 4

    def __post_init__(self):
        if self.input_size % (2 ** self.depth):
            raise ValueError(f"input size {self.input_size} is not divisible by 2**depth = {2 ** self.depth}")

    def to_dict(self) -> dict:
        return asdict(self)


# Keras' default BatchNormalization momentum (0.99) needs thousands of steps before its
# running statistics match the weights; small medical datasets give a few hundred, and
# validation then sees a different network than training. 0.9 settles within an epoch.
BN_MOMENTUM = 0.9


def _bn(x):
    layers = load_keras().layers
    return layers.BatchNormalization(momentum=BN_MOMENTUM)(x)


def _bn_act(x):
    layers = load_keras().layers
    return layers.Activation("relu")(_bn(x))


def _res_block(x, filters: int, strides: int = 1):
    layers = load_keras().layers
    y = _bn_act(x)
    y = layers.Conv2D(filters, 3, strides=strides, padding="same")(y)
    y = _bn_act(y)
    y = layers.Conv2D(filters, 3, padding="same")(y)
    s = layers.Conv2D(filters, 1, strides=strides, padding="same")(x)
    s = _bn(s)
    return layers.Add()([y, s])


def build_resunet(config: ResUNetConfig = ResUNetConfig(), name: str = "resunet"):
    """Build the model: input [B, H, W, C] float32, output [B, H, W, 1] sigmoid probabilities."""
    keras = load_keras()
    layers = keras.layers
    f = [config.base_filters * 2 ** i for i in range(config.depth + 1)]
    inp = keras.Input((config.input_size, config.input_size, config.channels), name="image")
    # Stem
    x = layers.Conv2D(f[0], 3, padding="same")(inp)
    x = _bn_act(x)
    x = layers.Conv2D(f[0], 3, padding="same")(x)
    s = _bn(layers.Conv2D(f[0], 1, padding="same")(inp))
    x = layers.Add()([x, s])
    skips = [x]
    for level in range(1, config.depth):
        x = _res_block(x, f[level], strides=2)
        skips.append(x)
    x = _res_block(x, f[config.depth], strides=2)  # bridge
    for level in range(config.depth - 1, -1, -1):
        x = layers.UpSampling2D(2)(x)
        x = layers.Concatenate()([x, skips[level]])
        x = _res_block(x, f[level])
    out = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="mask")(x)
    return keras.Model(inp, out, name=name)
