"""Activation ranges per layer from calibration data, in one streaming pass.

One multi-output Keras model returns every layer's output for a batch; each output updates a
`StreamingHistogram`, so memory stays constant however much data flows through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import DataError, UnsupportedError
from workbench.folding import flat_layers
from workbench.inspection.stats import Stats, StreamingHistogram


@dataclass(frozen=True)
class ActivationRange:
    """The range of one layer's output over the data (`stats` holds the numbers)."""

    layer: str
    type: str
    stats: Stats

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
        return {"layer": self.layer, "type": self.type, **self.stats.to_dict()}


def check_inputs(x: Any, input_shape: tuple[int | None, ...], argument: str = "x") -> np.ndarray:
    """`x` as float32, or `DataError` when its shape or values cannot feed the model."""
    try:
        array = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{argument}: give a numeric array of model inputs") from None
    expected = tuple(input_shape[1:])
    fits = array.ndim == len(expected) + 1 and all(
        want is None or want == got for want, got in zip(expected, array.shape[1:], strict=True)
    )
    if not fits or len(array) == 0:
        raise DataError(
            f"{argument}: shape {array.shape} does not fit the model input (batch, "
            f"{', '.join(str(d) for d in expected)}); reshape the data or pick the matching model"
        )
    if not np.all(np.isfinite(array)):
        raise DataError(f"{argument}: contains NaN or infinite values; clean or drop those samples")
    return array


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


def keras_activation_ranges(keras_model: Any, x: Any, *, batch_size: int = 128) -> list[Any]:
    """Min, max, percentiles and histogram of every layer's output over `x`."""
    import keras

    if len(keras_model.inputs) != 1:
        raise UnsupportedError(
            f"{keras_model.name}: activation ranges need a model with one input, "
            f"not {len(keras_model.inputs)}"
        )
    x = check_inputs(x, tuple(keras_model.inputs[0].shape))
    probes = _probes(keras_model)
    probe = keras.Model(keras_model.inputs[0], [tensor for _, _, tensor in probes])
    histograms = [StreamingHistogram() for _ in probes]
    for start in range(0, len(x), batch_size):
        outputs = probe(x[start : start + batch_size], training=False)
        for histogram, output in zip(histograms, outputs, strict=True):
            histogram.update(keras.ops.convert_to_numpy(output))
    return [
        ActivationRange(name, kind, histogram.stats())
        for (name, kind, _), histogram in zip(probes, histograms, strict=True)
    ]
