"""Per-layer error of a quantized `.tflite` against its float `.tflite`.

Both files run on the LiteRT reference kernels with every intermediate tensor preserved. Each
layer's output (the output of the last compute op attributed to that Keras layer) is
dequantized and compared with the float model's output of the same layer: RMSE, and RMSE in
units of the output's quantization scale, as the TFLite QuantizationDebugger reports them. The
error is cumulative (each layer sees the already-quantized layers before it); a layer that only
adds its own rounding sits near 1/sqrt(12) ≈ 0.29 scales.

With no layer names (a bare `.tflite`) every op output is compared, keyed by tensor name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.engine.evaluation import BatchRunner
from workbench.errors import DataError
from workbench.qtyping import LayerError
from workbench.tflite_file import op_layers, read_tflite

BATCH_SIZE = 64
_CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")


def _layer_outputs(model: Any, layer_names: Sequence[str]) -> dict[str, Any]:
    """Key (layer name, or tensor name without layers) -> the tensor holding its output."""
    by_op = op_layers(model, layer_names)
    found: dict[str, Any] = {}
    for op in model.ops:
        if op.opcode in _CONVERSIONS or not op.outputs:
            continue
        tensor = model.tensors[op.outputs[0]]
        if tensor.dtype != "float32" and not tensor.quantized:
            continue  # shapes and indices, not activations
        key = by_op[op.index] if layer_names else tensor.name
        if key is not None:
            found[key] = tensor  # the layer's last op wins
    return found


def _dequantized(runner: BatchRunner, tensor: Any) -> np.ndarray:
    value = runner.interpreter.get_tensor(tensor.index)
    if not tensor.quantized:
        return value.astype(np.float64)
    return (value.astype(np.float64) - tensor.zero_points[0]) * tensor.scales[0]


def layer_errors(
    float_tflite: bytes, quant_tflite: bytes, x: np.ndarray, layer_names: Sequence[str]
) -> tuple[LayerError, ...]:
    """Per-layer RMSE and RMSE/scale of `quant_tflite` against `float_tflite` on inputs `x`.

    Layers appear in execution order. `scale` and `rmse_per_scale` are 0.0 for a layer whose
    output stayed float (dynamic-range and float16 variants, layers kept float).
    """
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise DataError("x: no samples to measure per-layer error on")
    names = list(layer_names)
    float_outputs = _layer_outputs(read_tflite(float_tflite), names)
    quant_outputs = _layer_outputs(read_tflite(quant_tflite), names)
    keys = [key for key in quant_outputs if key in float_outputs]
    options = {
        "experimental_preserve_all_tensors": True,
        "experimental_op_resolver_type": _reference_kernels(),
    }
    float_runner = BatchRunner(float_tflite, **options)
    quant_runner = BatchRunner(quant_tflite, **options)
    squared = dict.fromkeys(keys, 0.0)
    counts = dict.fromkeys(keys, 0)
    batch_size = float_runner.fixed_batch or quant_runner.fixed_batch or BATCH_SIZE
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        float_runner.invoke(batch)
        quant_runner.invoke(batch)
        for key in keys:
            reference = _dequantized(float_runner, float_outputs[key])
            value = _dequantized(quant_runner, quant_outputs[key])
            if reference.shape != value.shape:
                continue  # the two files disagree on this tensor: not comparable
            if reference.ndim and reference.shape[0] > len(batch):  # rows padding a fixed batch
                reference, value = reference[: len(batch)], value[: len(batch)]
            squared[key] += float(np.sum((value - reference) ** 2))
            counts[key] += reference.size
    errors = []
    for key in keys:
        if counts[key] == 0:
            continue
        tensor = quant_outputs[key]
        rmse = float(np.sqrt(squared[key] / counts[key]))
        scale = tensor.scales[0] if tensor.quantized else 0.0
        errors.append(
            LayerError(
                layer=key,
                tensor=tensor.name,
                rmse=rmse,
                scale=scale,
                rmse_per_scale=rmse / scale if scale > 0 else 0.0,
            )
        )
    return tuple(errors)


def _reference_kernels() -> object:
    """Builtin kernels without XNNPACK, which would fuse ops and hide their outputs."""
    from ai_edge_litert.interpreter import OpResolverType

    return OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
