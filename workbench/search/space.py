"""The search space: what each quantizable layer may become, and the layers ranked before any
full validation from what the session already knows (the float file, weight statistics,
per-layer error).

Per layer: float32, int16x8 (int8 weights, int16 activations), int8 per-channel, int8
per-tensor where the kernel's channels have similar ranges, int4 weights on the op types the
LiteRT Quantizer gives them (Conv2D, Dense).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.engine.routes.litert import INT4_OPS
from workbench.errors import WorkbenchError
from workbench.qtyping import LayerPrecision

PER_TENSOR_SPREAD = 2.0  # per-tensor is safe when the widest channel is at most 2x the median
INT4_LEVELS = 7  # symmetric int4 weights: -7..7


@dataclass(frozen=True)
class LayerInfo:
    """One quantizable layer as the search sees it."""

    name: str
    opcodes: tuple[str, ...]
    weights: int  # kernel elements
    per_tensor_safe: bool  # one scale loses little: channel ranges within PER_TENSOR_SPREAD
    int4_noise: (
        float  # int4 rounding noise / weight power from the weight statistics (nan: unknown)
    )

    @property
    def int4(self) -> bool:
        return bool(self.opcodes) and all(opcode in INT4_OPS for opcode in self.opcodes)

    @property
    def options(self) -> tuple[LayerPrecision, ...]:
        """The precisions this layer may take."""
        found = [LayerPrecision.FLOAT32, LayerPrecision.INT16X8, LayerPrecision.INT8]
        if self.per_tensor_safe:
            found.append(LayerPrecision.INT8_PER_TENSOR)
        if self.int4:
            found.append(LayerPrecision.INT4)
        return tuple(found)

    @property
    def int4_saving(self) -> int:
        """Bytes int4 saves over int8 weights."""
        return self.weights // 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.name,
            "ops": list(self.opcodes),
            "weights": self.weights,
            "options": [option.value for option in self.options],
            "int4_noise": None if math.isnan(self.int4_noise) else self.int4_noise,
        }


def layer_space(session: Any) -> tuple[LayerInfo, ...]:
    """Every quantizable layer of the session's model with its options, in model order."""
    from workbench.tflite_file import op_layers, read_tflite

    names = session.layer_names
    model = read_tflite(session.float_bytes)
    opcodes: dict[str, list[str]] = {name: [] for name in names}
    weights = dict.fromkeys(names, 0)
    for index, layer in op_layers(model, names).items():
        op = model.ops[index]
        if layer is None or op.opcode in ("QUANTIZE", "DEQUANTIZE"):
            continue
        opcodes[layer].append(op.opcode)
        kernels = [model.tensors[i] for i in op.inputs if i >= 0]
        kernels = [t for t in kernels if t.constant and len(t.shape) >= 2]
        weights[layer] += sum(math.prod(t.shape) for t in kernels)
    stats = _weight_stats(session)
    return tuple(
        LayerInfo(
            name=name,
            opcodes=tuple(opcodes[name]),
            weights=weights[name],
            per_tensor_safe=_per_tensor_safe(stats.get(name)),
            int4_noise=_int4_noise(stats.get(name)),
        )
        for name in names
    )


def _weight_stats(session: Any) -> dict[str, Any]:
    """Weight statistics by layer (numpy over the kernels, without the activation pass of a
    full inspection); none for sources inspection cannot read."""
    from workbench.inspection import weight_stats

    try:
        return {stats.layer: stats for stats in weight_stats(session.model)}
    except WorkbenchError:
        return {}


def _per_tensor_safe(stats: Any) -> bool:
    if stats is None or not stats.per_channel:
        return False
    absmax = np.array([channel.absmax for channel in stats.per_channel])
    median = float(np.median(absmax))
    return median > 0 and float(absmax.max()) <= PER_TENSOR_SPREAD * median


def _int4_noise(stats: Any) -> float:
    """Rounding noise of per-channel int4 weights over the weights' mean square, from each
    channel's histogram: step = absmax / 7, noise = step^2 / 12."""
    if stats is None:
        return math.nan
    channels = stats.per_channel or [stats.per_tensor]
    noise = power = 0.0
    for channel in channels:
        counts = np.asarray(channel.histogram.counts, dtype=np.float64)
        edges = np.asarray(channel.histogram.edges, dtype=np.float64)
        centres = (edges[:-1] + edges[1:]) / 2
        power += float(np.sum(counts * centres**2))
        noise += float(counts.sum()) * (channel.absmax / INT4_LEVELS) ** 2 / 12
    return noise / power if power > 0 else math.nan


def _ties(seed: int, names: Sequence[str]) -> dict[str, float]:
    """A seeded random number per layer: breaks ties between equal ranks."""
    rng = random.Random(seed)
    return {name: rng.random() for name in names}


def int4_order(layers: Sequence[LayerInfo], seed: int) -> list[LayerInfo]:
    """Layers that can take int4 weights, the least estimated error per byte saved first."""
    candidates = [layer for layer in layers if layer.int4 and layer.int4_saving > 0]
    ties = _ties(seed, [layer.name for layer in candidates])
    known = [c.int4_noise for c in candidates if not math.isnan(c.int4_noise)]
    median = float(np.median(known)) if known else 1.0

    def cost(layer: LayerInfo) -> tuple[float, float]:
        noise = median if math.isnan(layer.int4_noise) else layer.int4_noise
        return noise / layer.int4_saving, ties[layer.name]

    return sorted(candidates, key=cost)


def protect_order(layers: Sequence[LayerInfo], errors: dict[str, float], seed: int) -> list[str]:
    """Layers by their int8 output error (RMSE in units of the scale), the largest first;
    layers without a measured error last."""
    ties = _ties(seed, [layer.name for layer in layers])
    return sorted(
        (layer.name for layer in layers),
        key=lambda name: (-errors.get(name, -1.0), ties[name]),
    )
