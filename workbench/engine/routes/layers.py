"""Keras layer names to the TFLite ops that implement them (for keep-float lists).

The attribution itself is `workbench.tflite_file.op_layers`; this module turns a keep-float
list into the op output tensor names both quantizers take, with one clear error per bad name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from workbench.errors import UnsupportedError


def op_outputs(tflite: bytes) -> list[tuple[str, str]]:
    """(opcode, first output tensor name) of every op of the main graph."""
    from workbench.tflite_file import read_tflite

    model = read_tflite(tflite)
    return [(op.opcode, model.tensors[op.outputs[0]].name) for op in model.ops if op.outputs]


QUANTIZABLE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_SUFFIX = re.compile(r"_\d+$")


def model_layer_names(model: Any) -> list[str]:
    """Names keep_float may use: the quantizable Keras layers (Conv2D, DepthwiseConv2D, Dense;
    their BatchNorm and activation are fused into their op); for a graph without Keras (a
    SavedModel, concrete functions, a .tflite), the scope names of its quantizable ops."""
    if model.keras_model is not None:
        from workbench.folding import quantizable_kernels

        return [kernel.layer for kernel in quantizable_kernels(model.keras_model)]
    from workbench.engine.routes import float_tflite

    return graph_layer_names(float_tflite(model))


def graph_layer_names(tflite: bytes) -> list[str]:
    """One name per quantizable op: the scope that holds it (``model_1/conv2_1/Relu`` -> conv2,
    Keras' ``_N`` tracing suffix removed), else its whole output tensor name."""
    from workbench.tflite_file import layer_of

    names: list[str] = []
    for opcode, tensor in op_outputs(tflite):
        if opcode not in QUANTIZABLE_OPS:
            continue
        path = tensor.split(";")[0].split("/")
        scope = path[-2] if len(path) > 1 else tensor
        if len(path) > 1 and _SUFFIX.search(path[0]):
            scope = _SUFFIX.sub("", scope)
        if scope in names or layer_of(tensor, [scope]) != scope:
            scope = tensor
        names.append(scope)
    return names


def check_layer_names(
    wanted: Iterable[str], layer_names: Sequence[str], option: str = "keep_float"
) -> None:
    """Refuse (`option` named) layer names the model does not have, listing some it has."""
    unknown = [name for name in wanted if name not in layer_names]
    if unknown:
        shown = ", ".join(layer_names[:12]) + (" ..." if len(layer_names) > 12 else "")
        raise UnsupportedError(
            f"{option}: no layer named {', '.join(map(repr, unknown))} in this model; "
            f"choose from {shown or '(none)'}"
        )


def ops_of_layers(
    tflite: bytes, keep_float: Iterable[str], layer_names: Sequence[str]
) -> dict[str, list[str]]:
    """Output tensor names of the ops of each keep-float layer; unknown layers are an error."""
    from workbench.tflite_file import op_layers, read_tflite

    wanted = sorted(keep_float)
    check_layer_names(wanted, layer_names)
    model = read_tflite(tflite)
    found: dict[str, list[str]] = {name: [] for name in wanted}
    for index, layer in op_layers(model, layer_names).items():
        op = model.ops[index]
        if layer in found and op.outputs and op.opcode not in ("DEQUANTIZE", "QUANTIZE"):
            found[layer].append(model.tensors[op.outputs[0]].name)
    missing = [name for name, tensors in found.items() if not tensors]
    if missing:
        raise UnsupportedError(
            f"keep_float: layer {', '.join(map(repr, missing))} has no op of its own in the "
            "converted model (the converter fused it into a neighbour); keep that neighbour float"
        )
    return found
