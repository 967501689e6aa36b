"""Reading a `.tflite` flatbuffer: tensors, ops, I/O, and what got quantized.

The flatbuffer is read with LiteRT's generated schema (no interpreter, no TensorFlow), so the
same code describes any file, including int4 tensors and ops the interpreter cannot run.
`layer_of` maps the converter's tensor names back to Keras layer names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import ModelFileError

# Bits per element of each flatbuffer TensorType (names as the schema spells them).
_BITS = {
    "FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "UINT8": 8, "INT64": 64, "STRING": 8, "BOOL": 8,
    "INT16": 16, "COMPLEX64": 64, "INT8": 8, "FLOAT64": 64, "COMPLEX128": 128, "UINT64": 64,
    "RESOURCE": 0, "VARIANT": 0, "UINT32": 32, "UINT16": 16, "INT4": 4, "BFLOAT16": 16,
    "INT2": 2, "UINT4": 4, "FLOAT8_E4M3FN": 8, "FLOAT8_E5M2": 8,
}  # fmt: skip
_SUFFIX = re.compile(r"_\d+$")


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
    constant: bool
    nbytes: int  # bytes of its data for constants, of one instance otherwise

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
    """The main subgraph of a `.tflite` file."""

    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    @property
    def input_details(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    @property
    def output_details(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]

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
        inputs = tuple(int(t) for t in graph.InputsAsNumpy())
        outputs = tuple(int(t) for t in graph.OutputsAsNumpy())
    except Exception as error:  # a corrupt flatbuffer raises anything from struct to index
        raise ModelFileError(
            f"tflite: the flatbuffer could not be read ({type(error).__name__}: {error}); "
            "the file is corrupt or truncated"
        ) from None
    return TfliteModel(tensors=tensors, ops=ops, inputs=inputs, outputs=outputs)


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
    elements = int(np.prod([max(d, 1) for d in shape])) if shape else 1
    return Tensor(
        index=index,
        name=(tensor.Name() or b"").decode(),
        dtype=dtype.lower(),
        shape=shape,
        scales=scales,
        zero_points=zero_points,
        quantized_dimension=axis,
        constant=stored > 0,
        nbytes=stored if stored > 0 else (elements * _BITS.get(dtype, 32) + 7) // 8,
    )


def layer_of(tensor_name: str, layer_names: Sequence[str]) -> str | None:
    """The Keras layer a TFLite tensor or op name belongs to, or None.

    Names look like ``model_1/conv2_1/Relu;model_1/conv2_1/BiasAdd``: ';'-separated parts,
    each a '/'-separated scope path. A layer matches a run of whole path components, never a
    prefix ("conv2d" never matches "conv2d_1"). Keras 3 appends one ``_N`` to every scope it
    traces (the model scope too, ``sequential_1/conv2d_1_2`` is layer ``conv2d_1``); when the
    first component carries such a suffix that one suffix is stripped before matching. The
    layer named in most parts wins, then the longest name, then the first.
    """
    names = set(layer_names)
    if tensor_name in names:
        return tensor_name
    votes: Counter[str] = Counter()
    order: list[str] = []
    for part in tensor_name.split(";"):
        found = _match_part(part.split("/"), names)
        if found is not None:
            votes[found] += 1
            if found not in order:
                order.append(found)
    if not order:
        return None
    return max(order, key=lambda name: (votes[name], len(name), -order.index(name)))


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


@dataclass(frozen=True)
class OpSummary:
    """One op as the summary shows it: its layer, output dtype and whether it is quantized."""

    index: int
    opcode: str
    layer: str | None
    output: str  # output tensor name
    input_dtypes: tuple[str, ...]
    output_dtype: str
    weight_dtype: str | None  # dtype of its first constant input, if any
    per_channel: bool  # its weights carry one scale per channel
    inserted: bool  # a QUANTIZE / DEQUANTIZE the converter added around float parts

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "input_dtypes": list(self.input_dtypes)}


@dataclass(frozen=True)
class QuantizationSummary:
    """What got quantized: per op dtypes, inserted (de)quantize ops, I/O dtypes, bytes per layer."""

    ops: tuple[OpSummary, ...]
    tensor_dtypes: dict[str, int]  # dtype -> number of tensors
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    layer_bytes: dict[str, int]  # layer (or "(other)") -> bytes of its constant tensors
    weight_bytes: int  # all constant data
    size_bytes: int  # the whole file

    @property
    def inserted(self) -> tuple[OpSummary, ...]:
        return tuple(op for op in self.ops if op.inserted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ops": [op.to_dict() for op in self.ops],
            "inserted": [op.to_dict() for op in self.inserted],
            "tensor_dtypes": dict(self.tensor_dtypes),
            "input_dtypes": list(self.input_dtypes),
            "output_dtypes": list(self.output_dtypes),
            "layer_bytes": dict(self.layer_bytes),
            "weight_bytes": self.weight_bytes,
            "size_bytes": self.size_bytes,
        }


_CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")


def quantization_summary(data: bytes, layer_names: Sequence[str] = ()) -> QuantizationSummary:
    """Describe a `.tflite`: each op's dtypes and layer, inserted (de)quantize ops, sizes.

    Without `layer_names` (a bare `.tflite`) each op is attributed to its output tensor name.
    A QUANTIZE / DEQUANTIZE counts as inserted when it converts an activation (its input is not
    a constant): a float16 model's weight DEQUANTIZE ops are storage, not inserted boundaries.
    """
    model = read_tflite(data)
    tensors = model.tensors
    ops = []
    owner: dict[int, str] = {}  # constant tensor -> layer that first uses it
    for op in model.ops:
        output = tensors[op.outputs[0]] if op.outputs else None
        name = output.name if output is not None else op.opcode
        layer = layer_of(name, layer_names) if layer_names else name
        constants = [tensors[i] for i in op.inputs if i >= 0 and tensors[i].constant]
        weight = constants[0] if constants else None
        feeds_from = [tensors[i] for i in op.inputs if i >= 0]
        inserted = op.opcode in _CONVERSIONS and not any(t.constant for t in feeds_from)
        if op.opcode == "DEQUANTIZE" and not inserted and output is not None:
            # A stored fp16/int weight: belongs to the layer of the op that consumes it.
            users = model.consumers(output.index)
            if users and users[0].outputs:
                user_name = tensors[users[0].outputs[0]].name
                layer = layer_of(user_name, layer_names) if layer_names else user_name
        for tensor in constants:
            owner.setdefault(tensor.index, layer or "(other)")
        ops.append(
            OpSummary(
                index=op.index,
                opcode=op.opcode,
                layer=layer,
                output=name,
                input_dtypes=tuple(t.dtype for t in feeds_from),
                output_dtype=output.dtype if output is not None else "",
                weight_dtype=weight.dtype if weight is not None else None,
                per_channel=weight is not None and weight.per_channel,
                inserted=inserted,
            )
        )
    layer_bytes: dict[str, int] = {}
    for index, layer in owner.items():
        layer_bytes[layer] = layer_bytes.get(layer, 0) + tensors[index].nbytes
    return QuantizationSummary(
        ops=tuple(ops),
        tensor_dtypes=dict(Counter(t.dtype for t in tensors)),
        input_dtypes=tuple(t.dtype for t in model.input_details),
        output_dtypes=tuple(t.dtype for t in model.output_details),
        layer_bytes=layer_bytes,
        weight_bytes=sum(t.nbytes for t in tensors if t.constant),
        size_bytes=len(data),
    )
