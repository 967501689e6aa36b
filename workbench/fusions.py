"""Which neighbouring constant ops the TFLite converter folds into a quantizable layer.

Beyond an inference-mode BatchNormalization (see `workbench.folding`), the converter folds
constant elementwise ops next to a Conv2D, DepthwiseConv2D or Dense layer into its kernel and
bias, so the int8 tensors in the file are not the Keras layer's own. What it does, found by
converting small models with each pattern (TensorFlow 2.21):

- After the layer (its activation linear, each op the only consumer of the one before): a
  BatchNormalization, ``x * c``, ``c * x``, ``x / c``, ``x + c``, ``c + x``, ``x - c`` and a
  `Rescaling` layer, with `c` a scalar or one value per output channel, all fold: multiplies
  scale the kernel's output channels and the bias, adds shift the bias. ``c - x`` does not fold.
- Before the layer (walking back from its input, through ZeroPadding2D): a multiply or divide
  by a scalar folds into the whole kernel (a `Rescaling(1/255)` input does, even through the
  padding EfficientNet puts before its stem); one value per channel does not, nor does an add
  of one value per channel into a convolution. An added scalar folds into the bias of a Dense
  layer and of a convolution with valid padding and no padding op in between (it does not
  with ``padding="same"``); that sum over the kernel is not modelled, so such a layer (and a
  Dense layer after any add) is marked "not predicted" rather than shown with numbers that
  are not in the file.

`Step` is one folded op as ``y = y * multiplier + offset``; identities (``x * 1``, ``x + 0``, a
`Normalization` with mean 0 and variance 1) are skipped, as the converter removes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ADDS = {"Add": 1.0, "Subtract": -1.0}
MULTIPLIES = {"Multiply", "TrueDivide", "Divide"}


@dataclass(frozen=True, eq=False)
class Step:
    """One constant op folded after a layer: ``y * multiplier + offset`` (float32 each)."""

    name: str
    multiplier: np.ndarray | None = None
    offset: np.ndarray | None = None
    divide: bool = False  # ``y / multiplier`` (the converter divides, it does not invert)


@dataclass(frozen=True)
class Fusion:
    """What the converter folds into one layer: a scalar multiplier of its input (`input_scale`,
    with the ops it came from in `before`), the `after` steps in order, or why it is not
    predicted."""

    before: tuple[str, ...] = ()
    input_scale: np.ndarray | None = None
    input_divide: bool = False
    after: tuple[Step, ...] = ()
    not_predicted: str | None = None


def consumers(operation: Any) -> list[Any]:
    """The distinct operations fed by `operation`'s output (a loaded model repeats nodes)."""
    users: list[Any] = []
    for node in getattr(operation, "_outbound_nodes", []):
        user = node.operation
        if not any(known is user for known in users):
            users.append(user)
    return users


def _producer(operation: Any) -> Any:
    """The operation feeding `operation`'s only tensor input, or None."""
    nodes = getattr(operation, "_inbound_nodes", [])
    if not nodes or len(nodes[0].parent_nodes) != 1:
        return None
    return nodes[0].parent_nodes[0].operation


def _constant(value: Any) -> np.ndarray | None:
    """A Python / numpy number or array as float32, or None for a tensor."""
    if isinstance(value, int | float | np.ndarray | np.number) and not isinstance(value, bool):
        return np.asarray(value, dtype=np.float32)
    return None


def _operands(operation: Any) -> tuple[np.ndarray, bool] | None:
    """(the constant, whether it comes first) of a binary op with one tensor operand."""
    nodes = getattr(operation, "_inbound_nodes", [])
    if len(nodes) != 1 or len(nodes[0].arguments.args) != 2 or nodes[0].arguments.kwargs:
        return None
    first, second = nodes[0].arguments.args
    if _constant(first) is not None and _constant(second) is None:
        return _constant(first), True
    if _constant(second) is not None and _constant(first) is None:
        return _constant(second), False
    return None


