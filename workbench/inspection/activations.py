"""Activation ranges per layer from calibration data, in one streaming pass.

One multi-output Keras model returns every layer's output for a batch; each output updates a
`StreamingHistogram`, so memory stays constant however much data flows through.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workbench.errors import UnsupportedError
from workbench.folding import flat_layers
from workbench.inputs import check_inputs
from workbench.inspection.stats import Stats, StreamingHistogram


@dataclass(frozen=True)
class ActivationRange:
    """The range of one layer's output over the data (`stats` holds the numbers)."""

    layer: str
    type: str
    stats: Stats
    dtype: str = "float32"  # of the tensor the values were read from
    scales: tuple[float, ...] = ()  # quantization parameters as stored in a .tflite
    zero_points: tuple[int, ...] = ()

    @property
    def min(self) -> float:
        return self.stats.min

    @property
    def max(self) -> float:
        return self.stats.max

    @property
    def percentiles(self) -> dict[float, float]:
        return self.stats.percentiles

    @property
    def histogram(self) -> Any:
        return self.stats.histogram

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "type": self.type,
            "dtype": self.dtype,
            "scales": list(self.scales),
            "zero_points": list(self.zero_points),
            **self.stats.to_dict(),
        }


def _probes(keras_model: Any) -> list[tuple[str, str, Any]]:
    """(name, type, tensor) of the model input and each layer with one tensor output."""
    source = keras_model.inputs[0]
    probes = [(source.name, "Input", source)]
    for layer in flat_layers(keras_model):
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError):
            continue
        if not isinstance(output, list | tuple | dict):
            probes.append((layer.name, type(layer).__name__, output))
    return probes


def _flat(keras_model: Any) -> Any:
    """The model itself, or for one with nested models (a base model inside, as transfer
    learning builds it) a clone with the same layers and weights, nested models inlined: the
    outputs of a nested model's layers are not tensors of the outer model."""
    import keras

    if not any(isinstance(layer, keras.Model) for layer in keras_model.layers):
        return keras_model
    from workbench.compress.bridge import clone

    return clone(keras_model)


_SUMMARISERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _summariser(keras_model: Any, fine: int) -> tuple[list[tuple[str, str, Any]], Any]:
    """The probes of a model and a compiled function batch -> [(min, max, counts)] per probe.

    Everything but the per-probe summaries stays inside TensorFlow; built once per model.
    """
    if keras_model in _SUMMARISERS:
        return _SUMMARISERS[keras_model]
    import keras
    import tensorflow as tf

    probed = _flat(keras_model)
    probes = _probes(probed)
    probe = keras.Model(probed.inputs[0], [tensor for _, _, tensor in probes])
    shape = (None, *keras_model.inputs[0].shape[1:])

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def summarise(batch: Any) -> list[Any]:
        summaries = []
        for output in probe(batch, training=False):
            values = tf.reshape(tf.cast(output, tf.float32), [-1])
            lo, hi = tf.reduce_min(values), tf.reduce_max(values)
            # one kernel bins and counts (an op per step took most of the time at 224x224)
            top = tf.where(hi > lo, hi, lo + fine)
            counts = tf.histogram_fixed_width(values, tf.stack([lo, top]), nbins=fine)
            summaries.append((lo, hi, counts))
        return summaries

    _SUMMARISERS[keras_model] = (probes, summarise)
    return probes, summarise


def keras_activation_ranges(keras_model: Any, x: Any, *, batch_size: int = 128) -> list[Any]:
    """Min, max, percentiles and histogram of every layer's output over `x`."""
    *_, ranges = keras_activation_ranges_progressively(keras_model, x, batch_size=batch_size)
    return ranges


def keras_activation_ranges_progressively(
    keras_model: Any, x: Any, *, first: int | None = None, batch_size: int = 128
) -> Iterator[list[Any]]:
    """The ranges over the first `first` samples of `x` (rounded up to whole batches), then
    over all of it, from one pass: the early ones cost only their statistics."""
    if len(keras_model.inputs) != 1:
        raise UnsupportedError(
            f"{keras_model.name}: activation ranges need a model with one input, "
            f"not {len(keras_model.inputs)}"
        )
    from workbench.datasets.lazy import is_lazy, samples_per_batch

    shape = tuple(keras_model.inputs[0].shape)
    if not is_lazy(x):
        x = check_inputs(x, shape)
    probes, summarise = _summariser(keras_model, StreamingHistogram().fine)
    histograms = [StreamingHistogram() for _ in probes]
    batch_size = min(batch_size, samples_per_batch(tuple(shape[1:])))  # large inputs: fewer

    def ranges() -> list[Any]:
        return [
            ActivationRange(name, kind, histogram.stats())
            for (name, kind, _), histogram in zip(probes, histograms, strict=True)
        ]

    early = first is not None
    for start in range(0, len(x), batch_size):  # inputs read from files: a batch at a time
        summaries = summarise(check_inputs(x[start : start + batch_size], shape))
        for histogram, (lo, hi, counts) in zip(histograms, summaries, strict=True):
            histogram.merge(float(lo), float(hi), counts.numpy())
        if early and first <= start + batch_size < len(x):
            early = False
            yield ranges()
    yield ranges()
