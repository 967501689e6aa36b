"""The kernels the TFLite converter actually quantizes: BatchNorm and constants folded.

The converter folds an inference-mode BatchNormalization that directly follows a Conv2D,
DepthwiseConv2D or Dense layer (no activation in between, the layer's output used only by the
BatchNorm) into that layer: ``kernel * m`` and ``bias * m + (beta - mean * m)`` with
``m = gamma * rsqrt(variance + epsilon)``, all in float32. ``rsqrt`` is TensorFlow's own (its
result differs from numpy's ``1 / sqrt`` in the last bit for some values, which changes scales),
so this module asks TensorFlow for that one operation; everything else is numpy.
Constant multiplies and adds next to a layer fold too (`workbench.fusions` says which); a
layer whose fold is not modelled carries the reason in `Kernel.not_predicted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.affine import CHANNEL_AXIS
from workbench.errors import UnsupportedError
from workbench.fusions import Step, after_steps, before, consumers


@dataclass(frozen=True, eq=False)
class Kernel:
    """One quantizable weight tensor as the converter sees it.

    `kernel` is in TFLite layout (Conv2D OHWI, DepthwiseConv2D 1HW(C*m), Dense (out, in)),
    `channel_axis` its output-channel axis, `folded_from` the BatchNorm folded into it, `fused`
    every op folded into it (that BatchNorm and constant multiplies / adds), in graph order.
    `not_predicted` says why the converter's kernel is not modelled (then `kernel` and `bias`
    are the layer's own and no view should show them as what the file holds).
    """

    layer: str
    kind: str
    kernel: np.ndarray
    bias: np.ndarray
    channel_axis: int
    folded_from: str | None = None
    fused: tuple[str, ...] = ()
    not_predicted: str | None = None

    @property
    def predicted(self) -> bool:
        return self.not_predicted is None

    def __repr__(self) -> str:
        folded = f", fused {list(self.fused)}" if self.fused else ""
        unknown = ", not predicted" if self.not_predicted else ""
        return f"Kernel({self.layer!r}, {self.kind}, {self.kernel.shape}{folded}{unknown})"


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


def kernel_kind(layer: Any) -> str | None:
    """ "Conv2D", "DepthwiseConv2D" or "Dense" for a layer with a kernel to quantize, else None."""
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


def _linear(layer: Any) -> bool:
    import keras

    activation = getattr(layer, "activation", None)
    return activation is None or activation is keras.activations.linear


def folded_batch_norm(layer: Any) -> Any:
    """The BatchNorm the converter folds into `layer`, or None."""
    import keras

    users = consumers(layer)
    if len(users) != 1 or not isinstance(users[0], keras.layers.BatchNormalization):
        return None
    bn = users[0]
    rank = len(layer.output.shape)
    return bn if _linear(layer) and bn.axis in (-1, rank - 1) else None


def apply_steps(
    kernel: np.ndarray, bias: np.ndarray, channel_axis: int, steps: tuple[Step, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Fold constant ops after a layer: multipliers scale output channels and the bias, offsets
    shift the bias, in float32 and in order."""
    shape = [1] * kernel.ndim
    shape[channel_axis] = -1
    for step in steps:
        if step.multiplier is not None:
            m = step.multiplier.reshape(-1)
            if step.divide:
                kernel, bias = kernel / m.reshape(shape), bias / m
            else:
                kernel, bias = kernel * m.reshape(shape), bias * m
        if step.offset is not None:
            bias = bias + step.offset.reshape(-1)
    return kernel.astype(np.float32), bias.astype(np.float32)


def _after(layer: Any, kind: str) -> tuple[Any, tuple[Step, ...]]:
    """The BatchNorm and the constant ops after `layer` that fold into it."""
    bn = folded_batch_norm(layer)
    shape = layer.kernel.shape  # Keras layout: HWIO, HWCm, (in, out)
    channels = shape[2] * shape[3] if kind == "DepthwiseConv2D" else shape[-1]
    return bn, after_steps(bn or layer, channels) if _linear(layer) else ()


def with_batch_norm(layer: Any, kind: str, bn: Any) -> tuple[np.ndarray, np.ndarray]:
    """`layer`'s kernel (TFLite layout) and bias, with `bn` (if not None) folded in."""
    kernel = to_tflite_layout(layer.kernel.numpy(), kind)
    axis = CHANNEL_AXIS[kind]
    if layer.use_bias:
        bias = np.asarray(layer.bias.numpy(), dtype=np.float32)
    else:
        bias = np.zeros(kernel.shape[axis], np.float32)
    if bn is None:
        return kernel, bias
    multiplier = batch_norm_multiplier(
        bn.gamma.numpy() if bn.scale else None, bn.moving_variance.numpy(), bn.epsilon
    )
    return fold_batch_norm(
        kernel,
        bias,
        channel_axis=axis,
        multiplier=multiplier,
        beta=bn.beta.numpy() if bn.center else None,
        mean=bn.moving_mean.numpy(),
    )


def _kernel(
    layer: Any, kind: str, bn: Any, steps: tuple[Step, ...], taken: frozenset[str]
) -> Kernel:
    """The kernel and bias of one layer as the converter writes them."""
    axis = CHANNEL_AXIS[kind]
    fusion = before(layer, kind, taken)
    if fusion.not_predicted is not None:
        kernel, bias = with_batch_norm(layer, kind, None)
        return Kernel(layer.name, kind, kernel, bias, axis, not_predicted=fusion.not_predicted)
    kernel, bias = with_batch_norm(layer, kind, bn)
    kernel, bias = apply_steps(kernel, bias, axis, steps)
    if fusion.input_scale is not None:  # the converter folds what comes before last
        scale = fusion.input_scale
        kernel = (kernel / scale if fusion.input_divide else kernel * scale).astype(np.float32)
    fused = [*fusion.before, *([bn.name] if bn is not None else []), *(s.name for s in steps)]
    return Kernel(
        layer.name,
        kind,
        kernel,
        bias,
        axis,
        folded_from=bn.name if bn is not None else None,
        fused=tuple(dict.fromkeys(fused)),
    )


def quantizable_kernels(model: Any) -> list[Kernel]:
    """Every Conv2D / DepthwiseConv2D / Dense kernel of a Keras model (or a `ModelSource`
    holding one), BatchNorm folded where the converter folds it, in model order."""
    keras_model = getattr(model, "keras_model", None) or model
    if not hasattr(keras_model, "layers"):
        name = getattr(model, "name", type(model).__name__)
        raise UnsupportedError(f"{name}: quantizable kernels are read from a Keras model")
    found = [(layer, kind) for layer in flat_layers(keras_model) if (kind := kernel_kind(layer))]
    after = {layer.name: _after(layer, kind) for layer, kind in found}
    # an op folded into the layer before it is not folded again into the one after
    taken = frozenset(step.name for _, steps in after.values() for step in steps)
    return [_kernel(layer, kind, *after[layer.name], taken) for layer, kind in found]
