"""Weight statistics of the kernels the converter quantizes (BatchNorm and constants folded).

A kernel whose fold is not modelled (`Kernel.not_predicted`) gets no statistics, only the
reason: its own weights are not what the converter quantizes, so they are not shown as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.folding import Kernel, quantizable_kernels
from workbench.inspection.stats import Stats, channel_stats, tensor_stats


@dataclass(frozen=True)
class WeightStats:
    """Statistics of one kernel as a whole and per output channel."""

    layer: str
    kind: str
    shape: tuple[int, ...]
    channel_axis: int | None
    per_tensor: Stats | None  # None when `not_predicted`
    per_channel: list[Stats] = field(default_factory=list)
    folded_from: str | None = None
    not_predicted: str | None = None  # why the converter's kernel is not modelled
    dtype: str = "float32"  # as stored; weights read from a .tflite may be int8 or float16
    scales: tuple[float, ...] = ()  # quantization parameters as stored in a .tflite
    zero_points: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "kind": self.kind,
            "shape": list(self.shape),
            "channel_axis": self.channel_axis,
            "folded_from": self.folded_from,
            "not_predicted": self.not_predicted,
            "dtype": self.dtype,
            "scales": list(self.scales),
            "zero_points": list(self.zero_points),
            "per_tensor": None if self.per_tensor is None else self.per_tensor.to_dict(),
            "per_channel": [stats.to_dict() for stats in self.per_channel],
        }


def kernel_stats(kernel: Kernel) -> WeightStats:
    if not kernel.predicted:
        return WeightStats(
            layer=kernel.layer,
            kind=kernel.kind,
            shape=tuple(kernel.kernel.shape),
            channel_axis=kernel.channel_axis,
            per_tensor=None,
            not_predicted=kernel.not_predicted,
        )
    return WeightStats(
        layer=kernel.layer,
        kind=kernel.kind,
        shape=tuple(kernel.kernel.shape),
        channel_axis=kernel.channel_axis,
        per_tensor=tensor_stats(kernel.kernel),
        per_channel=channel_stats(kernel.kernel, kernel.channel_axis),
        folded_from=kernel.folded_from,
    )


def keras_weight_stats(keras_model: Any) -> list[WeightStats]:
    return [kernel_stats(kernel) for kernel in quantizable_kernels(keras_model)]
