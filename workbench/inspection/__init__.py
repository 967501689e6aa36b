"""Inspection: what is in a model before (or after) quantizing it.

- `layer_table(model)`: per layer, type, parameters and bytes at float32 / float16 / int8.
- `weight_stats(model)`: per kernel the converter quantizes (BatchNorm folded), statistics per
  tensor and per output channel.
- `activation_ranges(model, x)`: per layer output, range statistics over `x` in one
  streaming pass (`activation_ranges_progressively`: over the first samples first).

`model` is anything `workbench.models.load_model` takes, or a `ModelSource`; Keras models are
read from the Keras object, `.tflite` models from the file. Every result has `to_dict()`;
`Session.inspect()` gathers all three into one `Inspection`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workbench.errors import UnsupportedError
from workbench.inspection.activations import ActivationRange
from workbench.inspection.layers import LayerRow
from workbench.inspection.report import Inspection
from workbench.inspection.stats import Histogram, Stats
from workbench.inspection.weights import WeightStats

__all__ = [
    "ActivationRange",
    "Histogram",
    "Inspection",
    "LayerRow",
    "Stats",
    "WeightStats",
    "activation_ranges",
    "activation_ranges_progressively",
    "layer_table",
    "weight_stats",
]


def _source(model: Any) -> Any:
    from workbench.models import ModelSource, SourceKind, load_model

    source = model if isinstance(model, ModelSource) else load_model(model)
    if source.kind not in (SourceKind.KERAS, SourceKind.TFLITE):
        raise UnsupportedError(
            f"{source.name}: inspection reads Keras models and .tflite files, not a "
            f"{source.kind.value}; give the .keras file or a converted .tflite"
        )
    return source


def layer_table(model: Any) -> list[LayerRow]:
    source = _source(model)
    if source.tflite_bytes is not None:
        from workbench.inspection.tflite import tflite_layer_table

        return tflite_layer_table(source.tflite_bytes)
    from workbench.inspection.layers import keras_layer_table

    return keras_layer_table(source.keras_model)


def weight_stats(model: Any) -> list[WeightStats]:
    source = _source(model)
    if source.tflite_bytes is not None:
        from workbench.inspection.tflite import tflite_weight_stats

        return tflite_weight_stats(source.tflite_bytes)
    from workbench.inspection.weights import keras_weight_stats

    return keras_weight_stats(source.keras_model)


def activation_ranges(model: Any, x: Any, *, batch_size: int = 128) -> list[ActivationRange]:
    *_, ranges = activation_ranges_progressively(model, x, batch_size=batch_size)
    return ranges


def activation_ranges_progressively(
    model: Any, x: Any, *, first: int | None = None, batch_size: int = 128
) -> Iterator[list[ActivationRange]]:
    """`activation_ranges` over the first `first` samples of `x` (a Keras model's; rounded up
    to whole batches), then over all of them, from one pass."""
    source = _source(model)
    if source.tflite_bytes is not None:
        from workbench.inspection.tflite import tflite_activation_ranges

        yield tflite_activation_ranges(source.tflite_bytes, x, batch_size=batch_size)
        return
    from workbench.inspection.activations import keras_activation_ranges_progressively

    yield from keras_activation_ranges_progressively(
        source.keras_model, x, first=first, batch_size=batch_size
    )
