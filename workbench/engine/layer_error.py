"""Per-layer error of a quantized `.tflite` against its float `.tflite`, layer by layer.

As the TFLite QuantizationDebugger measures it: the quantized model runs on the LiteRT
reference kernels with every intermediate tensor preserved; for each layer, the float model's
ops of that layer alone (cut out of the float file as a one-layer model) run on the *same*
inputs, dequantized from the quantized run. The difference of the two outputs is the error this
layer adds by itself, not the error accumulated before it: RMSE, and RMSE in units of the
output's quantization scale. An ideally quantized layer, whose error is the rounding of its
output alone, sits near 1/sqrt(12) ≈ 0.29 scales.

Layers are matched by Keras layer name (`op_layers`); with no layer names (a bare `.tflite`)
every op is its own layer, matched by output tensor name.

When the reference kernels refuse the quantized model (a kernel's check fails in prepare, e.g.
``no_integer_overflow_from_quantization`` for a layer whose output scale is tiny), each layer is
tried alone on them: the layers refused are reported `Unavailable` with the runtime's reason,
and the others are read from the default runtime (XNNPACK) with their tensors made outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.engine.evaluation import BatchRunner, allocate, invoke, make_interpreter
from workbench.errors import DataError, RuntimeRefusal
from workbench.qtyping import LayerError, Unavailable
from workbench.tflite_edit import cut, unpack, with_outputs
from workbench.tflite_file import op_layers, read_tflite

BATCH_SIZE = 64
_CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")


@dataclass(frozen=True)
class _Pair:
    """One layer in both files: the float ops to cut out and the quantized ops they mirror."""

    key: str
    float_ops: tuple[Any, ...]
    quant_ops: tuple[Any, ...]


def _layer_ops(model: Any, layer_names: Sequence[str]) -> dict[str, list[Any]]:
    """Key (layer name, or an op's output name without layers) -> its compute ops, in order."""
    by_op = op_layers(model, layer_names) if layer_names else None
    found: dict[str, list[Any]] = {}
    for op in model.ops:
        if op.opcode in _CONVERSIONS or not op.outputs:
            continue
        output = model.tensors[op.outputs[0]]
        if output.dtype != "float32" and not output.quantized:
            continue  # shapes and indices, not activations
        key = by_op[op.index] if by_op is not None else output.name
        if key is not None:
            found.setdefault(key, []).append(op)
    return found


def _pairs(float_model: Any, quant_model: Any, layer_names: Sequence[str]) -> list[_Pair]:
    """Layers present in both files with the same ops, in the quantized file's order."""
    float_ops = _layer_ops(float_model, layer_names)
    pairs = []
    for key, quant_ops in _layer_ops(quant_model, layer_names).items():
        ops = float_ops.get(key, [])
        if [op.opcode for op in ops] == [op.opcode for op in quant_ops]:
            pairs.append(_Pair(key, tuple(ops), tuple(quant_ops)))
    return pairs


def _slots(model: Any, ops: Sequence[Any]) -> list[tuple[int, int]]:
    """(position in `ops`, input slot) of each activation entering these ops from outside."""
    inside = {index for op in ops for index in op.outputs}
    return [
        (position, slot)
        for position, op in enumerate(ops)
        for slot, index in enumerate(op.inputs)
        if index >= 0 and index not in inside and not model.tensors[index].constant
    ]


def _alone(model_t: Any, model: Any, ops: Sequence[Any]) -> bytes:
    """The `.tflite` of these ops alone, fed by the activations entering them."""
    inputs = [ops[p].inputs[s] for p, s in _slots(model, ops)]
    return cut(model_t, [op.index for op in ops], inputs, [ops[-1].outputs[0]])


class _OneLayer:
    """The float ops of one layer, cut out of the float file, fed with arrays."""

    def __init__(self, model_t: Any, float_model: Any, pair: _Pair, options: dict) -> None:
        self.slots = _slots(float_model, pair.float_ops)
        self.interpreter = make_interpreter(_alone(model_t, float_model, pair.float_ops), **options)
        allocate(self.interpreter)
        self.shapes: list[tuple[int, ...]] = []

    def run(self, values: list[np.ndarray]) -> np.ndarray:
        details = self.interpreter.get_input_details()
        shapes = [value.shape for value in values]
        if shapes != self.shapes:
            for detail, shape in zip(details, shapes, strict=True):
                self.interpreter.resize_tensor_input(detail["index"], list(shape), strict=False)
            allocate(self.interpreter)
            self.shapes = shapes
        for detail, value in zip(details, values, strict=True):
            self.interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
        invoke(self.interpreter)
        output = self.interpreter.get_output_details()[0]["index"]
        return self.interpreter.get_tensor(output).astype(np.float64)


def _refused_alone(model_t: Any, model: Any, ops: Sequence[Any], options: dict) -> str | None:
    """The runtime's reason when these ops, cut out alone, are refused; None when they run."""
    try:
        allocate(make_interpreter(_alone(model_t, model, ops), **options))
    except RuntimeRefusal as refusal:
        return refusal.reason
    return None


def _quantized_runner(
    quant_tflite: bytes, quant_model: Any, pairs: list[_Pair], x: np.ndarray, options: dict
) -> tuple[BatchRunner, dict[str, str]]:
    """The quantized model with every tensor readable, and the layers the reference kernels
    refuse (key -> reason). First choice: reference kernels with all tensors preserved."""
    try:
        runner = BatchRunner(quant_tflite, experimental_preserve_all_tensors=True, **options)
        runner.resize(BATCH_SIZE, [x.shape[1:]])
        return runner, {}
    except RuntimeRefusal as refusal:
        whole = refusal.reason
    model_t = unpack(quant_tflite)
    refused = {
        pair.key: reason
        for pair in pairs
        if (reason := _refused_alone(model_t, quant_model, pair.quant_ops, options)) is not None
    }
    read = []  # each layer's inputs and output, made model outputs
    for pair in pairs:
        read += [pair.quant_ops[p].inputs[s] for p, s in _slots(quant_model, pair.quant_ops)]
        read.append(pair.quant_ops[-1].outputs[0])
    try:
        runner = BatchRunner(with_outputs(quant_tflite, read))
        runner.resize(BATCH_SIZE, [x.shape[1:]])
        return runner, refused
    except RuntimeRefusal as refusal:
        reason = f"{whole}; on the default runtime: {refusal.reason}"
        raise RuntimeRefusal(str(refusal), reason) from None


def _dequantized(runner: BatchRunner, tensor: Any) -> np.ndarray:
    value = runner.interpreter.get_tensor(tensor.index)
    if not tensor.quantized:
        return value if tensor.dtype != "float32" else value.astype(np.float64)
    return (value.astype(np.float64) - tensor.zero_points[0]) * tensor.scales[0]


def layer_errors(
    float_tflite: bytes, quant_tflite: bytes, x: np.ndarray, layer_names: Sequence[str]
) -> tuple[LayerError, ...]:
    """The layers `measure_layer_errors` could measure."""
    return measure_layer_errors(float_tflite, quant_tflite, x, layer_names)[0]


def measure_layer_errors(
    float_tflite: bytes, quant_tflite: bytes, x: np.ndarray, layer_names: Sequence[str]
) -> tuple[tuple[LayerError, ...], tuple[Unavailable, ...]]:
    """Per-layer RMSE and RMSE/scale of `quant_tflite` against `float_tflite` on inputs `x`,
    and the layers the runtime refused (`Unavailable("layer <name>", reason)`).

    Layers appear in execution order. `scale` and `rmse_per_scale` are 0.0 for a layer whose
    output stayed float (dynamic-range and float16 variants, layers kept float). When the
    runtime refuses the quantized model on every path, `RuntimeRefusal` is raised.
    """
    from ai_edge_litert.interpreter import OpResolverType

    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise DataError("x: no samples to measure per-layer error on")
    float_model, quant_model = read_tflite(float_tflite), read_tflite(quant_tflite)
    pairs = _pairs(float_model, quant_model, list(layer_names))
    # reference kernels: XNNPACK would fuse ops and hide the outputs read here
    options = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    runner, refused = _quantized_runner(quant_tflite, quant_model, pairs, x, options)
    model_t = unpack(float_tflite)
    layers: list[_OneLayer | None] = []
    for pair in pairs:
        try:
            alone = None if pair.key in refused else _OneLayer(model_t, float_model, pair, options)
            layers.append(alone)
        except RuntimeRefusal as refusal:
            refused[pair.key] = refusal.reason
            layers.append(None)
    squared = [0.0] * len(pairs)
    counts = [0] * len(pairs)
    batch_size = runner.fixed_batch or BATCH_SIZE
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        runner.feed(batch)
        for i, (pair, layer) in enumerate(zip(pairs, layers, strict=True)):
            if layer is None:
                continue
            inputs = [
                _dequantized(runner, quant_model.tensors[pair.quant_ops[p].inputs[s]])
                for p, s in layer.slots
            ]
            value = _dequantized(runner, quant_model.tensors[pair.quant_ops[-1].outputs[0]])
            reference = layer.run(inputs)
            if reference.shape != value.shape:
                continue  # the two files disagree on this tensor: not comparable
            if reference.ndim and reference.shape[0] > len(batch):  # rows padding a fixed batch
                reference, value = reference[: len(batch)], value[: len(batch)]
            squared[i] += float(np.sum((value - reference) ** 2))
            counts[i] += reference.size
    errors = []
    for pair, total, count in zip(pairs, squared, counts, strict=True):
        if count == 0:
            continue
        tensor = quant_model.tensors[pair.quant_ops[-1].outputs[0]]
        rmse = float(np.sqrt(total / count))
        scale = tensor.scales[0] if tensor.quantized else 0.0
        errors.append(
            LayerError(
                layer=pair.key,
                tensor=tensor.name,
                rmse=rmse,
                scale=scale,
                rmse_per_scale=rmse / scale if scale > 0 else 0.0,
            )
        )
    unavailable = tuple(Unavailable(f"layer {key}", reason) for key, reason in refused.items())
    return tuple(errors), unavailable