def _is_identity(value: np.ndarray | None, identity: float) -> bool:
    return value is None or bool(np.all(value == np.float32(identity)))


def elementwise(operation: Any) -> list[Step] | None:
    """`operation` as ``y * multiplier + offset`` steps (identities dropped), or None when it
    is not a constant elementwise op the converter folds."""
    import keras

    kind = type(operation).__name__
    if isinstance(operation, keras.layers.Rescaling):
        scale, offset = _constant(operation.scale), _constant(operation.offset)
        if scale is None or offset is None:
            return None
        steps = [] if _is_identity(scale, 1.0) else [Step(operation.name, multiplier=scale)]
        if not _is_identity(offset, 0.0):
            steps.append(Step(operation.name, offset=offset))
        return steps
    if isinstance(operation, keras.layers.Normalization):
        mean, variance = np.asarray(operation.mean), np.asarray(operation.variance)
        if operation.invert or not (_is_identity(mean, 0.0) and _is_identity(variance, 1.0)):
            return None
        return []
    operands = _operands(operation) if kind in {*ADDS, *MULTIPLIES} else None
    if operands is None:
        return None
    constant, first = operands
    if kind in ADDS:
        if kind == "Subtract" and first:  # c - x negates x: not folded
            return None
        offset = constant * np.float32(ADDS[kind])
        return [] if _is_identity(offset, 0.0) else [Step(operation.name, offset=offset)]
    if first and kind != "Multiply":  # c / x
        return None
    if _is_identity(constant, 1.0):
        return []
    return [Step(operation.name, multiplier=constant, divide=kind != "Multiply")]


def _fits_channels(step: Step, channels: int) -> bool:
    return all(
        value is None or value.size == 1 or (value.size == channels and value.shape[-1] == channels)
        for value in (step.multiplier, step.offset)
    )


def after_steps(start: Any, channels: int) -> tuple[Step, ...]:
    """The constant ops after `start` (the layer, or the BatchNorm folded into it) that fold."""
    steps: list[Step] = []
    current = start
    while True:
        users = consumers(current)
        if len(users) != 1:
            break
        found = elementwise(users[0])
        if found is None or not all(_fits_channels(step, channels) for step in found):
            break
        steps.extend(found)
        current = users[0]
    return tuple(steps)


def _valid_padding(layer: Any) -> bool:
    return getattr(layer, "padding", "valid") == "valid"


def before(layer: Any, kind: str, taken: frozenset[str] = frozenset()) -> Fusion:
    """The scalar multiplier folded into `layer`'s kernel from the ops before it (or why the
    fold is not predicted); ops in `taken` are folded into the layer before them."""
    import keras

    names: list[str] = []
    scale: np.ndarray | None = None
    divide = False
    padded = False
    current = layer
    while (producer := _producer(current)) is not None:
        if producer.name in taken:
            break
        padding = isinstance(producer, keras.layers.ZeroPadding2D)
        steps = [] if padding else elementwise(producer)
        if steps is None:
            break
        if len(consumers(producer)) != 1:
            if names or steps:
                return Fusion(not_predicted=f"{producer.name} feeds several layers")
            break
        if padding:
            padded = True
            current = producer
            continue
        if any(step.offset is not None for step in steps):
            scalar = all(step.offset.size == 1 for step in steps if step.offset is not None)
            if kind == "Dense" or (scalar and _valid_padding(layer) and not padded):
                return Fusion(
                    not_predicted=(
                        f"the converter folds the constant added by {producer.name} into the "
                        "bias (not modelled)"
                    )
                )
            break
        if any(step.multiplier.size != 1 for step in steps):
            break
        if steps:
            if scale is not None or len(steps) != 1:
                return Fusion(not_predicted=f"{producer.name}: several input multipliers")
            scale, divide = steps[0].multiplier.reshape(()), steps[0].divide
            names.append(producer.name)
        current = producer
    return Fusion(before=tuple(names), input_scale=scale, input_divide=divide)
