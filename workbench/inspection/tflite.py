"""The inspection tables read from a `.tflite` file, for models that are already converted.

Structure (tensors, ops, quantization parameters) comes from `workbench.tflite_file`; the
values of constant tensors and of activations come from the LiteRT interpreter. Quantized
weights are dequantized with their own scales; float16 weights stored behind a DEQUANTIZE op
are read from the stored tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from workbench import affine
from workbench.inputs import check_inputs, quantize_inputs
from workbench.inspection.activations import ActivationRange
from workbench.inspection.layers import LayerRow
from workbench.inspection.stats import StreamingHistogram, channel_stats, tensor_stats
from workbench.inspection.weights import WeightStats
from workbench.tflite_file import Tensor, TfliteModel, op_layers, read_tflite

KERNEL_OPS = {
    "CONV_2D": "Conv2D",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2D",
    "FULLY_CONNECTED": "Dense",
}


def _interpreter(data: bytes, preserve: bool = False) -> Any:
    import warnings

    from workbench.engine.evaluation import make_interpreter

    with warnings.catch_warnings():  # "preserve all tensors is for debugging": it is, here
        warnings.simplefilter("ignore", UserWarning)
        return make_interpreter(data, experimental_preserve_all_tensors=preserve)


def _params(tensor: Tensor) -> affine.AffineParams:
    qmin, qmax = affine.DTYPES[tensor.dtype]
    axis = tensor.quantized_dimension if len(tensor.scales) > 1 else None
    scale = np.array(tensor.scales) if axis is not None else np.array(tensor.scales[0])
    zero_point = np.array(tensor.zero_points if axis is not None else tensor.zero_points[0])
    return affine.AffineParams(scale, zero_point, qmin, qmax, axis)


def real_values(tensor: Tensor, values: np.ndarray) -> np.ndarray:
    """float32 values of a tensor as read from the interpreter (dequantized if quantized)."""
    if tensor.quantized and tensor.dtype in affine.DTYPES:
        return affine.dequantize(values, _params(tensor))
    return np.asarray(values, dtype=np.float32)


def _namer(model: TfliteModel, layer_names: Sequence[str]) -> Callable[[int], str]:
    """Op index -> its Keras layer when `layer_names` name it, else its output tensor's name."""
    layers = op_layers(model, layer_names) if layer_names else {}

    def name(op_index: int) -> str:
        op = model.ops[op_index]
        tensor = model.tensors[op.outputs[0]].name if op.outputs else op.opcode
        return layers.get(op_index) or tensor.split(";")[0]

    return name


def _stored(model: TfliteModel, index: int) -> Tensor | None:
    """The constant tensor holding the data of input `index` (behind a DEQUANTIZE if any)."""
    tensor = model.tensors[index]
    if tensor.constant:
        return tensor
    producer = model.producer(index)
    if producer is not None and producer.opcode == "DEQUANTIZE":
        source = model.tensors[producer.inputs[0]]
        return source if source.constant else None
    return None


def tflite_layer_table(data: bytes, layer_names: Sequence[str] = ()) -> list[LayerRow]:
    """One row per op (storage DEQUANTIZE ops folded into the op they feed)."""
    model = read_tflite(data)
    name = _namer(model, layer_names)
    rows = []
    for op in model.ops:
        if op.opcode == "DEQUANTIZE" and _stored(model, op.outputs[0]) is not None:
            continue
        stored = [(slot, _stored(model, i)) for slot, i in enumerate(op.inputs) if i >= 0]
        constants = [t for _, t in stored if t is not None]
        params = sum(int(np.prod(t.shape)) for t in constants)
        biases = (
            sum(  # an int8 file keeps a kernel op's bias (third input) as int32
                int(np.prod(t.shape)) for slot, t in stored if t is not None and slot == 2
            )
            if op.opcode in KERNEL_OPS
            else 0
        )
        rows.append(
            LayerRow(
                name=name(op.index),
                type=op.opcode,
                params=params,
                bytes_float32=4 * params,
                bytes_float16=2 * params,
                bytes_int8=params + 3 * biases,
                dtype=constants[0].dtype if constants else None,
                bytes_stored=sum(t.nbytes for t in constants),
            )
        )
    return rows


def stored_kernels(
    data: bytes, layer_names: Sequence[str] = ()
) -> Iterator[tuple[str, str, Any, np.ndarray, int]]:
    """Each conv / depthwise / fully-connected kernel of a `.tflite`, in op order, as (layer,
    kind, stored tensor, its values as stored, channel axis)."""
    model = read_tflite(data)
    name = _namer(model, layer_names)
    interpreter = _interpreter(data)
    for op in model.ops:
        kind = KERNEL_OPS.get(op.opcode)
        stored = _stored(model, op.inputs[1]) if kind and len(op.inputs) > 1 else None
        if stored is None:
            continue
        axis = stored.quantized_dimension if stored.per_channel else affine.CHANNEL_AXIS[kind]
        yield name(op.index), kind, stored, np.asarray(interpreter.get_tensor(stored.index)), axis


def tflite_weight_stats(data: bytes, layer_names: Sequence[str] = ()) -> list[WeightStats]:
    """Statistics of every conv / depthwise / fully-connected kernel, as real values."""
    stats = []
    for layer, kind, stored, raw, axis in stored_kernels(data, layer_names):
        values = real_values(stored, raw)
        stats.append(
            WeightStats(
                layer=layer,
                kind=kind,
                shape=tuple(values.shape),
                channel_axis=axis,
                per_tensor=tensor_stats(values),
                per_channel=channel_stats(values, axis),
                dtype=stored.dtype,
                scales=stored.scales,
                zero_points=stored.zero_points,
            )
        )
    return stats


def tflite_activation_ranges(
    data: bytes, x: Any, *, layer_names: Sequence[str] = (), batch_size: int = 128
) -> list[ActivationRange]:
    """Ranges of the model input and every op output over `x`, in one streaming pass
    (`RuntimeRefusal` when the runtime refuses to run the model with every tensor kept)."""
    from workbench.engine.evaluation import allocate, invoke, sample_shape

    model = read_tflite(data)
    name = _namer(model, layer_names)
    source = model.inputs[0]
    interpreter = _interpreter(data, preserve=True)
    x = check_inputs(x, (None, *sample_shape(interpreter.get_input_details()[0])))
    probes = [(source.name, "Input", source)]
    for op in model.ops:
        output = model.tensors[op.outputs[0]] if op.outputs else None
        if output is None or _stored(model, output.index) is not None:
            continue  # no output, or a weight's storage DEQUANTIZE
        if output.quantized or output.dtype.startswith("float"):
            probes.append((name(op.index), op.opcode, output))
    histograms = [StreamingHistogram() for _ in probes]
    shape = None
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        if batch.shape != shape:
            interpreter.resize_tensor_input(source.index, batch.shape)
            allocate(interpreter)
            shape = batch.shape
        if source.quantized and source.dtype in affine.DTYPES:
            batch = quantize_inputs(batch, source.dtype, source.scales[0], source.zero_points[0])
        interpreter.set_tensor(source.index, batch)
        invoke(interpreter)
        for histogram, (_, _, tensor) in zip(histograms, probes, strict=True):
            histogram.update(real_values(tensor, interpreter.get_tensor(tensor.index)))
    return [
        ActivationRange(
            label, kind, histogram.stats(), tensor.dtype, tensor.scales, tensor.zero_points
        )
        for (label, kind, tensor), histogram in zip(probes, histograms, strict=True)
    ]
