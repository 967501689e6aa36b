"""Reading a `.tflite` flatbuffer: tensors, ops, I/O, and what got quantized.

The flatbuffer is read with LiteRT's generated schema (no interpreter, no TensorFlow), so the
same code describes any file, including int4 tensors and ops the interpreter cannot run.
`layer_of` maps the converter's tensor names back to Keras layer names.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.errors import ModelFileError

_SUFFIX = re.compile(r"_\d+$")
_TRAILING_DIGITS = re.compile(r"_?\d+$")
# Last scope components of the TensorFlow ops that do a layer's main computation.
_COMPUTE = frozenset(
    {"convolution", "Conv2D", "Conv3D", "conv1d", "depthwise", "DepthwiseConv2dNative",
     "MatMul", "BiasAdd", "Einsum", "conv_transpose", "Conv2DBackpropInput"}
)  # fmt: skip


@dataclass(frozen=True)
class Tensor:
    """One tensor of the main graph. `constant` tensors carry data (weights, biases)."""

    index: int
    name: str
    dtype: str  # lower-case schema type: "float32", "int8", "int4", ...
    shape: tuple[int, ...]
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int
    constant: bool  # carries data in the file (a weight, bias or shape constant)
    nbytes: int  # bytes of that data in the file; 0 for activations

    @property
    def quantized(self) -> bool:
        return bool(self.scales)

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "shape": list(self.shape), "scales": list(self.scales),
                "zero_points": list(self.zero_points)}  # fmt: skip


@dataclass(frozen=True)
class Op:
    """One operator of the main graph; inputs and outputs are tensor indices (-1 = absent)."""

    index: int
    opcode: str  # builtin name, e.g. "CONV_2D", or the custom code
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "inputs": list(self.inputs), "outputs": list(self.outputs)}


@dataclass(frozen=True, eq=False)
class TfliteModel:
    """The main subgraph of a `.tflite` file: tensors, ops in execution order, inputs, outputs."""

    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    size_bytes: int

    def producer(self, tensor: int) -> Op | None:
        """The op that writes `tensor` (None for constants and model inputs)."""
        return next((op for op in self.ops if tensor in op.outputs), None)

    def consumers(self, tensor: int) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]


def _names(kind: type) -> dict[int, str]:
    return {value: name for name, value in vars(kind).items() if not name.startswith("_")}


def read_tflite(data: bytes) -> TfliteModel:
    """Parse the main subgraph of a `.tflite` flatbuffer; ModelFileError if it is not one."""
    from ai_edge_litert import schema_py_generated as schema

    data = bytes(data)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError(
            "tflite: the bytes are not a TensorFlow Lite flatbuffer (no TFL3 identifier); "
            "give a .tflite file written by the converter"
        )
    try:
        model = schema.Model.GetRootAs(data, 0)
        graph = model.Subgraphs(0)
        types, builtins = _names(schema.TensorType), _names(schema.BuiltinOperator)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            custom = code.CustomCode()
            codes.append(custom.decode() if custom else builtins.get(builtin, str(builtin)))
        tensors = tuple(_tensor(graph, model, i, types) for i in range(graph.TensorsLength()))
        ops = tuple(
            Op(
                index=i,
                opcode=codes[graph.Operators(i).OpcodeIndex()],
                inputs=tuple(int(t) for t in graph.Operators(i).InputsAsNumpy()),
                outputs=tuple(int(t) for t in graph.Operators(i).OutputsAsNumpy()),
            )
            for i in range(graph.OperatorsLength())
        )
        inputs = tuple(tensors[int(t)] for t in graph.InputsAsNumpy())
        outputs = tuple(tensors[int(t)] for t in graph.OutputsAsNumpy())
    except Exception as error:  # a corrupt flatbuffer raises anything from struct to index
        raise ModelFileError(
            f"tflite: the flatbuffer could not be read ({type(error).__name__}: {error}); "
            "the file is corrupt or truncated"
        ) from None
    return TfliteModel(tensors, ops, inputs, outputs, size_bytes=len(data))


def _tensor(graph: Any, model: Any, index: int, types: dict[int, str]) -> Tensor:
    tensor = graph.Tensors(index)
    dtype = types.get(tensor.Type(), str(tensor.Type()))
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    buffer = model.Buffers(tensor.Buffer()) if tensor.Buffer() < model.BuffersLength() else None
    stored = 0
    if buffer is not None:
        stored = int(buffer.Size()) if buffer.Offset() > 1 else int(buffer.DataLength())
    quant = tensor.Quantization()
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    axis = 0
    if quant is not None and quant.ScaleLength():
        scales = tuple(float(s) for s in quant.ScaleAsNumpy())
        zero_points = tuple(int(z) for z in quant.ZeroPointAsNumpy()) if quant.ZeroPointLength() \
            else (0,) * len(scales)  # fmt: skip
        axis = int(quant.QuantizedDimension())
    return Tensor(
        index=index,
        name=(tensor.Name() or b"").decode(),
        dtype=dtype.lower(),
        shape=shape,
        scales=scales,
        zero_points=zero_points,
        quantized_dimension=axis,
        constant=stored > 0,
        nbytes=stored,
    )


def quantized_weights(data: bytes) -> list[str]:
    """The integer or float16 types the file stores constant tensors in (empty: float32)."""
    stored = {t.dtype for t in read_tflite(data).tensors if t.constant}
    return sorted(stored & {"int4", "int8", "uint8", "int16", "float16"})


def layer_of(tensor_name: str, layer_names: Sequence[str]) -> str | None:
    """The Keras layer a TFLite tensor or op name belongs to, or None.

    Names look like ``model_1/conv2_1/Relu;model_1/conv2_1/BiasAdd``: ';'-separated parts,
    each a '/'-separated scope path. A layer matches a run of whole path components, never a
    prefix ("conv2d" never matches "conv2d_1"). Keras 3 appends one ``_N`` to every scope it
    traces (the model scope too, ``sequential_1/conv2d_1_2`` is layer ``conv2d_1``); when the
    first component carries such a suffix that one suffix is stripped before matching.

    A fused op names every layer folded into it (conv, batch norm, activation); the layer of
    its compute part (``convolution``, ``depthwise``, ``MatMul``...) wins, then the layer named
    in most parts, then the longest name, then the first.
    """
    names = set(layer_names)
    if tensor_name in names:
        return tensor_name
    parts = tensor_name.split(";")
    compute = [part for part in parts if _TRAILING_DIGITS.sub("", part.split("/")[-1]) in _COMPUTE]
    for candidates in (compute, parts):
        votes: Counter[str] = Counter()
        order: list[str] = []
        for part in candidates:
            found = _match_part(part.split("/"), names)
            if found is not None:
                votes[found] += 1
                if found not in order:
                    order.append(found)
        if order:
            return max(order, key=lambda name: (votes[name], len(name), -order.index(name)))
    return None


def _match_part(components: list[str], names: set[str]) -> str | None:
    suffixed = len(components) > 1 and bool(_SUFFIX.search(components[0]))
    best: str | None = None
    for stripped_first in (suffixed, not suffixed):
        for start in range(len(components)):
            for stop in range(start + 1, len(components) + 1):
                run = components[start:stop]
                if stripped_first:
                    run = [*run[:-1], _SUFFIX.sub("", run[-1])]
                candidate = "/".join(run)
                if candidate in names and (best is None or len(candidate) > len(best)):
                    best = candidate
        if best is not None:
            return best
    return None


def op_layers(model: TfliteModel, layer_names: Sequence[str]) -> dict[int, str | None]:
    """The Keras layer of every op (by op index), None for ops of no listed layer.

    An op is named by its output tensor, else by its constant inputs (a kernel's name says its
    layer even when the output's fused name does not). A DEQUANTIZE that unpacks a stored
    weight (float16, int4 storage) belongs to the layer of the op that consumes it.
    """
    tensors = model.tensors
    found: dict[int, str | None] = {}
    for op in model.ops:
        named = [tensors[i].name for i in op.outputs]
        named += [tensors[i].name for i in op.inputs if i >= 0 and tensors[i].constant]
        found[op.index] = next(
            (layer for name in named if (layer := layer_of(name, layer_names)) is not None), None
        )
    for op in model.ops:
        if _unpacks_constant(model, op) and op.outputs:
            users = model.consumers(op.outputs[0])
            if users and found[users[0].index] is not None:
                found[op.index] = found[users[0].index]
    return found


def _unpacks_constant(model: TfliteModel, op: Op) -> bool:
    return op.opcode == "DEQUANTIZE" and all(model.tensors[i].constant for i in op.inputs if i >= 0)


@dataclass(frozen=True)
class LayerRow:
    """How one layer is stored and computed in the file."""

    layer: str
    ops: tuple[str, ...]  # opcodes in execution order
    weight_dtype: str | None  # dtype its largest constant is stored in
    weight_granularity: str | None  # "per-channel", "per-tensor", None when not quantized
    activation_dtype: str  # dtype of the layer's last output
    bytes: int  # bytes of the constants it uses (kernel, bias...)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ops": list(self.ops)}


@dataclass(frozen=True)
class Conversion:
    """A QUANTIZE or DEQUANTIZE op in the file."""

    opcode: str
    tensor: str  # its output tensor
    layer: str | None
    of_constant: bool  # unpacks a stored weight rather than converting an activation
    from_dtype: str
    to_dtype: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class QuantizationSummary:
    """What got quantized: tensors, layers, conversion ops, I/O dtypes and bytes."""

    tensors: tuple[Tensor, ...]
    tensor_layers: dict[int, str | None]  # tensor index -> layer that writes or uses it
    layers: tuple[LayerRow, ...]
    conversions: tuple[Conversion, ...]
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    bytes_unattributed: int  # constant bytes used by no listed layer
    size_bytes: int  # the whole file
    runtime: Any = None  # engine.kernels.RuntimeReport when the interpreter was asked

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": None if self.runtime is None else self.runtime.to_dict(),
            "tensors": [
                {**t.to_dict(), "layer": self.tensor_layers.get(t.index)} for t in self.tensors
            ],
            "layers": [row.to_dict() for row in self.layers],
            "conversions": [c.to_dict() for c in self.conversions],
            "input_dtypes": list(self.input_dtypes),
            "output_dtypes": list(self.output_dtypes),
            "bytes_unattributed": self.bytes_unattributed,
            "size_bytes": self.size_bytes,
        }


def quantization_summary(data: bytes, layer_names: Sequence[str] = ()) -> QuantizationSummary:
    """Describe what got quantized in a `.tflite`, layer by layer.

    Without `layer_names` (a bare `.tflite`) every op with constant inputs is its own row,
    named by its output tensor.
    """
    model = read_tflite(data)
    tensors = model.tensors
    if layer_names:
        by_op = op_layers(model, layer_names)
        order = list(layer_names)
    else:
        by_op = {
            op.index: tensors[op.outputs[0]].name
            for op in model.ops
            if op.outputs and any(i >= 0 and tensors[i].constant for i in op.inputs)
        }
        order = list(by_op.values())
    tensor_layers: dict[int, str | None] = {}
    ops_of: dict[str, list[Op]] = {}
    for op in model.ops:
        layer = by_op.get(op.index)
        if layer is None:
            continue
        ops_of.setdefault(layer, []).append(op)
        for index in (*op.inputs, *op.outputs):
            if index >= 0:
                tensor_layers.setdefault(index, layer)
    layers = tuple(
        _layer_row(model, layer, ops_of[layer], tensor_layers) for layer in order if layer in ops_of
    )
    conversions = tuple(
        _conversion(model, op, by_op.get(op.index))
        for op in model.ops
        if op.opcode in ("QUANTIZE", "DEQUANTIZE")
    )
    constant_bytes = sum(t.nbytes for t in tensors)
    return QuantizationSummary(
        tensors=tensors,
        tensor_layers=tensor_layers,
        layers=layers,
        conversions=conversions,
        input_dtypes=tuple(t.dtype for t in model.inputs),
        output_dtypes=tuple(t.dtype for t in model.outputs),
        bytes_unattributed=constant_bytes - sum(row.bytes for row in layers),
        size_bytes=len(data),
    )


def _layer_row(
    model: TfliteModel, layer: str, ops: list[Op], tensor_layers: dict[int, str | None]
) -> LayerRow:
    constants = {
        i: model.tensors[i]
        for op in ops
        for i in op.inputs
        if i >= 0 and model.tensors[i].constant and tensor_layers.get(i) == layer
    }
    weight = max(constants.values(), key=lambda t: math.prod(t.shape), default=None)
    granularity = None
    if weight is not None and weight.quantized:
        granularity = "per-channel" if weight.per_channel else "per-tensor"
    # the layer's own compute ops: not the QUANTIZE / DEQUANTIZE around a layer kept float
    computing = [op for op in ops if op.opcode not in ("QUANTIZE", "DEQUANTIZE") and op.outputs]
    last = computing[-1] if computing else ops[-1]
    return LayerRow(
        layer=layer,
        ops=tuple(op.opcode for op in ops),
        weight_dtype=weight.dtype if weight is not None else None,
        weight_granularity=granularity,
        activation_dtype=model.tensors[last.outputs[0]].dtype if last.outputs else "",
        bytes=sum(t.nbytes for t in constants.values()),
    )


def _conversion(model: TfliteModel, op: Op, layer: str | None) -> Conversion:
    source = model.tensors[op.inputs[0]]
    target = model.tensors[op.outputs[0]]
    return Conversion(
        opcode=op.opcode,
        tensor=target.name,
        layer=layer,
        of_constant=_unpacks_constant(model, op),
        from_dtype=source.dtype,
        to_dtype=target.dtype,
    )
