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


def build_shapes_mobilenet() -> Any:
    """MobileNet-v1 style: Conv+BN+ReLU6 stem, depthwise-separable blocks, pooling, dense head."""
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for index, (filters, stride) in enumerate(BLOCKS, start=1):
        prefix = f"block{index}"
        x = layers.DepthwiseConv2D(
            3, strides=stride, padding="same", use_bias=False, name=f"{prefix}_dw"
        )(x)
        x = layers.BatchNormalization(name=f"{prefix}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_dw_relu")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}_pw")(x)
        x = layers.BatchNormalization(name=f"{prefix}_pw_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_pw_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(10, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="shapes_mobilenet")
