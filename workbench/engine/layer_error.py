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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.engine.evaluation import BatchRunner, make_interpreter
from workbench.errors import DataError
from workbench.qtyping import LayerError
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


class _OneLayer:
    """The float ops of one layer, cut out of the float file, fed with arrays."""

    def __init__(self, model_t: Any, float_model: Any, pair: _Pair, options: dict) -> None:
        inside = {index for op in pair.float_ops for index in op.outputs}
        # (position in the layer's ops, input slot) of each activation entering the layer
        self.slots = [
            (position, slot)
            for position, op in enumerate(pair.float_ops)
            for slot, index in enumerate(op.inputs)
            if index >= 0 and index not in inside and not float_model.tensors[index].constant
        ]
        inputs = [pair.float_ops[p].inputs[s] for p, s in self.slots]
        data = _cut(model_t, [op.index for op in pair.float_ops], inputs, pair.float_ops[-1])
        self.interpreter = make_interpreter(data, **options)
        self.shapes: list[tuple[int, ...]] = []

    def run(self, values: list[np.ndarray]) -> np.ndarray:
        details = self.interpreter.get_input_details()
        shapes = [value.shape for value in values]
        if shapes != self.shapes:
            for detail, shape in zip(details, shapes, strict=True):
                self.interpreter.resize_tensor_input(detail["index"], list(shape), strict=False)
            self.interpreter.allocate_tensors()
            self.shapes = shapes
        for detail, value in zip(details, values, strict=True):
            self.interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
        self.interpreter.invoke()
        output = self.interpreter.get_output_details()[0]["index"]
        return self.interpreter.get_tensor(output).astype(np.float64)


def _cut(model_t: Any, op_indices: list[int], inputs: list[int], last: Any) -> bytes:
    """A `.tflite` of the main graph's ops `op_indices` only, with `inputs` as its inputs."""
    import flatbuffers

    graph = model_t.subgraphs[0]
    saved = (graph.operators, graph.inputs, graph.outputs, model_t.signatureDefs)
    try:
        graph.operators = [saved[0][index] for index in op_indices]
        graph.inputs, graph.outputs = list(inputs), [last.outputs[0]]
        model_t.signatureDefs = None
        builder = flatbuffers.Builder(1024)
        builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
    finally:
        graph.operators, graph.inputs, graph.outputs, model_t.signatureDefs = saved


def _dequantized(runner: BatchRunner, tensor: Any) -> np.ndarray:
    value = runner.interpreter.get_tensor(tensor.index)
    if not tensor.quantized:
        return value if tensor.dtype != "float32" else value.astype(np.float64)
    return (value.astype(np.float64) - tensor.zero_points[0]) * tensor.scales[0]


def layer_errors(
    float_tflite: bytes, quant_tflite: bytes, x: np.ndarray, layer_names: Sequence[str]
) -> tuple[LayerError, ...]:
    """Per-layer RMSE and RMSE/scale of `quant_tflite` against `float_tflite` on inputs `x`.

    Layers appear in execution order. `scale` and `rmse_per_scale` are 0.0 for a layer whose
    output stayed float (dynamic-range and float16 variants, layers kept float).
    """
    from ai_edge_litert.interpreter import OpResolverType
    from ai_edge_litert.schema_py_generated import ModelT

    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise DataError("x: no samples to measure per-layer error on")
    float_model, quant_model = read_tflite(float_tflite), read_tflite(quant_tflite)
    pairs = _pairs(float_model, quant_model, list(layer_names))
    # reference kernels: XNNPACK would fuse ops and hide the outputs read here
    options = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    model_t = ModelT.InitFromPackedBuf(bytes(float_tflite), 0)
    layers = [_OneLayer(model_t, float_model, pair, options) for pair in pairs]
    runner = BatchRunner(quant_tflite, experimental_preserve_all_tensors=True, **options)
    squared = [0.0] * len(pairs)
    counts = [0] * len(pairs)
    batch_size = runner.fixed_batch or BATCH_SIZE
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        runner.invoke(batch)
        for i, (pair, layer) in enumerate(zip(pairs, layers, strict=True)):
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
    return tuple(errors)
