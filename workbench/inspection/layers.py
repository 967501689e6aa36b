"""The per-layer table of a Keras model: type, parameter count and bytes at each precision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.folding import flat_layers, quantizable_kernels


@dataclass(frozen=True)
class LayerRow:
    """One layer and the bytes of its weights at float32, float16 and int8.

    The int8 figure is what a full-integer file holds: one byte per kernel weight, four per
    (int32) bias, nothing for a BatchNorm the converter folds into the layer before it
    (`folded_into`). `dtype` and `bytes_stored` are set for rows read from a `.tflite`.
    """

    name: str
    type: str
    params: int
    bytes_float32: int
    bytes_float16: int
    bytes_int8: int
    folded_into: str | None = None
    dtype: str | None = None
    bytes_stored: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def keras_layer_table(keras_model: Any) -> list[LayerRow]:
    """One row per layer (input layers left out), in model order."""
    kernels = {k.layer: k for k in quantizable_kernels(keras_model)}
    folded = {k.folded_from: k.layer for k in kernels.values() if k.folded_from}
    rows = []
    for layer in flat_layers(keras_model):
        if type(layer).__name__ == "InputLayer":
            continue
        params = int(sum(int(np.prod(w.shape)) for w in layer.weights))
        if layer.name in kernels:
            kernel = kernels[layer.name]
            has_bias = layer.use_bias or kernel.folded_from is not None
            int8 = kernel.kernel.size + (4 * kernel.bias.size if has_bias else 0)
        elif layer.name in folded:
            int8 = 0
        else:
            int8 = params
        rows.append(
            LayerRow(
                name=layer.name,
                type=type(layer).__name__,
                params=params,
                bytes_float32=4 * params,
                bytes_float16=2 * params,
                bytes_int8=int8,
                folded_into=folded.get(layer.name),
            )
        )
    return rows
