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

from workbench.affine import CHANNEL_AXIS
from workbench.inspection.tflite import KERNEL_OPS, _interpreter, _namer, _stored
from workbench.tflite_file import read_tflite


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
    model = read_tflite(data)
    name = _namer(model, layer_names)
    interpreter = _interpreter(data)
    facts = []
    for op in model.ops:
        kind = KERNEL_OPS.get(op.opcode)
        stored = _stored(model, op.inputs[1]) if kind and len(op.inputs) > 1 else None
        if stored is None:
            continue
        values = np.asarray(interpreter.get_tensor(stored.index))
        axis = stored.quantized_dimension if stored.per_channel else CHANNEL_AXIS[kind]
        channels = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        facts.append(
            KernelFacts(
                layer=name(op.index),
                kind=kind,
                dtype=stored.dtype,
                size=int(values.size),
                zeros=float(np.mean(values == 0)),
                distinct=int(np.unique(values).size),
                distinct_per_channel=max(int(np.unique(row).size) for row in channels),
            )
        )
    return facts
