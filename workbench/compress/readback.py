"""What pruning and clustering left in a `.tflite`: zeros, distinct values, gzip size.

Read from the file itself (the stored integer or float values of every conv / depthwise /
fully-connected kernel), so the numbers are what a device would load, not what Keras held.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.inspection.tflite import stored_kernels


@dataclass(frozen=True)
class KernelFacts:
    """One kernel as stored: its fraction of zeros and how many distinct values it holds."""

    layer: str
    kind: str
    dtype: str
    size: int
    zeros: float  # fraction of stored values equal to zero
    distinct: int  # distinct stored values in the whole kernel
    distinct_per_channel: int  # the most distinct values any output channel holds

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def gzip_size(data: bytes) -> int:
    """Bytes after gzip at level 9 (TF-MOT's measure of what sparsity and clustering save)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def kernel_facts(data: bytes, layer_names: Sequence[str] = ()) -> list[KernelFacts]:
    """Zeros and distinct values of every kernel in a `.tflite`, in op order."""
    facts = []
    for layer, kind, stored, values, axis in stored_kernels(data, layer_names):
        channels = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        facts.append(
            KernelFacts(
                layer=layer,
                kind=kind,
                dtype=stored.dtype,
                size=int(values.size),
                zeros=float(np.mean(values == 0)),
                distinct=int(np.unique(values).size),
                distinct_per_channel=max(int(np.unique(row).size) for row in channels),
            )
        )
    return facts
