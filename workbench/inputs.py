"""Model inputs: the one check that arrays can feed a model, and the one rule that turns float
inputs into the integers of an integer input tensor.

Every part that feeds a model (datasets, evaluation, activation ranges) checks its arrays with
`check_inputs` (and a dataset's shape with `shape_fits`), and quantizes inputs for an int8 /
uint8 input tensor with `quantize_inputs`, which does what LiteRT's QUANTIZE kernel does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.errors import DataError


def shape_fits(sample_shape: Sequence[int], input_shape: Sequence[int | None]) -> bool:
    """Whether samples of `sample_shape` fit a model input `input_shape` (batch axis first;
    None matches any size)."""
    expected = tuple(input_shape[1:])
    return len(expected) == len(sample_shape) and all(
        want is None or want == got for want, got in zip(expected, sample_shape, strict=True)
    )


def check_inputs(x: Any, input_shape: Sequence[int | None], argument: str = "x") -> np.ndarray:
    """`x` as float32 model inputs, or a one-line `DataError` naming `argument` when the values
    are not numeric, the samples do not fit `input_shape`, there are none, or some are NaN or
    infinite."""
    try:
        array = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{argument}: give a numeric array of model inputs") from None
    expected = tuple(input_shape[1:])
    if array.ndim == 0 or not shape_fits(array.shape[1:], input_shape):
        raise DataError(
            f"{argument}: samples have shape {tuple(array.shape[1:])} but the model input "
            f"expects {expected} (batch axis first); reshape the data to match"
        )
    if len(array) == 0:
        raise DataError(f"{argument}: no samples; give at least one")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise DataError(f"{argument}: {bad} NaN or infinite values; clean or drop those samples")
    return array


def quantize_inputs(x: np.ndarray, dtype: Any, scale: float, zero_point: int) -> np.ndarray:
    """Float inputs as the integers of a quantized input tensor: ``rint(x / scale) +
    zero_point`` in float32, ties to even, clipped to `dtype`. That is LiteRT's QUANTIZE kernel
    (measured on every tie of an int8 input's range), so an integer-I/O model fed this way
    sees what the same model with float I/O computes after its own QUANTIZE op."""
    info = np.iinfo(dtype)
    scaled = np.asarray(x, dtype=np.float32) / np.float32(scale)
    return np.clip(np.rint(scaled) + zero_point, info.min, info.max).astype(dtype)
