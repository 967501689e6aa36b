"""Cross-layer equalization and bias correction (Nagel et al. 2019, "Data-Free Quantization").

No training. For each pair "kernel layer -> [BatchNorm] -> [ReLU] -> kernel layer" (a `ReLU`
layer or ``Activation("relu")``) whose middle tensors feed nothing else, output channel i of the
first layer (BatchNorm folded, as the converter folds it) is divided by
``s_i = sqrt(r1_i / r2_i)`` and input channel i of the second multiplied by it, where r1 and r2
are the channel's ranges in the two kernels: both end up with range ``sqrt(r1_i * r2_i)``, so one
scale per tensor fits every channel. ReLU commutes with a positive scale; ReLU6's clip at 6 does
not, so float outputs move a little where a channel exceeded 6 (measured and reported, never
hidden).

Bias correction then subtracts from each layer's bias the mean shift its int8 per-tensor weight
error causes, ``(W_q - W) E[x]``, with E[x] measured on the calibration data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench import affine
from workbench.folding import (
    batch_norm_multiplier,
    flat_layers,
    folded_batch_norm,
    kernel_kind,
    quantizable_kernels,
)
from workbench.fusions import consumers

PASSES = 4  # sweeps over all pairs (each pair's scaling moves its neighbours' ranges)


@dataclass(frozen=True)
class Pair:
    """Two kernel layers equalized together, and the BatchNorm folded into the first."""

    first: Any
    batch_norm: Any
    second: Any


def pairs(model: Any) -> list[Pair]:
    """Every equalizable pair of the model, in model order."""
    import keras

    found = []
    for layer in flat_layers(model):
        if kernel_kind(layer) is None or getattr(layer, "activation", None) not in (
            None,
            keras.activations.linear,
            keras.activations.relu,
        ):
            continue
        batch_norm = folded_batch_norm(layer)
        if batch_norm is not None and not (batch_norm.scale and batch_norm.center):
            continue  # equalized through gamma and beta, which this BatchNorm lacks
        current = batch_norm or layer
        users = consumers(current)
        if len(users) == 1 and _relu(users[0]):
            users = consumers(users[0])
        multiplier = kernel_kind(layer) == "DepthwiseConv2D" and layer.kernel.shape[-1] != 1
        if not multiplier and len(users) == 1 and kernel_kind(users[0]) is not None:
            second = users[0]
            if kernel_kind(second) != "Dense" or len(current.output.shape) == 2:
                found.append(Pair(layer, batch_norm, second))
    return found


def _relu(layer: Any) -> bool:
    """A ReLU layer, or an Activation("relu") (ResNet's)."""
    import keras

    if isinstance(layer, keras.layers.Activation):
        return layer.activation is keras.activations.relu
    return isinstance(layer, keras.layers.ReLU)


def _output_ranges(pair: Pair) -> np.ndarray:
    """Per output channel, max |w| of the first layer's kernel with its BatchNorm folded."""
    kernel = np.abs(pair.first.kernel.numpy())
    if kernel_kind(pair.first) == "DepthwiseConv2D":  # (h, w, c, 1)
        ranges = kernel.max(axis=(0, 1, 3))
    else:  # Conv2D (h, w, in, out), Dense (in, out)
        ranges = kernel.reshape(-1, kernel.shape[-1]).max(axis=0)
    if pair.batch_norm is not None:
        bn = pair.batch_norm
        multiplier = batch_norm_multiplier(bn.gamma.numpy(), bn.moving_variance.numpy(), bn.epsilon)
        ranges = ranges * np.abs(multiplier)
    return ranges


def _input_ranges(layer: Any) -> np.ndarray:
    """Per input channel, max |w| of the second layer's kernel."""
    kernel = np.abs(layer.kernel.numpy())
    if kernel_kind(layer) == "DepthwiseConv2D":  # (h, w, c, multiplier)
        return kernel.max(axis=(0, 1, 3))
    if kernel_kind(layer) == "Dense":  # (in, out)
        return kernel.max(axis=1)
    return kernel.max(axis=(0, 1, 3))  # (h, w, in, out)


def _scale_outputs(pair: Pair, factor: np.ndarray) -> None:
    """Divide the first layer's output channels (after its BatchNorm) by `factor`."""
    if pair.batch_norm is not None:  # through gamma and beta: the kernel stays as trained
        bn = pair.batch_norm
        bn.gamma.assign(bn.gamma.numpy() / factor)
        bn.beta.assign(bn.beta.numpy() / factor)
        return
    layer = pair.first
    kernel = layer.kernel.numpy()
    if kernel_kind(layer) == "DepthwiseConv2D":
        factor_shape = (1, 1, -1, 1)
    else:
        factor_shape = (1,) * (kernel.ndim - 1) + (-1,)
    layer.kernel.assign(kernel / factor.reshape(factor_shape))
    if layer.use_bias:
        layer.bias.assign(layer.bias.numpy() / factor)


def _scale_inputs(layer: Any, factor: np.ndarray) -> None:
    """Multiply the second layer's input channels by `factor` (a depthwise bias comes after)."""
    kernel = layer.kernel.numpy()
    shape = (-1, 1) if kernel_kind(layer) == "Dense" else (1, 1, -1, 1)
    layer.kernel.assign(kernel * factor.reshape(shape))


@dataclass(frozen=True)
class EqualizedPair:
    """What equalization did to one pair: channel ranges of the first kernel before and after."""

    first: str
    second: str
    before: tuple[float, ...]
    after: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def equalize(model: Any) -> list[EqualizedPair]:
    """Equalize `model` (a Keras 3 model, changed in place); returns the ranges before/after."""
    found = pairs(model)
    before = [_output_ranges(pair) for pair in found]
    for _ in range(PASSES):
        for pair in found:
            r1, r2 = _output_ranges(pair), _input_ranges(pair.second)
            usable = (r1 > 0) & (r2 > 0)
            factor = np.where(usable, np.sqrt(r1 / np.where(usable, r2, 1.0)), 1.0)
            _scale_outputs(pair, factor.astype(np.float32))
            _scale_inputs(pair.second, factor.astype(np.float32))
    return [
        EqualizedPair(
            pair.first.name,
            pair.second.name,
            tuple(float(v) for v in b),
            tuple(float(v) for v in _output_ranges(pair)),
        )
        for pair, b in zip(found, before, strict=True)
    ]


def correct_bias(model: Any, x: np.ndarray) -> None:
    """Subtract from each kernel layer's (folded) bias the mean output shift that int8
    per-tensor weights cause on inputs like `x`."""
    import keras

    layers = {layer.name: layer for layer in flat_layers(model)}
    kernels = quantizable_kernels(model)
    probe = keras.Model(model.inputs, [layers[k.layer].input for k in kernels])
    means = probe.predict(x, batch_size=256, verbose=0)
    means = means if isinstance(means, list) else [means]
    for kernel, inputs in zip(kernels, means, strict=True):
        params = affine.weight_params(kernel.kernel, kind=kernel.kind, per_channel=False)
        error = affine.fake_quantize(kernel.kernel, params) - kernel.kernel
        mean = inputs.reshape(-1, inputs.shape[-1]).mean(axis=0)
        shift = _shift(error, mean, kernel.kind)
        layer = layers[kernel.layer]
        folded = layers.get(kernel.folded_from)
        if folded is not None and folded.center:
            folded.beta.assign(folded.beta.numpy() - shift)
        elif layer.use_bias:
            layer.bias.assign(layer.bias.numpy() - shift)


def _shift(error: np.ndarray, mean: np.ndarray, kind: str) -> np.ndarray:
    """Expected output change per channel of a kernel error (TFLite layout) on mean inputs."""
    if kind == "Dense":  # (out, in)
        return error @ mean
    if kind == "DepthwiseConv2D":  # (1, h, w, c): each channel sees its own input channel
        return error.sum(axis=(0, 1, 2)) * mean
    return np.einsum("ohwi,i->o", error, mean)  # Conv2D (out, h, w, in)
