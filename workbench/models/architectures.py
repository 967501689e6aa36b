"""The demo architectures: a small CNN for `digits`, a MobileNet-style network for `shapes`."""

from __future__ import annotations

from typing import Any


def build_digits_cnn() -> Any:
    """Two convolutions, pooling and a dense head on 8x8x1 digits (about 30k parameters)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense"),
            layers.Dense(10, activation="softmax", name="classifier"),
        ],
        name="digits_cnn",
    )


BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1))  # (pointwise filters, stride)
HEAD_FILTERS = 1280  # MobileNetV2's last 1x1 convolution
WEIGHT_DECAY = 5e-4  # L2 on full convolutions only; depthwise kernels get none (MobileNet paper)


def build_shapes_mobilenet(bn_epsilon: float = 1e-5) -> Any:
    """MobileNet style with MobileNetV2's 1x1 head: Conv+BN+ReLU6 stem, depthwise-separable
    blocks, a 1x1 Conv+BN+ReLU6 to 1280 channels, pooling, dense classifier.

    `bn_epsilon` defaults to PyTorch's 1e-5 (Keras uses 1e-3): it bounds the gain that folding
    a BatchNorm gives a channel whose variance collapsed, which is what spreads the ranges of
    folded depthwise kernels in trained MobileNets.
    """
    import keras
    from keras import layers

    def batch_norm(name: str) -> Any:
        return layers.BatchNormalization(epsilon=bn_epsilon, name=name)

    decay = keras.regularizers.L2(WEIGHT_DECAY)

    inputs = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(
        32, 3, strides=2, padding="same", use_bias=False, kernel_regularizer=decay, name="stem"
    )(inputs)
    x = batch_norm("stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for index, (filters, stride) in enumerate(BLOCKS, start=1):
        prefix = f"block{index}"
        x = layers.DepthwiseConv2D(
            3, strides=stride, padding="same", use_bias=False, name=f"{prefix}_dw"
        )(x)
        x = batch_norm(f"{prefix}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_dw_relu")(x)
        x = layers.Conv2D(
            filters, 1, use_bias=False, kernel_regularizer=decay, name=f"{prefix}_pw"
        )(x)
        x = batch_norm(f"{prefix}_pw_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_pw_relu")(x)
    x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, kernel_regularizer=decay, name="head")(x)
    x = batch_norm("head_bn")(x)
    x = layers.ReLU(6.0, name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(10, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="shapes_mobilenet")
