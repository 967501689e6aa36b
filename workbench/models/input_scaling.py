"""Whether a Keras model scales its own input, as Keras' tutorials, MobileNetV3 and EfficientNet
do: a `Rescaling`, an adapted `Normalization` or a division by a constant comes first (after
augmentation layers, which pass inputs through at inference). Such a model takes 8-bit images
as the values 0..255; scaling them to 0..1 before would scale them twice."""

from __future__ import annotations

from typing import Any

import numpy as np

PASS_THROUGH = frozenset(
    {
        "InputLayer",
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "RandomTranslation",
        "RandomContrast",
        "RandomBrightness",
        "RandomCrop",
        "Resizing",
        "CenterCrop",
        "Dropout",
        "GaussianNoise",
        "GaussianDropout",
    }
)
BYTE_SCALE = 1 / 64  # a factor this small or smaller maps 0..255 to a few units: bytes go in
BYTE_MEAN = 2.0  # a Normalization adapted on bytes has channel means far above 1


def scales_its_input(model: Any) -> bool:
    """Whether the first operation on `model`'s input scales bytes down (see the module)."""
    first = _first_operation(model)
    if first is None:
        return False
    kind = type(first).__name__
    if kind == "Rescaling":
        return _largest(first.scale) <= BYTE_SCALE
    if kind == "Normalization":
        mean = getattr(first, "mean", None)
        return mean is not None and _largest(mean) > BYTE_MEAN
    constant = _constant_argument(first)
    if constant is None:
        return False
    if kind in ("TrueDivide", "Divide"):
        return constant >= 1 / BYTE_SCALE
    return kind == "Multiply" and constant <= BYTE_SCALE


def _first_operation(model: Any) -> Any:
    """The first operation that changes values, inside nested models too (None: none found)."""
    for operation in getattr(model, "operations", None) or getattr(model, "layers", ()):
        if type(operation).__name__ in PASS_THROUGH:
            continue
        if hasattr(operation, "layers"):  # a nested model: augmentation only, or its first op
            inner = _first_operation(operation)
            if inner is None:
                continue
            return inner
        return operation
    return None


def _constant_argument(operation: Any) -> float | None:
    """The scalar constant an operation such as ``x / 127.5`` was called with, if any."""
    nodes = getattr(operation, "_inbound_nodes", None)
    if not nodes:
        return None
    numbers = [a for a in nodes[0].arguments.args if isinstance(a, int | float)]
    return abs(float(numbers[0])) if len(numbers) == 1 else None


def _largest(value: Any) -> float:
    return float(np.max(np.abs(np.asarray(value, dtype=np.float64))))
