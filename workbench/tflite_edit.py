"""Edits of a `.tflite` flatbuffer: cut ops out, expose tensors, expand float16 weights, sign.

Published float models store their weights as float16 behind DEQUANTIZE ops and often have no
signature; `float32_tflite` turns such a file into the plain float32 model the quantizers take
(the float16 -> float32 expansion is exact). The edits use LiteRT's generated object API
(`ModelT`), as the quantizers do; none changes the bytes it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SIGNATURE_KEY = "serving_default"


def unpack(data: bytes) -> Any:
    """The flatbuffer as a mutable `ModelT`. Constants the converter stored after the
    flatbuffer (buffers with an offset, as in larger models) are read in, so `pack` keeps them."""
    from ai_edge_litert.schema_py_generated import ModelT

    data = bytes(data)
    model_t = ModelT.InitFromPackedBuf(data, 0)
    for buffer in model_t.buffers or ():
        if buffer.offset > 1:
            start = int(buffer.offset)
            buffer.data = np.frombuffer(data, np.uint8, int(buffer.size), start).copy()
            buffer.offset = buffer.size = 0
    return model_t


def pack(model_t: Any) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def cut(
    model_t: Any, op_indices: Sequence[int], inputs: Sequence[int], outputs: Sequence[int]
) -> bytes:
    """A `.tflite` of the main graph's ops `op_indices` only, with these input and output
    tensors; `model_t` is left as it was (so one unpacked model serves many cuts)."""
    graph = model_t.subgraphs[0]
    saved = (graph.operators, graph.inputs, graph.outputs, model_t.signatureDefs)
    try:
        graph.operators = [saved[0][index] for index in op_indices]
        graph.inputs, graph.outputs = list(inputs), list(outputs)
        model_t.signatureDefs = None
        return pack(model_t)
    finally:
        graph.operators, graph.inputs, graph.outputs, model_t.signatureDefs = saved


def with_outputs(data: bytes, tensors: Sequence[int]) -> bytes:
    """The same model with `tensors` added to the main graph's outputs, so a runtime that fuses
    ops (XNNPACK) still computes and keeps them. The signature is dropped."""
    model_t = unpack(data)
    graph = model_t.subgraphs[0]
    outputs = [int(t) for t in graph.outputs]
    return cut(model_t, range(len(graph.operators)), graph.inputs, outputs + [
        int(t) for t in dict.fromkeys(tensors) if int(t) not in outputs
    ])  # fmt: skip


def _opcode(model_t: Any, op: Any) -> int:
    code = model_t.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _data(model_t: Any, tensor: Any) -> np.ndarray | None:
    buffer = model_t.buffers[tensor.buffer] if tensor.buffer < len(model_t.buffers) else None
    data = None if buffer is None else buffer.data
    return None if data is None or len(data) == 0 else np.asarray(data, dtype=np.uint8)


def expand_float16(data: bytes) -> bytes:
    """Float16 weights stored behind DEQUANTIZE ops become float32 constants (exactly: every
    float16 value is a float32 value) and the DEQUANTIZE ops go; unchanged bytes otherwise."""
    from ai_edge_litert.schema_py_generated import BufferT, BuiltinOperator, TensorType

    model_t = unpack(data)
    graph = model_t.subgraphs[0]
    kept, expanded = [], set()
    for op in graph.operators:
        source = graph.tensors[op.inputs[0]] if len(op.inputs) == 1 else None
        stored = None if source is None else _data(model_t, source)
        if (
            _opcode(model_t, op) != BuiltinOperator.DEQUANTIZE
            or source.type != TensorType.FLOAT16
            or stored is None
        ):
            kept.append(op)
            continue
        buffer = BufferT()
        buffer.data = stored.view(np.float16).astype(np.float32).view(np.uint8)
        model_t.buffers.append(buffer)
        target = graph.tensors[op.outputs[0]]
        target.buffer = len(model_t.buffers) - 1
        expanded.add(int(op.inputs[0]))
    if not expanded:
        return bytes(data)
    graph.operators = kept
    still_used = {int(i) for op in kept for i in op.inputs}
    _drop_tensors(model_t, expanded - still_used)  # the float16 copies nobody reads any more
    return pack(model_t)


def _drop_tensors(model_t: Any, drop: set[int]) -> None:
    """Remove tensors of the main graph (with their data) and renumber the rest everywhere."""
    graph = model_t.subgraphs[0]
    kept = [i for i in range(len(graph.tensors)) if i not in drop]
    new = {old: position for position, old in enumerate(kept)}
    new[-1] = -1
    for index in drop:
        model_t.buffers[graph.tensors[index].buffer].data = None
    graph.tensors = [graph.tensors[i] for i in kept]
    for op in graph.operators:
        op.inputs = [new[int(i)] for i in op.inputs]
        op.outputs = [new[int(i)] for i in op.outputs]
    graph.inputs = [new[int(i)] for i in graph.inputs]
    graph.outputs = [new[int(i)] for i in graph.outputs]
    for signature in model_t.signatureDefs or ():
        if signature.subgraphIndex == 0:
            for entry in (*signature.inputs, *signature.outputs):
                entry.tensorIndex = new[int(entry.tensorIndex)]


def with_signature(data: bytes, *, output_names: Sequence[str] = ()) -> bytes:
    """A file without a signature gets one (key `serving_default`) naming its input and output
    tensors (the outputs `output_names` when given), as the LiteRT Quantizer needs to
    calibrate; unchanged bytes otherwise."""
    from ai_edge_litert.schema_py_generated import SignatureDefT, TensorMapT

    model_t = unpack(data)
    if model_t.signatureDefs:
        return bytes(data)
    graph = model_t.subgraphs[0]

    def maps(indices: Any, kind: str, given: Sequence[str] = ()) -> list[Any]:
        found, names = [], set()
        for position, index in enumerate(indices):
            name = given[position] if position < len(given) else ""
            name = name or (graph.tensors[index].name or b"").decode() or f"{kind}_{position}"
            if name in names:
                name = f"{kind}_{position}"
            names.add(name)
            entry = TensorMapT()
            entry.name, entry.tensorIndex = name, int(index)
            found.append(entry)
        return found

    signature = SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = SIGNATURE_KEY, 0
    signature.inputs = maps(graph.inputs, "input")
    signature.outputs = maps(graph.outputs, "output", output_names)
    model_t.signatureDefs = [signature]
    return pack(model_t)


def float32_tflite(data: bytes) -> bytes:
    """A published float `.tflite` as the quantizers take it: float16 weights expanded to
    float32 and a signature where there was none (the same bytes when neither is needed)."""
    return with_signature(expand_float16(data))
