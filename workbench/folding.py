"""The kernels the TFLite converter actually quantizes: BatchNorm folded, TFLite layout.

The converter folds an inference-mode BatchNormalization that directly follows a Conv2D,
DepthwiseConv2D or Dense layer (no activation in between, the layer's output used only by the
BatchNorm) into that layer: ``kernel * m`` and ``bias * m + (beta - mean * m)`` with
``m = gamma * rsqrt(variance + epsilon)``, all in float32. ``rsqrt`` is TensorFlow's own (its
result differs from numpy's ``1 / sqrt`` in the last bit for some values, which changes scales),
so this module asks TensorFlow for that one operation; everything else is numpy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.affine import CHANNEL_AXIS
from workbench.errors import UnsupportedError


@dataclass(frozen=True, eq=False)
class Kernel:
    """One quantizable weight tensor as the converter sees it.

    `kernel` is in TFLite layout (Conv2D OHWI, DepthwiseConv2D 1HW(C*m), Dense (out, in)),
    `channel_axis` its output-channel axis, `folded_from` the BatchNorm folded into it.
    """

    layer: str
    kind: str
    kernel: np.ndarray
    bias: np.ndarray
    channel_axis: int
    folded_from: str | None = None

    def __repr__(self) -> str:
        folded = f", folded {self.folded_from!r}" if self.folded_from else ""
        return f"Kernel({self.layer!r}, {self.kind}, {self.kernel.shape}{folded})"


def batch_norm_multiplier(gamma: np.ndarray | None, variance: np.ndarray, epsilon: float):
    """``gamma * rsqrt(variance + epsilon)`` in float32, with TensorFlow's rsqrt."""
    import tensorflow as tf

    variance = np.asarray(variance, dtype=np.float32)
    inverse = tf.math.rsqrt(variance + np.float32(epsilon)).numpy()
    return inverse if gamma is None else inverse * np.asarray(gamma, dtype=np.float32)


def fold_batch_norm(
    kernel: np.ndarray,
    bias: np.ndarray,
    *,
    channel_axis: int,
    multiplier: np.ndarray,
    beta: np.ndarray | None,
    mean: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``y * multiplier + (beta - mean * multiplier)`` into a TFLite-layout kernel."""
    shape = [1] * kernel.ndim
    shape[channel_axis] = -1
    m = np.asarray(multiplier, dtype=np.float32)
    folded_kernel = (kernel * m.reshape(shape)).astype(np.float32)
    offset = -np.asarray(mean, dtype=np.float32) * m
    if beta is not None:
        offset = np.asarray(beta, dtype=np.float32) - np.asarray(mean, dtype=np.float32) * m
    return folded_kernel, (bias * m + offset).astype(np.float32)


def _kind(layer: Any) -> str | None:
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "DepthwiseConv2D"
    if isinstance(layer, keras.layers.Conv2D) and not isinstance(
        layer, keras.layers.Conv2DTranspose
    ):
        return "Conv2D"
    if isinstance(layer, keras.layers.Dense):
        return "Dense"
    return None


def to_tflite_layout(kernel: np.ndarray, kind: str) -> np.ndarray:
    """A Keras kernel in the layout the `.tflite` file stores."""
    kernel = np.asarray(kernel, dtype=np.float32)
    if kind == "Conv2D":  # HWIO -> OHWI
        return np.ascontiguousarray(np.transpose(kernel, (3, 0, 1, 2)))
    if kind == "DepthwiseConv2D":  # HWCm -> 1HW(C*m)
        height, width = kernel.shape[:2]
        return kernel.reshape(1, height, width, -1)
    return np.ascontiguousarray(kernel.T)  # Dense (in, out) -> (out, in)


def flat_layers(model: Any) -> list[Any]:
    """The layers of a Keras model, nested models expanded, in model order."""
    import keras

    layers = []
    for layer in model.layers:
        layers.extend(flat_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return layers


def _consumers(layers: list[Any]) -> dict[int, list[Any]]:
    """Layers fed by each layer's output (keyed by the producing layer's id)."""
    consumers: dict[int, list[Any]] = defaultdict(list)
    for layer in layers:
        for node in getattr(layer, "_inbound_nodes", []):
            for parent in node.parent_nodes:
                users = consumers[id(parent.operation)]
                if not any(user is layer for user in users):  # a loaded model repeats nodes
                    users.append(layer)
    return consumers


def _folds(layer: Any, users: list[Any]) -> Any:
    """The BatchNorm the converter folds into `layer`, or None."""
    import keras

    if len(users) != 1 or not isinstance(users[0], keras.layers.BatchNormalization):
        return None
    bn = users[0]
    activation = getattr(layer, "activation", None)
    linear = activation is None or activation is keras.activations.linear
    rank = len(layer.output.shape)
    return bn if linear and bn.axis in (-1, rank - 1) else None


def quantizable_kernels(model: Any) -> list[Kernel]:
    """Every Conv2D / DepthwiseConv2D / Dense kernel of a Keras model (or a `ModelSource`
    holding one), BatchNorm folded where the converter folds it, in model order."""
    keras_model = getattr(model, "keras_model", None) or model
    if not hasattr(keras_model, "layers"):
        name = getattr(model, "name", type(model).__name__)
        raise UnsupportedError(f"{name}: quantizable kernels are read from a Keras model")
    layers = flat_layers(keras_model)
    consumers = _consumers(layers)
    kernels = []
    for layer in layers:
        kind = _kind(layer)
        if kind is None:
            continue
        kernel = to_tflite_layout(layer.kernel.numpy(), kind)
        axis = CHANNEL_AXIS[kind]
        if layer.use_bias:
            bias = np.asarray(layer.bias.numpy(), dtype=np.float32)
        else:
            bias = np.zeros(kernel.shape[axis], np.float32)
        bn = _folds(layer, consumers.get(id(layer), []))
        if bn is not None:
            multiplier = batch_norm_multiplier(
                bn.gamma.numpy() if bn.scale else None, bn.moving_variance.numpy(), bn.epsilon
            )
            kernel, bias = fold_batch_norm(
                kernel,
                bias,
                channel_axis=axis,
                multiplier=multiplier,
                beta=bn.beta.numpy() if bn.center else None,
                mean=bn.moving_mean.numpy(),
            )
        kernels.append(
            Kernel(layer.name, kind, kernel, bias, axis, bn.name if bn is not None else None)
        )
    return kernels
